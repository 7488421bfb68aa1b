"""The ``discover`` task's negative control: clusters drawn at random, named after nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from cellzoo import ZooModel, check_state_keys
from cellzoo.errors import InputError, NotFittedError

from .config import RandomClustersConfig
from .discovery import Discovery

if TYPE_CHECKING:
    import anndata


class RandomClusters(ZooModel):
    """Each cell goes to one of ``n_clusters`` clusters uniformly at random (seeded); names never match a label.

    ARI and NMI of such clusters are about 0 (NMI slightly above for many small clusters) and the
    name accuracy is 0: the floor a discovery method must clear.
    """

    task: ClassVar[str] = "discover"
    #: the clusters ignore the data, so any input state will do
    input_state: ClassVar[str] = "any"

    def __init__(self, config: RandomClustersConfig | None = None):
        super().__init__(config or RandomClustersConfig())
        self.n_clusters: int | None = None

    @property
    def is_fitted(self) -> bool:
        return self.n_clusters is not None

    def fit(self, adata: anndata.AnnData) -> RandomClusters:
        self.n_clusters = int(self.config.n_clusters)
        return self

    def _draw(self, n: int) -> np.ndarray:
        if not self.is_fitted:
            raise NotFittedError(f"model {self.name!r} is not fitted: call .fit(adata) first")
        # seeded per call: the same model gives the same clusters for the same number of cells
        return np.random.default_rng(self.config.seed).integers(self.n_clusters, size=n)

    def predict(self, adata: anndata.AnnData) -> Discovery:
        if adata.n_obs == 0:
            raise InputError("the AnnData has 0 cells; there is nothing to cluster")
        codes = self._draw(adata.n_obs)
        classes = tuple(str(k) for k in range(self.n_clusters))
        names = {c: f"random cluster {c}" for c in classes}
        clusters = np.asarray(classes, dtype=object)[codes]
        labels = np.asarray([names[c] for c in classes], dtype=object)[codes]
        return Discovery(clusters=clusters, labels=labels, names=names, classes=classes, source="random")

    def annotate(self, adata: anndata.AnnData) -> anndata.AnnData:
        """:meth:`predict` and write the result into ``adata`` (the keys N-ACT writes)."""
        return self.predict(adata).write(adata, self.name)

    def state_tensors(self) -> dict[str, np.ndarray]:
        if not self.is_fitted:
            raise NotFittedError(f"model {self.name!r} is not fitted: call .fit(adata) first")
        return {"n_clusters": np.array([self.n_clusters], dtype=np.int64)}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        check_state_keys({"n_clusters": np.zeros(1, dtype=np.int64)}, tensors, self.name)
        self.n_clusters = int(np.asarray(tensors["n_clusters"])[0])

    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        return {"x": np.zeros((n, 1), dtype=np.float32)}

    def infer(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {"clusters": self._draw(np.asarray(inputs["x"]).shape[0]).astype(np.int64)}


class TrueClusters(ZooModel):
    """Positive control: the true labels, as both the clusters and their names (needs ``solution=``).

    It fixes what a perfect discovery scores (ARI, NMI and name accuracy of 1), so that scores
    can be scaled between it and :class:`RandomClusters`, as Open Problems scales against controls.
    """

    task: ClassVar[str] = "discover"
    requires_solution: ClassVar[bool] = True
    input_state: ClassVar[str] = "any"

    def __init__(self, config: RandomClustersConfig | None = None):
        super().__init__(config or RandomClustersConfig())
        self.fitted = False

    @property
    def is_fitted(self) -> bool:
        return self.fitted

    def fit(self, adata: anndata.AnnData) -> TrueClusters:
        self.fitted = True
        return self

    def predict(self, adata: anndata.AnnData, solution: Any = None) -> Discovery:
        if not self.fitted:
            raise NotFittedError(f"model {self.name!r} is not fitted: call .fit(adata) first")
        if solution is None:
            raise InputError("true_clusters is a positive control: it needs the true labels (solution=...)")
        labels = np.asarray(solution).astype(str)
        if labels.shape[0] != adata.n_obs:
            raise InputError(f"solution has {labels.shape[0]} labels for {adata.n_obs} cells")
        classes = tuple(np.unique(labels))
        return Discovery(
            clusters=labels.astype(object),
            labels=labels.astype(object),
            names={c: c for c in classes},
            classes=classes,
            source="truth",
        )

    def state_tensors(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            raise NotFittedError(f"model {self.name!r} is not fitted: call .fit(adata) first")
        return {"fitted": np.ones(1, dtype=np.int64)}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        check_state_keys({"fitted": np.zeros(1, dtype=np.int64)}, tensors, self.name)
        self.fitted = True

    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        return {"x": np.zeros((n, 1), dtype=np.float32)}

    def infer(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        # without a solution there is nothing to return but the number of cells seen
        return {"n_cells": np.array([np.asarray(inputs["x"]).shape[0]], dtype=np.int64)}
