"""A nearest-centroid annotator: one mean log1p profile per class, numpy only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from cellzoo import Annotator, check_state_keys

from .config import CentroidConfig


def _is_sparse(X: Any) -> bool:
    return hasattr(X, "tocsr")


def _row_norms(X: Any) -> np.ndarray:
    if _is_sparse(X):
        return np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel())
    return np.linalg.norm(np.asarray(X, dtype=np.float64), axis=1)


class ExampleCentroid(Annotator):
    """Assigns each cell to the class whose mean profile it is closest to."""

    input_state: ClassVar[str] = "log1p_norm"

    def __init__(self, config: CentroidConfig | None = None):
        super().__init__(config or CentroidConfig())
        self.centroids: np.ndarray | None = None

    def _fit(self, X: Any, y: np.ndarray) -> None:
        onehot = np.zeros((X.shape[0], len(self.classes)), dtype=np.float64)
        onehot[np.arange(X.shape[0]), y] = 1.0
        sums = np.asarray(X.T @ onehot).T  # classes × genes; sparse X stays sparse
        self.centroids = (sums / onehot.sum(axis=0)[:, None]).astype(np.float32)

    def _predict_proba(self, X: Any) -> np.ndarray:
        C = self.centroids.astype(np.float64)
        dots = np.asarray(X @ C.T, dtype=np.float64)
        if self.config.metric == "cosine":
            scores = dots / np.maximum(_row_norms(X)[:, None] * np.linalg.norm(C, axis=1)[None, :], 1e-12)
        else:
            scores = -(_row_norms(X)[:, None] ** 2 - 2 * dots + (C**2).sum(axis=1)[None, :])
        scores = scores / self.config.temperature
        scores -= scores.max(axis=1, keepdims=True)
        proba = np.exp(scores)
        return (proba / proba.sum(axis=1, keepdims=True)).astype(np.float32)

    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"centroids": self.centroids}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        expected = {"centroids": np.zeros((len(self.classes), len(self.manifest.genes)), np.float32)}
        check_state_keys(expected, tensors, self.name)
        self.centroids = np.asarray(tensors["centroids"], dtype=np.float32)
