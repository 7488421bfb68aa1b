"""N-ACT's configuration: a light module (no torch, no scanpy) so listing the zoo stays fast."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

from cellzoo.errors import ConfigError
from cellzoo_scanna import ScannaConfig

PREPROCESS = ("scale", "zheng17", "none")
CLUSTERING = ("auto", "leiden", "louvain")
#: scANNA's attention, gene-score (γ) and attribution rankings (cellzoo_scanna.model)
MARKER_METHODS = ("attention", "tfidf", "gamma", "gamma_contrast", "ig", "ig_zeros", "grad_input")


@dataclass(frozen=True)
class ClusterNamingConfig:
    """The clustering and naming fields N-ACT and its classical baseline share (see :class:`NactConfig`)."""

    #: seeds the clustering (PCA, neighbours, Leiden/Louvain)
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
    #: path to a CSV with columns cell_type, gene (and optionally source); None: the shipped PBMC table;
    #: "declared": the markers the fitted AnnData declares in uns["cellzoo"]["markers"]
    marker_table: str | None = None
    #: a cluster whose best score is not above this stays "unassigned"
    min_score: float = 0.0


@dataclass(frozen=True)
class NactConfig(ScannaConfig, ClusterNamingConfig):
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
    marker_method: str = "attention"

    def __post_init__(self) -> None:
        super().__post_init__()  # the training recipe and scANNA's network
        problems = clustering_problems(self)
        if self.marker_method not in MARKER_METHODS:
            problems.append(f"marker_method={self.marker_method!r} must be one of {MARKER_METHODS}")
        self.reject(problems)

    def scanna_config(self) -> ScannaConfig:
        """The configuration of the scANNA network N-ACT trains on the clusters (its fields of this one)."""
        return ScannaConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ScannaConfig) if f.init})


@dataclass(frozen=True)
class LeidenWilcoxonConfig(ClusterNamingConfig):
    """The classical discover baseline: N-ACT's clustering and naming, with Wilcoxon markers.

    The fields are :class:`ClusterNamingConfig`'s, with N-ACT's defaults, so the baseline
    clusters exactly as N-ACT does; a cluster's markers are its ``n_markers`` genes with the
    largest Wilcoxon rank-sum z-scores against the other clusters (scanpy's
    ``rank_genes_groups``, log1p CP10k input), named with the same table and rule.
    """

    def __post_init__(self) -> None:
        problems = clustering_problems(self)
        if problems:
            raise ConfigError("invalid leiden_wilcoxon configuration: " + "; ".join(problems))


def clustering_problems(config) -> list[str]:
    """What is wrong with the clustering and naming fields N-ACT and its classical baseline share."""
    problems = []
    for key in ("n_pcs", "n_neighbors", "n_markers"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            problems.append(f"{key}={value!r} must be a positive integer")
    if config.preprocess not in PREPROCESS:
        problems.append(f"preprocess={config.preprocess!r} must be one of {PREPROCESS}")
    if config.clustering not in CLUSTERING:
        problems.append(f"clustering={config.clustering!r} must be one of {CLUSTERING}")
    if not problems and config.n_neighbors < 2:
        problems.append(f"n_neighbors={config.n_neighbors!r} must be at least 2")
    if not (isinstance(config.resolution, numbers.Real) and config.resolution > 0):
        problems.append(f"resolution={config.resolution!r} must be positive (larger gives more clusters)")
    if not (isinstance(config.min_score, numbers.Real) and 0.0 <= config.min_score < 1.0):
        problems.append(f"min_score={config.min_score!r} must be in [0, 1) (scores are cosine similarities)")
    return problems


@dataclass(frozen=True)
class RandomClustersConfig:
    """The ``random_clusters`` control: ``n_clusters`` uniform random clusters, seeded."""

    seed: int = 0
    n_clusters: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.n_clusters, bool) or not isinstance(self.n_clusters, int) or self.n_clusters < 1:
            raise ConfigError(f"n_clusters={self.n_clusters!r} must be a positive integer")
