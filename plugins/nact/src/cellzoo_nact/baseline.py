"""The classical discover baseline: Leiden clusters → Wilcoxon markers → the same naming table.

What an analyst does with scanpy without a network (``sc.tl.leiden``, ``sc.tl.rank_genes_groups
(method="wilcoxon")``, then markers looked up against a table), run with N-ACT's clustering
settings and naming rule, so the difference between the two is the marker ranking alone.
New cells are assigned to the nearest cluster centroid (Pearson correlation of log1p CP10k
profiles, as scmap-cluster assigns cells to cluster centroids).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from cellzoo import Annotator, check_state_keys
from cellzoo.errors import ArtifactError

from .config import LeidenWilcoxonConfig
from .discoverer import CLUSTER_KEY, ClusterDiscoverer

if TYPE_CHECKING:
    import anndata

#: correlations are multiplied by this before the softmax, so a cell 0.1 closer in correlation to one
#: centroid gets e² ≈ 7× its probability (the argmax, the nearest centroid, is what matters)
SHARPNESS = 20.0
#: cells whose correlations are computed at once
BLOCK = 4096


class ClusterCentroids(Annotator):
    """Nearest-centroid assignment: each class's mean log1p CP10k profile; a cell goes to the most correlated."""

    input_state: ClassVar[str] = "log1p_norm"

    def __init__(self, config=None):
        super().__init__(config)
        self.centroids: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        return super().is_fitted and self.centroids is not None

    def _fit(self, X, y: np.ndarray) -> None:
        n_classes = len(self.classes)
        onehot = sp.csr_matrix((np.ones(len(y)), (y, np.arange(len(y)))), shape=(n_classes, len(y)))
        sums = onehot @ X
        sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
        self.centroids = (sums / np.bincount(y, minlength=n_classes)[:, None]).astype(np.float32)

    def _predict_proba(self, X, **kwargs) -> np.ndarray:
        centred = self.centroids - self.centroids.mean(axis=1, keepdims=True)
        centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
        out = np.empty((X.shape[0], len(self.classes)), dtype=np.float32)
        for start in range(0, X.shape[0], BLOCK):
            block = X[start : start + BLOCK]
            block = block.toarray() if sp.issparse(block) else np.asarray(block, dtype=np.float32)
            block = block - block.mean(axis=1, keepdims=True)
            norms = np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
            logits = SHARPNESS * (block / norms) @ centred.T
            logits -= logits.max(axis=1, keepdims=True)
            weights = np.exp(logits)
            out[start : start + block.shape[0]] = weights / weights.sum(axis=1, keepdims=True)
        return out

    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"centroids": self.centroids}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        if self.classes is None or self.manifest is None:
            raise ArtifactError(
                "the centroids need the clusters and genes of config.json first (cellzoo.load does both)"
            )
        expected = {"centroids": np.zeros((len(self.classes), len(self.manifest.genes)), dtype=np.float32)}
        check_state_keys(expected, tensors, "leiden_wilcoxon")
        self.centroids = np.array(tensors["centroids"], dtype=np.float32)


class LeidenWilcoxon(ClusterDiscoverer):
    """Leiden at N-ACT's resolution + Wilcoxon rank-sum markers per cluster + N-ACT's naming table and rule."""

    predict_source: ClassVar[str] = "nearest centroid"

    def __init__(self, config: LeidenWilcoxonConfig | None = None):
        super().__init__(config or LeidenWilcoxonConfig())

    @property
    def assigner_input_state(self) -> str:
        return ClusterCentroids.input_state

    def new_assigner(self) -> ClusterCentroids:
        return ClusterCentroids()

    def rank_markers(self, assigner: ClusterCentroids, work: anndata.AnnData) -> dict[str, list[str]]:
        """Each cluster's genes by the Wilcoxon z-score against the other clusters (scanpy, no tie correction)."""
        import scanpy as sc

        classes = list(assigner.classes)
        if len(classes) < 2:
            # one cluster has no "rest" to test against: its most expressed genes are its markers
            mean = np.asarray(work.X.mean(axis=0)).ravel()
            order = np.argsort(-mean, kind="stable")[: self.config.n_markers]
            return {classes[0]: [str(g) for g in work.var_names[order]]}
        work = work.copy()
        work.obs[CLUSTER_KEY] = work.obs[CLUSTER_KEY].astype("category")
        n = min(self.config.n_markers, work.n_vars)
        # log1p CP10k, which scanpy expects; it reads uns["log1p"] to know the base
        work.uns["log1p"] = {"base": None}
        sc.tl.rank_genes_groups(work, CLUSTER_KEY, method="wilcoxon", n_genes=n, use_raw=False)
        ranked = work.uns["rank_genes_groups"]["names"]
        return {c: [str(g) for g in ranked[c]] for c in classes}
