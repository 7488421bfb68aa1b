"""k nearest neighbours on a PCA of standardised log1p data (Open Problems' kNN baseline).

scikit-learn's PCA is fitted once; the model then keeps the gene scaling, the PCA mean and
components, and the training cells' embeddings and label codes. Prediction is a batched
Euclidean search in numpy with uniform votes, like ``KNeighborsClassifier(n_neighbors=k)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cellzoo import Annotator, check_state_keys
from cellzoo.errors import ArtifactError

from .config import KNNConfig
from .linear import require_restored, shape_only
from .scaling import gene_mean_scale, row_blocks, standardise, standardise_all

#: most query × training distances held at once (float32: 128 MiB); batches shrink to fit
_MAX_DISTANCES = 2**25


class KNN(Annotator):
    """kNN classifier (k=5, Euclidean, uniform weights) on up to 50 principal components.

    Input: log1p of counts normalised to 10,000 per cell, standardised per gene (capped at +10)
    as for the linear baselines. ``predict`` returns the share of the k neighbours voting for
    each class; a tie goes to the class listed first.
    """

    input_state = "log1p_norm"

    def __init__(self, config: KNNConfig | None = None):
        super().__init__(config if config is not None else KNNConfig())
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.pca_mean: np.ndarray | None = None
        self.components: np.ndarray | None = None
        self.train_embedding: np.ndarray | None = None
        self.train_labels: np.ndarray | None = None
        #: (training cells, components) as recorded in config.json, checked when tensors load
        self._sizes: tuple[int, int] | None = None

    @property
    def is_fitted(self) -> bool:
        return super().is_fitted and self.train_embedding is not None

    @property
    def n_neighbors(self) -> int:
        """k actually used: the configured k, at most the number of training cells."""
        n_train = 0 if self.train_labels is None else len(self.train_labels)
        return min(self.config.n_neighbors, n_train)

    # -- training ----------------------------------------------------------------------------
    def _fit(self, X, y: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        mean, scale = gene_mean_scale(X)
        Xs = standardise_all(X, mean, scale, self.config.clip, self.config.batch_size)
        n_components = max(1, min(self.config.n_components, Xs.shape[0] - 1, Xs.shape[1]))
        pca = PCA(n_components=n_components, random_state=self.config.seed).fit(Xs)
        self.mean, self.scale = mean, scale
        self.pca_mean = pca.mean_.astype(np.float32)
        # C order throughout: safetensors writes raw buffers
        self.components = np.ascontiguousarray(pca.components_, dtype=np.float32)
        self.train_embedding = np.ascontiguousarray(self._project(Xs))
        self.train_labels = np.asarray(y, dtype=np.int64)
        self._sizes = self.train_embedding.shape

    def _project(self, standardised: np.ndarray) -> np.ndarray:
        return (standardised - self.pca_mean) @ self.components.T

    # -- prediction --------------------------------------------------------------------------
    def _predict_proba(self, X) -> np.ndarray:
        train = self.train_embedding
        train_sq = np.einsum("ij,ij->i", train, train)
        k, n_classes = self.n_neighbors, len(self.classes)
        batch = max(1, min(self.config.batch_size, _MAX_DISTANCES // max(1, train.shape[0])))
        out = np.empty((X.shape[0], n_classes), dtype=np.float32)
        start = 0
        for block in row_blocks(X, batch):
            query = self._project(standardise(block, self.mean, self.scale, self.config.clip))
            # squared distances up to a per-row constant (|q|^2), which does not change the ranking
            dist = train_sq[None, :] - 2.0 * (query @ train.T)
            nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
            votes = self.train_labels[nearest]
            rows = np.arange(block.shape[0])[:, None]
            counts = np.bincount((rows * n_classes + votes).ravel(), minlength=block.shape[0] * n_classes)
            out[start : start + block.shape[0]] = counts.reshape(block.shape[0], n_classes) / k
            start += block.shape[0]
        return out

    # -- persistence -------------------------------------------------------------------------
    def artifact_state(self) -> dict[str, Any]:
        state = super().artifact_state()
        state["knn"] = {"n_train": int(self.train_embedding.shape[0]), "n_components": int(self.components.shape[0])}
        return state

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        super().restore_artifact_state(state)
        try:
            shapes = state["knn"]
            self._sizes = (int(shapes["n_train"]), int(shapes["n_components"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"config.json lacks the knn sizes ({exc!r}); the artifact is damaged") from exc

    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            "scaler.mean": self.mean,
            "scaler.scale": self.scale,
            "pca.mean": self.pca_mean,
            "pca.components": self.components,
            "train.embedding": self.train_embedding,
            "train.labels": self.train_labels,
        }

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        require_restored(self)
        n_genes, n_classes = len(self.manifest.genes), len(self.classes)
        if self._sizes is not None:
            n_train, n_components = self._sizes
        else:
            # restored without config.json's sizes: the tensors need only agree with each other
            n_train = len(tensors["train.labels"]) if "train.labels" in tensors else 0
            n_components = len(tensors["pca.components"]) if "pca.components" in tensors else 0
        expected = {
            "scaler.mean": shape_only(n_genes),
            "scaler.scale": shape_only(n_genes),
            "pca.mean": shape_only(n_genes),
            "pca.components": shape_only(n_components, n_genes),
            "train.embedding": shape_only(n_train, n_components),
            "train.labels": shape_only(n_train),
        }
        check_state_keys(expected, tensors, self.name)
        labels = np.array(tensors["train.labels"], dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ArtifactError(
                f"{self.name}: train.labels holds codes outside 0..{n_classes - 1} for the {n_classes} classes "
                "in config.json; the weight file belongs to another model"
            )
        self.mean = np.array(tensors["scaler.mean"], dtype=np.float32)
        self.scale = np.array(tensors["scaler.scale"], dtype=np.float32)
        self.pca_mean = np.array(tensors["pca.mean"], dtype=np.float32)
        self.components = np.array(tensors["pca.components"], dtype=np.float32)
        self.train_embedding = np.array(tensors["train.embedding"], dtype=np.float32)
        self.train_labels = labels
