"""cellzoo's built-in plugin: the generic parts every installation has.

Registered through the same hooks as third-party plugins (as pytest registers its own): the
``annotate`` and ``markers`` tasks with their controls and metrics, and a loader for the user's
own ``.h5ad`` files.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hookspecs import hookimpl
from .specs import DatasetSpec, MetricSpec, ModelSpec, TaskSpec


@dataclass(frozen=True)
class ControlConfig:
    """The controls' configuration: the seed of the random ones."""

    seed: int = 0


@hookimpl
def cellzoo_tasks():
    return [
        TaskSpec(
            name="annotate",
            protocol=("fit", "predict"),
            metrics=("accuracy", "f1_macro", "f1_weighted"),
            controls=("majority", "random_labels", "true_labels"),
            split="stratified_kfold",
            summary="Supervised cell-type annotation: learn labels on training cells, predict held-out cells.",
        ),
        TaskSpec(
            name="markers",
            protocol=("fit", "markers"),
            metrics=("marker_precision_at_10", "marker_precision_at_20"),
            controls=("random_genes", "true_markers"),
            split="all",
            scoring="markers",
            summary=(
                "Marker genes: learn the labelled cells, rank each class's genes; scored against the markers the "
                'dataset declares (uns["cellzoo"]["markers"]).'
            ),
        ),
    ]


@hookimpl
def cellzoo_metrics():
    m = "cellzoo.metrics:"
    return [
        MetricSpec("accuracy", "annotate", m + "accuracy", summary="Share of cells whose predicted label is right."),
        MetricSpec(
            "f1_macro", "annotate", m + "f1_macro", summary="Unweighted mean of per-class F1 (rare types count fully)."
        ),
        MetricSpec("f1_weighted", "annotate", m + "f1_weighted", summary="Per-class F1 weighted by class size."),
        MetricSpec(
            "f1_median", "annotate", m + "f1_median", summary="Median per-class F1 over true classes (Abdelaal 2019)."
        ),
        MetricSpec(
            "f1_per_class",
            "annotate",
            m + "f1_per_class",
            scalar=False,
            summary="F1 of each true class (a table, not scaled).",
        ),
        *(
            MetricSpec(
                f"marker_precision_at_{k}",
                "markers",
                f"cellzoo.metrics:marker_precision_at_{k}",
                summary=f"Share of each class's top-{k} genes that are true markers, averaged over classes.",
            )
            for k in (10, 20)
        ),
    ]


@hookimpl
def cellzoo_models():
    c = "cellzoo.controls:"
    common = dict(task="annotate", config=ControlConfig, role="control", license="BSD-3-Clause")
    return [
        ModelSpec(
            "majority", builder=c + "Majority", summary="Control: predicts the most frequent training label.", **common
        ),
        ModelSpec(
            "random_labels",
            builder=c + "RandomLabels",
            summary="Negative control: labels drawn from the training label frequencies.",
            **common,
        ),
        ModelSpec(
            "true_labels", builder=c + "TrueLabels", summary="Positive control: returns the true labels.", **common
        ),
        ModelSpec(
            "random_genes",
            builder="cellzoo.controls:RandomGenes",
            summary="Negative control: genes drawn at random for each class.",
            **{**common, "task": "markers"},
        ),
        ModelSpec(
            "true_markers",
            builder="cellzoo.controls:TrueMarkers",
            summary="Positive control: the dataset's true markers (is given the solution).",
            **{**common, "task": "markers"},
        ),
    ]


@hookimpl
def cellzoo_datasets():
    return [
        DatasetSpec(
            name="h5ad",
            tasks=("annotate",),
            loader="cellzoo.data.datasets:read_h5ad",
            label_key=None,
            input_state="auto",
            summary="Your own file: --dataset path/to/file.h5ad --label-key COLUMN.",
        )
    ]
