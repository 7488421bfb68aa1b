"""cellzoo-example: a minimal third-party cellzoo plugin (the entry point of group ``cellzoo``).

The hooks only declare; the model, dataset and metric modules are imported when used.
"""

from __future__ import annotations

from cellzoo import DatasetSpec, MetricSpec, ModelSpec, hookimpl

from .config import CentroidConfig

__version__ = "0.1.0"


@hookimpl
def cellzoo_models():
    return [
        ModelSpec(
            name="example_centroid",
            task="annotate",
            builder="cellzoo_example.model:ExampleCentroid",
            config=CentroidConfig,
            summary="Nearest-centroid annotator on log1p-normalised expression (numpy only).",
            role="baseline",
            license="MIT",
            authors=("cellzoo developers",),
            tags=("example", "numpy"),
        )
    ]


@hookimpl
def cellzoo_datasets():
    return [
        DatasetSpec(
            name="example_blobs",
            tasks=("annotate",),
            loader="cellzoo_example.data:example_blobs",
            label_key="cell_type",
            input_state="counts",
            summary="Tiny synthetic counts (90 cells x 40 genes, 3 types with marker genes).",
            n_obs=90,
            n_vars=40,
            license="MIT",
        )
    ]


@hookimpl
def cellzoo_metrics():
    return [
        MetricSpec(
            name="example_balanced_accuracy",
            task="annotate",
            function="cellzoo_example.metrics:balanced_accuracy",
            summary="Mean recall over the true classes (rare types count as much as common ones).",
        )
    ]
