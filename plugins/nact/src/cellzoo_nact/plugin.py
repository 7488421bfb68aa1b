"""cellzoo hooks of the N-ACT plugin: the nact model, the discover task, its metrics and control.

Declarations only: importing this module imports neither torch nor scanpy.
"""

from __future__ import annotations

from cellzoo import MetricSpec, ModelSpec, TaskSpec, hookimpl

from .config import LeidenWilcoxonConfig, NactConfig, RandomClustersConfig

CITATION = """@article{heydari2022nact,
  title   = {N-ACT: An Interpretable Deep Learning Model for Automatic Cell Type and Salient Gene Identification},
  author  = {Heydari, A. Ali and Davalos, Oscar A. and Hoyer, Katrina K. and Sindi, Suzanne S.},
  journal = {arXiv preprint arXiv:2206.04047},
  note    = {ICML 2022 Workshop on Computational Biology},
  year    = {2022}
}"""
_CONTROLS = "cellzoo_nact.controls:"
_METRICS = "cellzoo_nact.metrics:"


@hookimpl
def cellzoo_models():
    return [
        ModelSpec(
            name="nact",
            task="discover",
            builder="cellzoo_nact.model:Nact",
            config=NactConfig,
            summary=(
                "N-ACT: Leiden clusters → scANNA attention network trained on them → attention markers per "
                "cluster → cluster names from a marker table (curated PBMC table by default)."
            ),
            role="method",
            paper="https://arxiv.org/abs/2206.04047",
            license="MIT",
            authors=("A. Ali Heydari", "Oscar A. Davalos", "Katrina K. Hoyer", "Suzanne S. Sindi"),
            citation=CITATION,
            exportable=True,
            tags=("attention", "unsupervised", "clustering", "markers", "torch"),
        ),
        ModelSpec(
            name="leiden_wilcoxon",
            task="discover",
            builder="cellzoo_nact.baseline:LeidenWilcoxon",
            config=LeidenWilcoxonConfig,
            summary=(
                "Classical discover baseline: N-ACT's Leiden clustering, Wilcoxon rank-sum markers per cluster "
                "(scanpy), the same naming table and rule; new cells go to the nearest cluster centroid."
            ),
            role="baseline",
            license="MIT",
            authors=("cellzoo developers",),
            tags=("clustering", "markers", "wilcoxon", "classical"),
        ),
        ModelSpec(
            name="random_clusters",
            task="discover",
            builder=_CONTROLS + "RandomClusters",
            config=RandomClustersConfig,
            summary="Negative control: each cell in one of n_clusters random clusters; names match no label.",
            role="control",
            license="MIT",
            authors=("cellzoo developers",),
        ),
        ModelSpec(
            name="true_clusters",
            task="discover",
            builder=_CONTROLS + "TrueClusters",
            config=RandomClustersConfig,
            summary="Positive control: the true labels as clusters and names (is given the solution).",
            role="control",
            license="MIT",
            authors=("cellzoo developers",),
        ),
    ]


@hookimpl
def cellzoo_metrics():
    return [
        MetricSpec(
            "ari",
            "discover",
            _METRICS + "ari",
            range=(-0.5, 1.0),
            summary="Adjusted Rand index of the clusters against the true labels (scikit-learn).",
        ),
        MetricSpec(
            "nmi",
            "discover",
            _METRICS + "nmi",
            summary="Normalised mutual information of the clusters and the true labels (arithmetic mean).",
        ),
        MetricSpec(
            "name_accuracy",
            "discover",
            _METRICS + "name_accuracy",
            summary="Share of cells whose cluster name equals their true label (case/space-insensitive match).",
        ),
    ]


@hookimpl
def cellzoo_tasks():
    return [
        TaskSpec(
            name="discover",
            protocol=("fit", "predict"),
            metrics=("ari", "nmi", "name_accuracy"),
            controls=("random_clusters", "true_clusters"),
            # N-ACT's protocol: cluster and name every cell, then score those cells against the manual labels
            split="all",
            scoring="unsupervised",
            summary=(
                "Unsupervised cell-type discovery: fit(adata) clusters and names cells without labels; "
                "predict(adata) assigns cells to the named clusters. Scored against manual labels."
            ),
        )
    ]
