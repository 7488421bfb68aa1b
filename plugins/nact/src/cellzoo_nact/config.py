"""N-ACT's configuration: a light module (no torch, no scanpy) so listing the zoo stays fast."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cellzoo.errors import ConfigError
from cellzoo_scanna import ScannaConfig

PREPROCESS = ("scale", "zheng17", "none")
CLUSTERING = ("auto", "leiden", "louvain")
#: scANNA's attention, gene-score (γ) and attribution rankings (cellzoo_scanna.model)
MARKER_METHODS = ("attention", "tfidf", "gamma", "gamma_contrast", "ig", "ig_zeros", "grad_input")


@dataclass(frozen=True)
class NactConfig(ScannaConfig):
    """The clustering, the scANNA network trained on the clusters, and the naming of clusters.

    Clustering follows the lab's ``TrainSplit.Cluster`` (seed-systems §2.3): optional
    preprocessing, PCA with ``n_pcs`` components, a ``n_neighbors`` graph, Leiden at
    ``resolution`` with ``random_state = seed``. The network and its training are scANNA's: every
    field of :class:`cellzoo_scanna.ScannaConfig` (Adam 1e-4, batch 128, 50 epochs, at least
    2,000 optimizer steps, point-wise feed-forward width 128, input masking 0.5, early stopping
    on a 10 % cluster-stratified validation split, ...) with its default, except ``seed`` (0),
    which also seeds the clustering. Naming: a cluster's ``n_markers`` top attention genes
    are scored against each cell type of ``marker_table`` (the shipped PBMC table when None;
    ``"declared"``: the markers the data declares in ``uns["cellzoo"]["markers"]``, for benchmarks
    whose marker knowledge comes with the dataset, such as a simulation's).

    ``masking_fraction`` is scANNA's input masking during training (its default, tuned on PBMC);
    0 turns it off, as in the reference N-ACT code — worth doing on few genes, where masking half
    of them hides the signal.
    """

    #: seeds the clustering (PCA, neighbours, Leiden/Louvain) and the network's training
    seed: int = 0
    # -- the clustering
    #: "scale": log1p CP10k → z-score per gene (clipped at 10) → PCA; "zheng17": scanpy's
    #: recipe_zheng17 on raw counts (needs counts); "none": PCA of the log1p data
    preprocess: str = "scale"
    n_pcs: int = 50
    n_neighbors: int = 15
    resolution: float = 1.0
    #: "auto": Leiden when igraph is installed, else Louvain (networkx); or force one of them
    clustering: str = "auto"
    # -- markers and names
    n_markers: int = 25
    marker_method: str = "attention"
    #: path to a CSV with columns cell_type, gene (and optionally source); None: the shipped PBMC table;
    #: "declared": the markers the fitted AnnData declares in uns["cellzoo"]["markers"]
    marker_table: str | None = None
    #: a cluster whose best score is not above this stays "unassigned"
    min_score: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()  # the training recipe and scANNA's network
        problems = self.integer_problems(("n_pcs", "n_neighbors", "n_markers"))
        if self.preprocess not in PREPROCESS:
            problems.append(f"preprocess={self.preprocess!r} must be one of {PREPROCESS}")
        if self.clustering not in CLUSTERING:
            problems.append(f"clustering={self.clustering!r} must be one of {CLUSTERING}")
        if self.marker_method not in MARKER_METHODS:
            problems.append(f"marker_method={self.marker_method!r} must be one of {MARKER_METHODS}")
        if not problems and self.n_neighbors < 2:
            problems.append(f"n_neighbors={self.n_neighbors!r} must be at least 2")
        if not self.resolution > 0:
            problems.append(f"resolution={self.resolution!r} must be positive (larger gives more clusters)")
        if not 0.0 <= self.min_score < 1.0:
            problems.append(f"min_score={self.min_score!r} must be in [0, 1) (scores are cosine similarities)")
        self.reject(problems)

    def scanna_config(self) -> ScannaConfig:
        """The configuration of the scANNA network N-ACT trains on the clusters (its fields of this one)."""
        return ScannaConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ScannaConfig) if f.init})


@dataclass(frozen=True)
class RandomClustersConfig:
    """The ``random_clusters`` control: ``n_clusters`` uniform random clusters, seeded."""

    seed: int = 0
    n_clusters: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.n_clusters, bool) or not isinstance(self.n_clusters, int) or self.n_clusters < 1:
            raise ConfigError(f"n_clusters={self.n_clusters!r} must be a positive integer")
