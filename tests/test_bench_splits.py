"""Splits: partitions, stratification, small classes, determinism and hashes."""

from __future__ import annotations

import numpy as np
import pytest

from cellzoo.bench.suite import SplitRule
from cellzoo.data.splits import make_splits, split_hash
from cellzoo.errors import BenchmarkError


def labels_with_a_rare_class():
    # 30 A, 20 B, 2 C: C has fewer cells than folds
    labels = np.array(["A"] * 30 + ["B"] * 20 + ["C"] * 2)
    return np.random.default_rng(0).permutation(labels)


def test_stratified_kfold_partitions_the_cells_and_keeps_rare_classes_in_training():
    labels = labels_with_a_rare_class()
    rare = np.flatnonzero(labels == "C")
    splits = make_splits(labels, SplitRule(folds=5), seed=0)
    assert [s.fold for s in splits] == [0, 1, 2, 3, 4]
    tested = np.concatenate([s.test for s in splits])
    # every cell of A and B is tested exactly once; C never
    assert sorted(tested) == sorted(np.flatnonzero(labels != "C"))
    for s in splits:
        assert s.n_folds == 5
        assert not set(s.train) & set(s.test)
        assert set(s.train) | set(s.test) == set(range(labels.size))
        assert set(rare) <= set(s.train)
        assert s.train_only_classes == ("C",)
        # stratified: 30/5 = 6 A and 20/5 = 4 B per test fold
        values, counts = np.unique(labels[s.test], return_counts=True)
        assert dict(zip(values, counts)) == {"A": 6, "B": 4}
        assert s.hash == split_hash(s.train, s.test)
        assert s.to_json()["n_test"] == 10


def test_splits_are_deterministic_per_seed_and_differ_between_seeds():
    labels = labels_with_a_rare_class()
    first = make_splits(labels, SplitRule(folds=3), seed=7)
    again = make_splits(labels, SplitRule(folds=3), seed=7)
    other = make_splits(labels, SplitRule(folds=3), seed=8)
    assert [s.hash for s in first] == [s.hash for s in again]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.test, b.test)
    assert [s.hash for s in first] != [s.hash for s in other]
    assert len({s.hash for s in first}) == 3


def test_split_hash_depends_on_which_side_a_cell_is():
    train, test = np.array([0, 1, 2]), np.array([3])
    assert split_hash(train, test) != split_hash(np.array([0, 1, 3]), np.array([2]))
    assert split_hash(train, test) == split_hash(train.astype(np.int32), test.astype(np.int32))


def test_holdout_is_one_stratified_split():
    labels = np.array(["A"] * 40 + ["B"] * 20 + ["C"])
    (split,) = make_splits(labels, SplitRule(kind="holdout", test_fraction=0.25), seed=0)
    assert (split.fold, split.n_folds) == (0, 1)
    assert split.test.size == 15  # a quarter of the 60 cells of classes with two or more cells
    values, counts = np.unique(labels[split.test], return_counts=True)
    assert dict(zip(values, counts)) == {"A": 10, "B": 5}
    assert split.train_only_classes == ("C",)
    assert 60 in split.train


def test_by_batch_holds_out_each_batch_and_records_unseen_classes():
    labels = np.array(["A", "A", "B", "B", "A", "C"])
    batches = np.array(["b1", "b1", "b1", "b2", "b2", "b2"])
    splits = make_splits(labels, SplitRule(kind="by_batch", batch_key="batch"), seed=0, batches=batches)
    assert [s.held_out_batch for s in splits] == ["b1", "b2"]
    np.testing.assert_array_equal(splits[0].test, [0, 1, 2])
    np.testing.assert_array_equal(splits[1].train, [0, 1, 2])
    assert splits[1].test_only_classes == ("C",)
    only = make_splits(labels, SplitRule(kind="by_batch", test_batches=("b2",)), seed=0, batches=batches)
    assert [s.held_out_batch for s in only] == ["b2"]


def test_impossible_splits_are_errors():
    with pytest.raises(BenchmarkError, match="folds must be an integer ≥ 2"):
        SplitRule(folds=1)
    with pytest.raises(BenchmarkError, match="test_fraction"):
        SplitRule(kind="holdout", test_fraction=1.5)
    with pytest.raises(BenchmarkError, match="kind 'random'"):
        SplitRule(kind="random")
    with pytest.raises(BenchmarkError, match="no class has at least 5 cells"):
        make_splits(np.array(["A", "A", "B"]), SplitRule(folds=5), seed=0)
    with pytest.raises(BenchmarkError, match=r"test_batches \['b9'\]"):
        make_splits(
            np.array(["A", "B"]), SplitRule(kind="by_batch", test_batches=("b9",)), seed=0, batches=np.array(["x", "y"])
        )
    with pytest.raises(BenchmarkError, match="at least two batches"):
        make_splits(np.array(["A", "B"]), SplitRule(kind="by_batch"), seed=0, batches=np.array(["x", "x"]))
