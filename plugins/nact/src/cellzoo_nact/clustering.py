"""Pseudo-labels for N-ACT: the lab's clustering recipe (preprocess → PCA → kNN graph → Leiden).

scanpy does every step. Leiden needs ``igraph`` (scanpy's ``flavor="igraph"``); where it is not
installed, ``clustering="auto"`` uses networkx's Louvain on the same scanpy graph with the same
resolution and seed (the result records which one ran). Cluster ids are ``"0"``, ``"1"``, …
numbered by decreasing size, as scanpy numbers Leiden clusters.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from cellzoo.errors import ConfigError, InputError

if TYPE_CHECKING:
    import anndata

    from .config import NactConfig

logger = logging.getLogger(__name__)

#: below this many cells a kNN graph with the default 15 neighbours is not meaningful
MIN_CELLS = 10


@dataclass(frozen=True)
class Clustering:
    """Cluster id per cell and how it was obtained."""

    labels: np.ndarray  # str cluster id per cell
    method: str  # "leiden" or "louvain"
    resolution: float
    n_pcs: int
    n_neighbors: int
    preprocess: str

    @property
    def n_clusters(self) -> int:
        return len(np.unique(self.labels))

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "resolution": self.resolution,
            "n_pcs": self.n_pcs,
            "n_neighbors": self.n_neighbors,
            "preprocess": self.preprocess,
            "n_clusters": self.n_clusters,
        }


def leiden_available() -> bool:
    return importlib.util.find_spec("igraph") is not None


def clustering_method(requested: str) -> str:
    """The algorithm that will run for ``requested`` ("auto", "leiden" or "louvain")."""
    if requested == "louvain":
        return "louvain"
    if leiden_available():
        return "leiden"
    if requested == "leiden":
        raise ConfigError(
            "clustering='leiden' needs the igraph package (scanpy's Leiden, flavor='igraph'), which is not "
            "installed; run `pip install igraph`, or use clustering='auto' to fall back to Louvain"
        )
    return "louvain"


def _embedding_input(adata: anndata.AnnData, config: NactConfig) -> anndata.AnnData:
    """A fresh AnnData holding the matrix the PCA sees, preprocessed as configured."""
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    from cellzoo import InputContract, prepare_input

    obs = pd.DataFrame(index=adata.obs_names.copy())
    var = pd.DataFrame(index=adata.var_names.copy())
    if config.preprocess == "zheng17":
        counts = prepare_input(adata, InputContract(state="counts"))
        work = ad.AnnData(X=sp.csr_matrix(counts, dtype=np.float32), obs=obs, var=var)
        sc.pp.recipe_zheng17(work, n_top_genes=min(1000, work.n_vars - 1))
        return work
    X = prepare_input(adata, InputContract(state="log1p_norm"))
    if config.preprocess == "scale":
        # z-scoring centres every gene, so the matrix becomes dense anyway (scanpy would densify it too)
        X = X.toarray() if sp.issparse(X) else X
        work = ad.AnnData(X=np.asarray(X, dtype=np.float32), obs=obs, var=var)
        sc.pp.scale(work, max_value=10)
        return work
    X = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, dtype=np.float32)
    return ad.AnnData(X=X, obs=obs, var=var)


def cluster_cells(adata: anndata.AnnData, config: NactConfig) -> Clustering:
    """Cluster the cells of ``adata`` as :mod:`cellzoo_nact.clustering` describes."""
    import scanpy as sc

    if adata.n_obs < MIN_CELLS:
        raise InputError(
            f"N-ACT clusters cells on a nearest-neighbour graph and needs at least {MIN_CELLS} cells; got "
            f"{adata.n_obs}. Give it the whole data set (fit), then predict() small batches"
        )
    method = clustering_method(config.clustering)
    work = _embedding_input(adata, config)
    n_pcs = max(1, min(config.n_pcs, work.n_obs - 1, work.n_vars - 1))
    sc.pp.pca(work, n_comps=n_pcs, random_state=config.seed)
    n_neighbors = min(config.n_neighbors, work.n_obs - 1)
    sc.pp.neighbors(work, n_neighbors=n_neighbors, n_pcs=n_pcs, random_state=config.seed)
    graph = work.obsp["connectivities"]
    if method == "leiden":
        sc.tl.leiden(
            work,
            resolution=config.resolution,
            random_state=config.seed,
            flavor="igraph",
            n_iterations=2,
            directed=False,
        )
        codes = work.obs["leiden"].astype(int).to_numpy()
    else:
        codes = louvain_codes(graph, config.resolution, config.seed)
    labels = _by_size(codes)
    logger.info("%s at resolution %g: %d clusters", method, config.resolution, len(np.unique(labels)))
    return Clustering(labels, method, float(config.resolution), n_pcs, n_neighbors, config.preprocess)


def louvain_codes(graph: sp.spmatrix, resolution: float, seed: int) -> np.ndarray:
    """Louvain communities (networkx) of a weighted undirected graph, as one integer code per node."""
    import networkx as nx

    G = nx.from_scipy_sparse_array(sp.csr_matrix(graph))
    communities = nx.community.louvain_communities(G, weight="weight", resolution=resolution, seed=seed)
    codes = np.empty(graph.shape[0], dtype=np.int64)
    for code, members in enumerate(communities):
        codes[list(members)] = code
    return codes


def _by_size(codes: np.ndarray) -> np.ndarray:
    """Renumber clusters "0", "1", … by decreasing size (ties: smallest original code first)."""
    values, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    order = np.lexsort((values, -counts))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    return rank[inverse].astype(str).astype(object)
