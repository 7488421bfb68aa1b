"""Every split of cells in cellzoo, in one place.

* :func:`make_splits` — the benchmark harness's train/test folds, made once per (dataset, seed)
  and shared by every model;
* :func:`split_indices` — a registry recipe's ``all`` / ``holdout`` split (``cellzoo build``);
* :func:`validation_split` — the stratified validation cells a torch model holds out of its own
  training cells for early stopping.

Benchmark rules (``[split] kind`` of a suite):

* ``stratified_kfold`` — scikit-learn's :class:`~sklearn.model_selection.StratifiedKFold`
  (shuffled, ``random_state=seed``). A class with fewer cells than folds cannot appear in every
  test fold, so its cells go to *every training fold and no test fold*: models still have to
  cope with that class existing (as in real data), but it is never scored. The split records
  these classes (``train_only_classes``). Abdelaal et al. (2019) drop such classes instead;
  keeping them in training changes no test cell and hides nothing from the models.
* ``holdout`` — one stratified split with ``test_fraction`` of the cells in the test set;
  classes with a single cell stay in training.
* ``by_batch`` — each batch (or each of ``test_batches``) held out in turn; training is every
  other batch. Test classes missing from training are recorded (``test_only_classes``): no
  model can get those cells right, which is the point of a batch split.
* ``all`` — one "fold" whose training and test cells are every cell. Only for tasks whose fit
  never sees the labels it is scored on (``discover``: cluster everything, score the clusters) or
  whose output is not a prediction of those labels (``markers``); the plan refuses it otherwise.

Each split carries a sha256 of its index arrays, stored in every run record, so that a record
can only be reused for exactly the same cells.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BenchmarkError


@dataclass(frozen=True)
class Split:
    """One fold: indices (into the dataset's cells) of the training and the test cells."""

    fold: int
    n_folds: int
    train: np.ndarray
    test: np.ndarray
    hash: str
    train_only_classes: tuple[str, ...] = ()
    test_only_classes: tuple[str, ...] = ()
    held_out_batch: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            "n_folds": self.n_folds,
            "hash": self.hash,
            "n_train": int(self.train.size),
            "n_test": int(self.test.size),
            "train_only_classes": list(self.train_only_classes),
            "test_only_classes": list(self.test_only_classes),
            "held_out_batch": self.held_out_batch,
        }


def split_hash(train: np.ndarray, test: np.ndarray) -> str:
    """sha256 of the index arrays (little-endian int64), train then test."""
    h = hashlib.sha256()
    h.update(b"train:")
    h.update(np.ascontiguousarray(train, dtype="<i8").tobytes())
    h.update(b"test:")
    h.update(np.ascontiguousarray(test, dtype="<i8").tobytes())
    return h.hexdigest()


def _split(fold: int, n_folds: int, train, test, labels: np.ndarray, **extra: Any) -> Split:
    train = np.sort(np.asarray(train, dtype=np.int64))
    test = np.sort(np.asarray(test, dtype=np.int64))
    test_only = tuple(sorted(set(labels[test]) - set(labels[train])))
    return Split(fold, n_folds, train, test, split_hash(train, test), test_only_classes=test_only, **extra)


def _small_classes(labels: np.ndarray, minimum: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """A mask of cells whose class has at least ``minimum`` cells, and the classes that do not."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    small = counts < minimum
    return ~small[inverse], tuple(str(c) for c in classes[small])


def make_splits(labels: Sequence[Any], rule: Any, seed: int, batches: Sequence[Any] | None = None) -> list[Split]:
    """The folds of one dataset under ``rule`` (a suite's :class:`cellzoo.bench.suite.SplitRule`) for ``seed``."""
    labels = np.asarray(labels).astype(str)
    n = labels.shape[0]
    if rule.kind == "stratified_kfold":
        from sklearn.model_selection import StratifiedKFold

        keep, small = _small_classes(labels, rule.folds)
        kept = np.flatnonzero(keep)
        always_train = np.flatnonzero(~keep)
        if kept.size == 0:
            raise BenchmarkError(
                f"no class has at least {rule.folds} cells, so none can be tested in every one of {rule.folds} "
                "folds; use fewer folds or a holdout split"
            )
        kfold = StratifiedKFold(n_splits=rule.folds, shuffle=True, random_state=seed)
        return [
            _split(
                fold,
                rule.folds,
                np.concatenate([kept[train], always_train]),
                kept[test],
                labels,
                train_only_classes=small,
            )
            for fold, (train, test) in enumerate(kfold.split(np.zeros(kept.size), labels[kept]))
        ]

    if rule.kind == "holdout":
        from sklearn.model_selection import train_test_split

        keep, small = _small_classes(labels, 2)
        kept = np.flatnonzero(keep)
        try:
            train, test = train_test_split(
                kept, test_size=rule.test_fraction, stratify=labels[kept], random_state=seed, shuffle=True
            )
        except ValueError as exc:
            raise BenchmarkError(
                f"cannot hold out {rule.test_fraction:g} of {kept.size} cells with one of each class in the test "
                f"set ({exc}); raise test_fraction or use stratified_kfold"
            ) from exc
        return [_split(0, 1, np.concatenate([train, np.flatnonzero(~keep)]), test, labels, train_only_classes=small)]

    if rule.kind == "by_batch":
        if batches is None:
            raise BenchmarkError("a by_batch split needs the batch of every cell (set [split] batch_key)")
        batches = np.asarray(batches).astype(str)
        if batches.shape[0] != n:
            raise BenchmarkError(f"{batches.shape[0]} batch values for {n} cells")
        present = sorted(set(batches))
        held_out = list(rule.test_batches) if rule.test_batches is not None else present
        missing = sorted(set(held_out) - set(present))
        if missing:
            raise BenchmarkError(f"[split] test_batches {missing} are not batches of the data; batches: {present}")
        if len(present) < 2:
            raise BenchmarkError(f"a by_batch split needs at least two batches, the data has {present}")
        return [
            _split(
                fold,
                len(held_out),
                np.flatnonzero(batches != b),
                np.flatnonzero(batches == b),
                labels,
                held_out_batch=b,
            )
            for fold, b in enumerate(held_out)
        ]

    if rule.kind == "all":
        every = np.arange(n, dtype=np.int64)
        return [_split(0, 1, every, every, labels)]

    if rule.kind == "fixed":
        # the dataset's own parts: ``labels`` name each item's part (an image set's train/test)
        parts = set(labels)
        if parts != {"train", "test"}:
            raise BenchmarkError(
                "a fixed split uses the dataset's own train and test parts; this dataset has "
                f"{sorted(parts)[:5]} — use holdout or stratified_kfold"
            )
        return [_split(0, 1, np.flatnonzero(labels == "train"), np.flatnonzero(labels == "test"), labels)]

    raise BenchmarkError(f"unknown split kind {rule.kind!r}")


def split_indices(labels: np.ndarray | None, split: Any, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) cell indices for a recipe's ``split`` (``kind``, ``test_fraction``, ``seed``).

    Stratified by label, every class keeping a training cell; ``labels=None`` draws ``n`` cells plainly.
    """
    n = len(labels) if labels is not None else int(n)
    everything = np.arange(n)
    if split.kind == "all":
        return everything, np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(split.seed)
    fraction = float(split.test_fraction)
    if labels is None:
        test = rng.permutation(n)[: round(fraction * n)]
    else:
        picked = []
        for cls in np.unique(labels):  # sorted: the draw order does not depend on the data's order
            members = np.flatnonzero(labels == cls)
            k = min(round(fraction * members.size), members.size - 1)
            picked.append(rng.permutation(members)[:k])
        test = np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
    test = np.sort(test.astype(np.int64))
    return np.setdiff1d(everything, test), test


def validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified ``(train_rows, val_rows)``: about ``fraction`` of each class's cells held out.

    Classes with fewer than two cells stay entirely in training, so a rare type is never lost
    to the validation set.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    y_perm = y[order]
    # rank of each cell within its class, in shuffled order (vectorised, no loop over cells)
    sort = np.argsort(y_perm, kind="stable")
    counts = np.bincount(y_perm)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(y), dtype=np.int64)
    rank[sort] = np.arange(len(y)) - np.repeat(starts, counts)
    n_val = np.where(counts >= 2, np.floor(counts * fraction + 0.5), 0).astype(np.int64)
    held = rank < n_val[y_perm]
    return np.sort(order[~held]), np.sort(order[held])
