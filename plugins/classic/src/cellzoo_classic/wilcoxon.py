"""Marker genes by the Wilcoxon rank-sum test of each class against the rest (scanpy's default).

The score of gene ``j`` for class ``k`` is the rank-sum statistic's z-score, as
``scanpy.tl.rank_genes_groups(method="wilcoxon")`` computes it without tie correction: with
``R`` the sum of the class's ranks of gene ``j`` over all ``N`` cells (average ranks for ties),
``n₁`` cells in the class and ``n₂ = N − n₁`` outside,
``z = (R − n₁(N + 1)/2) / sqrt(n₁ n₂ (N + 1)/12)``. Genes are ranked by ``z``, largest first.

As a classifier it assigns a cell to the class whose top markers it expresses most: the mean of
the cell's standardised expression over each class's ``n_markers`` best genes, softmaxed — the
marker-score annotation scanpy's ``score_genes`` makes possible, kept simple.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from cellzoo import Annotator, check_state_keys
from cellzoo.errors import InputError

from .config import WilcoxonConfig
from .linear import require_restored, shape_only
from .scaling import gene_mean_scale, row_blocks, softmax, standardise

#: genes ranked at once (a dense cells × genes block of float64 ranks)
GENE_BLOCK = 256


def rank_sum_scores(X, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Classes × genes z-scores of the Wilcoxon rank-sum test of each class against the rest."""
    from scipy.stats import rankdata

    if hasattr(X, "tocsc"):
        X = X.tocsc()  # column blocks of a CSR matrix would be slow to cut
    n = X.shape[0]
    sizes = np.bincount(codes, minlength=n_classes).astype(np.float64)
    rest = n - sizes
    onehot = np.zeros((n_classes, n))
    onehot[codes, np.arange(n)] = 1.0
    scores = np.empty((n_classes, X.shape[1]))
    for start in range(0, X.shape[1], GENE_BLOCK):
        block = X[:, start : start + GENE_BLOCK]
        block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
        rank_sums = onehot @ rankdata(block, axis=0)
        expected = sizes[:, None] * (n + 1) / 2.0
        spread = np.sqrt(sizes * rest * (n + 1) / 12.0)[:, None]
        scores[:, start : start + block.shape[1]] = np.divide(
            rank_sums - expected, spread, out=np.zeros_like(rank_sums), where=spread > 0
        )
    return scores


class Wilcoxon(Annotator):
    """Wilcoxon rank-sum markers per class (log1p CP10k input), and a marker-score classifier."""

    input_state: ClassVar[str] = "log1p_norm"

    def __init__(self, config: WilcoxonConfig | None = None):
        super().__init__(config or WilcoxonConfig())
        self.scores: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        return super().is_fitted and self.scores is not None

    def _fit(self, X, y: np.ndarray) -> None:
        if len(self.classes) < 2:
            raise InputError(
                f"{self.name} ranks each class against the rest, so it needs at least two classes; the labels hold "
                f"only {self.classes[0]!r}"
            )
        self.scores = rank_sum_scores(X, y, len(self.classes)).astype(np.float32)
        self.mean, self.scale = gene_mean_scale(X)

    def _top(self, n: int) -> np.ndarray:
        return np.argsort(-self.scores, axis=1, kind="stable")[:, : max(1, int(n))]

    def markers(self, adata: Any, label_key: str, n: int = 25) -> dict[str, list[str]]:
        """Per class, the ``n`` genes with the largest rank-sum z-scores (from the training cells)."""
        self._check_fitted()
        genes = np.asarray(self.manifest.genes, dtype=object)
        return {str(c): [str(g) for g in genes[row]] for c, row in zip(self.classes, self._top(n))}

    def _predict_proba(self, X) -> np.ndarray:
        top = self._top(self.config.n_markers)
        out = np.empty((X.shape[0], len(self.classes)), dtype=np.float32)
        start = 0
        for block in row_blocks(X, self.config.batch_size):
            z = standardise(block, self.mean, self.scale, None)
            out[start : start + block.shape[0]] = np.stack([z[:, row].mean(axis=1) for row in top], axis=1)
            start += block.shape[0]
        return softmax(out)

    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"scores": self.scores, "scaler.mean": self.mean, "scaler.scale": self.scale}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        require_restored(self)
        n_genes, n_classes = len(self.manifest.genes), len(self.classes)
        expected = {
            "scores": shape_only(n_classes, n_genes),
            "scaler.mean": shape_only(n_genes),
            "scaler.scale": shape_only(n_genes),
        }
        check_state_keys(expected, tensors, self.name)
        self.scores = np.array(tensors["scores"], dtype=np.float32)
        self.mean = np.array(tensors["scaler.mean"], dtype=np.float32)
        self.scale = np.array(tensors["scaler.scale"], dtype=np.float32)
