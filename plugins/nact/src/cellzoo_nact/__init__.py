"""N-ACT for cellzoo: unsupervised cell-type discovery with neural attention.

Cluster the cells (Leiden), train scANNA's attention network on the clusters, rank each
cluster's genes by attention and name the cluster from a marker table::

    import cellzoo
    model = cellzoo.create_model("nact", resolution=1.0)
    adata = model.discover(cellzoo.get_dataset("pbmc68k_reduced"))
    adata.obs[["cellzoo_nact_cluster", "cellzoo_nact_label"]]

Public names (lazy, so importing the package or its hooks never imports torch or scanpy):
:class:`Nact`, :class:`NactConfig`, the classical baseline :class:`LeidenWilcoxon`, their base
:class:`ClusterDiscoverer`, :class:`Discovery`, :class:`MarkerTable`, the metrics
:func:`ari`, :func:`nmi`, :func:`name_accuracy`, and the :class:`RandomClusters` control.
"""

from __future__ import annotations

from cellzoo import lazy_module

__version__ = "0.1.0"

_API = {
    "Nact": "model",
    "NactConfig": "config",
    "LeidenWilcoxon": "baseline",
    "LeidenWilcoxonConfig": "config",
    "ClusterDiscoverer": "discoverer",
    "Discovery": "discovery",
    "MarkerTable": "naming",
    "name_clusters": "naming",
    "ari": "metrics",
    "nmi": "metrics",
    "name_accuracy": "metrics",
    "RandomClusters": "controls",
    "cluster_cells": "clustering",
}

__getattr__, __dir__, __all__ = lazy_module(__name__, _API, extra=["__version__"])
