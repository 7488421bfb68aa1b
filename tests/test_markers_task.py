"""Marker precision@k: hand-computed cases, the denominator, class matching, bad input; the markers task's parts."""

from __future__ import annotations

import pytest

import cellzoo
from cellzoo.errors import InputError
from cellzoo.metrics import (
    marker_precision_at_10,
    marker_precision_at_k,
    precision_at_k_per_class,
    true_markers,
)

TRUTH = {"A": {"a1", "a2", "a3"}, "B": ["b1", "b2"], "C": {"c1"}}


def test_share_of_top_k_that_are_true_markers_averaged_over_classes():
    ranked = {"A": ["a1", "x", "a3", "a2"], "B": ["y", "b2", "b1"]}
    assert precision_at_k_per_class(TRUTH, ranked, 2) == {"A": 0.5, "B": 0.5}
    assert precision_at_k_per_class(TRUTH, ranked, 3) == {"A": pytest.approx(2 / 3), "B": pytest.approx(2 / 3)}
    assert marker_precision_at_k(TRUTH, ranked, k=1) == pytest.approx((1 + 0) / 2)
    assert marker_precision_at_k(TRUTH, {"A": ["a3", "a1", "a2"]}, k=3) == 1.0


def test_short_lists_count_missing_slots_as_misses():
    assert marker_precision_at_k(TRUTH, {"C": ["c1"]}, k=4) == 0.25


def test_classes_are_matched_by_name_and_unshared_ones_ignored():
    ranked = {"A": ["a1"], "Z": ["z1"], 3: ["n"]}
    assert precision_at_k_per_class(TRUTH, ranked, 1) == {"A": 1.0}
    assert marker_precision_at_k({1: ["g"]}, {"1": ["g"]}, k=1) == 1.0  # names compared as strings


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(InputError, match="no class is named in both"):
        marker_precision_at_k(TRUTH, {"Q": ["a1"]}, k=1)
    with pytest.raises(InputError, match="positive integer"):
        marker_precision_at_k(TRUTH, {"A": ["a1"]}, k=0)
    with pytest.raises(InputError, match="not label predictions"):
        marker_precision_at_k(["A", "B"], ["A", "B"], k=1)
    with pytest.raises(InputError, match="list of gene names"):
        marker_precision_at_k(TRUTH, {"A": "a1"}, k=1)


def test_the_markers_task_is_built_in(zoo_pm):
    assert "markers" in cellzoo.list_tasks()
    assert set(cellzoo.list_metrics(task="markers")) == {"marker_precision_at_10", "marker_precision_at_20"}
    assert cellzoo.get_metric("marker_precision_at_10") is marker_precision_at_10
    assert set(cellzoo.list_models(task="markers")) == {"random_genes", "true_markers"}


def test_true_markers_reads_the_declaration():
    import anndata
    import numpy as np

    adata = anndata.AnnData(np.zeros((2, 2), np.float32))
    assert true_markers(adata) is None
    adata.uns["cellzoo"] = {"markers": {"A": np.array(["g1", "g2"]), 1: "g3"}}
    assert true_markers(adata) == {"A": ["g1", "g2"], "1": ["g3"]}
    adata.uns["cellzoo"] = {"markers": ["g1"]}
    with pytest.raises(InputError, match="map each class"):
        true_markers(adata)
