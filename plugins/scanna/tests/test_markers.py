"""Marker rankings over per-class attention mass (numpy level)."""

from __future__ import annotations

import numpy as np
import pytest

from cellzoo.errors import ConfigError
from cellzoo_scanna.markers import rank_markers, term_frequency, tfidf_scores


def _mass_with_a_shared_gene(rng):
    # 3 classes × 12 genes: gene 0 draws attention in every class (a "sink"),
    # genes 1, 2, 3 are the specific markers of classes 0, 1, 2
    mass = rng.uniform(0.0, 0.1, size=(3, 12))
    mass[:, 0] += 5.0
    for k in range(3):
        mass[k, 1 + k] += 3.0
    return mass


def test_attention_ranking_is_the_descending_order_of_summed_attention():
    rng = np.random.default_rng(0)
    mass = rng.uniform(size=(4, 20))
    idx, scores = rank_markers(mass, n=5, method="attention")
    assert idx.shape == (4, 5)
    np.testing.assert_array_equal(idx, np.argsort(-mass, axis=1)[:, :5])
    np.testing.assert_allclose(scores, np.sort(mass, axis=1)[:, ::-1][:, :5])


def test_tfidf_demotes_a_gene_that_tops_every_class():
    mass = _mass_with_a_shared_gene(np.random.default_rng(1))
    raw, _ = rank_markers(mass, n=2, method="attention")
    tfidf, scores = rank_markers(mass, n=2, method="tfidf")
    assert list(raw[:, 0]) == [0, 0, 0]
    assert list(tfidf[:, 0]) == [1, 2, 3]
    assert 0 not in tfidf
    assert np.all(scores[:, 0] > 0)


def test_tfidf_keeps_the_raw_order_when_top_lists_are_disjoint():
    rng = np.random.default_rng(2)
    mass = rng.uniform(0.0, 0.1, size=(3, 30))
    for k in range(3):
        mass[k, 10 * k : 10 * k + 5] += np.arange(5, 0, -1)
    raw, _ = rank_markers(mass, n=5, method="attention")
    tfidf, _ = rank_markers(mass, n=5, method="tfidf")
    np.testing.assert_array_equal(raw, tfidf)


def test_tfidf_is_invariant_to_class_size():
    mass = _mass_with_a_shared_gene(np.random.default_rng(3))
    scaled = mass * np.array([[1.0], [40.0], [0.2]])
    np.testing.assert_allclose(tfidf_scores(mass, 2), tfidf_scores(scaled, 2))


def test_idf_definition():
    mass = np.array([[4.0, 3.0, 1.0, 0.0], [4.0, 0.0, 3.0, 1.0]])
    scores = tfidf_scores(mass, top_k=2)
    tf = term_frequency(mass)
    # gene 0 is in both top-2 lists (idf 0); genes 1 and 2 in one (idf log 2); gene 3 in none (idf log 2)
    expected_idf = np.array([0.0, np.log(2), np.log(2), np.log(2)])
    np.testing.assert_allclose(scores, tf * expected_idf)


def test_one_class_falls_back_to_the_attention_ranking():
    mass = np.array([[0.1, 0.5, 0.2, 0.9]])
    idx, _ = rank_markers(mass, n=3, method="tfidf")
    assert list(idx[0]) == [3, 1, 2]


def test_n_larger_than_the_gene_count_is_clipped_and_ties_are_deterministic():
    mass = np.ones((2, 4))
    idx, _ = rank_markers(mass, n=10)
    assert idx.shape == (2, 4)
    assert list(idx[0]) == [0, 1, 2, 3]


def test_unknown_method_is_a_config_error():
    with pytest.raises(ConfigError, match="tfidf"):
        rank_markers(np.ones((2, 3)), method="wilcoxon")
