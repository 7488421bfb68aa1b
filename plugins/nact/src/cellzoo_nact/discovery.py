"""What a ``discover`` model returns: a cluster and a name per cell, and each cluster's markers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import anndata


@dataclass
class Discovery:
    """Per cell: ``clusters`` (cluster ids) and ``labels`` (the cluster's name); per cluster: names and markers.

    ``proba`` (cells × ``classes``) is there when the clusters were predicted by a network; it is
    None for the clusters found by clustering itself. ``labels`` and ``proba`` mirror
    :class:`cellzoo.Annotation`, so code written for annotations reads a discovery too.
    """

    clusters: np.ndarray
    labels: np.ndarray
    names: dict[str, str]
    markers: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    proba: np.ndarray | None = None
    source: str = "clustering"

    def write(self, adata: anndata.AnnData, model_name: str) -> anndata.AnnData:
        """Store into ``obs["cellzoo_<m>_cluster"]``, ``obs["cellzoo_<m>_label"]`` and ``uns["cellzoo_<m>_markers"]``.

        With probabilities also ``obsm["cellzoo_<m>_proba"]`` (columns: ``uns["cellzoo_<m>_classes"]``).
        """
        import pandas as pd

        key = f"cellzoo_{model_name}"
        classes = list(self.classes) or sorted(self.names, key=_cluster_order)
        adata.obs[f"{key}_cluster"] = pd.Categorical(np.asarray(self.clusters).astype(str), categories=classes)
        names = list(dict.fromkeys(self.names[c] for c in classes if c in self.names))
        adata.obs[f"{key}_label"] = pd.Categorical(np.asarray(self.labels).astype(str), categories=names)
        adata.uns[f"{key}_markers"] = {
            "names": {str(c): str(n) for c, n in self.names.items()},
            "genes": {str(c): [str(g) for g in genes] for c, genes in self.markers.items()},
            "scores": {str(c): float(s) for c, s in self.scores.items()},
            "source": self.source,
        }
        if self.proba is not None:
            adata.obsm[f"{key}_proba"] = np.asarray(self.proba, dtype=np.float32)
            adata.uns[f"{key}_classes"] = list(classes)
        return adata


def _cluster_order(cluster: str) -> tuple[int, Any]:
    return (0, int(cluster)) if str(cluster).isdigit() else (1, str(cluster))


def clusters_of(prediction: Any) -> np.ndarray:
    """Cluster ids of a :class:`Discovery` (or an array of them)."""
    return np.asarray(getattr(prediction, "clusters", prediction)).astype(str)


def names_of(prediction: Any) -> np.ndarray:
    """Per-cell names of a :class:`Discovery` (or an array of names)."""
    return np.asarray(getattr(prediction, "labels", prediction)).astype(str)


def labels_from_names(clusters: np.ndarray, names: Mapping[str, str]) -> np.ndarray:
    """Each cell's cluster name, vectorised over cells."""
    clusters = np.asarray(clusters).astype(str)
    unique, inverse = np.unique(clusters, return_inverse=True)
    return np.asarray([names.get(c, c) for c in unique], dtype=object)[inverse]
