"""cellzoo's built-in plugin: the generic parts every installation has.

Registered through the same hooks as third-party plugins (as pytest registers its own): the
``annotate``, ``markers``, ``generate`` and ``upscale`` tasks with their controls and metrics, and a
loader for the user's own ``.h5ad`` files.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hookspecs import hookimpl
from .specs import DatasetSpec, MetricSpec, ModelSpec, TaskSpec


@dataclass(frozen=True)
class ControlConfig:
    """The controls' configuration: the seed of the random ones."""

    seed: int = 0


@dataclass(frozen=True)
class InterpolationConfig:
    """The interpolation controls of ``upscale``: the scales they answer to (any, they learn nothing)."""

    seed: int = 0
    scales: tuple[int, ...] = (2, 3, 4, 8)
    #: tile side in input pixels (0: the whole image at once)
    tile: int = 0


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
            name="generate",
            protocol=("fit", "sample"),
            metrics=(
                "classifier_auc",
                "mmd_rbf",
                "energy_distance",
                "wasserstein_1",
                "gene_mean_corr",
                "gene_var_corr",
                "gene_corr_distance",
                "cv_r2",
            ),
            controls=("real_cells", "independent_genes", "shuffled_genes"),
            split="holdout",
            scoring="generate",
            summary=(
                "Generate cells: learn the training cells (and their types), sample as many cells as a held-out "
                "reference half holds (per type for conditional models), compare them with it."
            ),
        ),
        TaskSpec(
            name="upscale",
            protocol=("fit", "upscale"),
            metrics=("psnr_y_x2", "ssim_y_x2", "psnr_y_x4", "ssim_y_x4"),
            controls=("nearest", "bicubic"),
            split="fixed",
            scoring="upscale",
            data="images",
            ceiling=False,
            summary=(
                "Image super-resolution: learn from high-resolution training images, up-scale MATLAB-bicubic "
                "down-sampled test images ×2 and ×4; PSNR/SSIM on Y (BT.601) with the scale cropped from each border. "
                "Scaled scores: 0 = nearest, 1 = bicubic."
            ),
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
                name, "generate", f"cellzoo.genmetrics:{name}", higher_is_better=better, range=bounds, summary=summary
            )
            for name, better, bounds, summary in (
                (
                    "classifier_auc",
                    False,
                    (0.5, 1.0),
                    "Held-out ROC AUC of a random forest telling real from generated cells (0.5 is ideal).",
                ),
                ("mmd_rbf", False, (0.0, 2.0), "RBF-kernel MMD² on the real cells' PCs, mean of 5 bandwidths."),
                ("energy_distance", False, (0.0, 100.0), "Energy distance on the real cells' PCs."),
                ("wasserstein_1", False, (0.0, 100.0), "Exact 1-Wasserstein distance on the PCs (POT)."),
                ("wasserstein_2", False, (0.0, 100.0), "Exact 2-Wasserstein distance on the PCs (POT)."),
                ("gene_mean_corr", True, (-1.0, 1.0), "Pearson r over genes of mean log1p-CP10k expression."),
                ("gene_var_corr", True, (-1.0, 1.0), "Pearson r over genes of the variance of log1p-CP10k."),
                ("zero_fraction_corr", True, (-1.0, 1.0), "Pearson r over genes of the zero fraction."),
                (
                    "gene_corr_distance",
                    False,
                    (0.0, 2.0),
                    "Mean |difference| of gene-gene correlations over the 100 most variable genes.",
                ),
                ("cv_r2", True, (0.0, 1.0), "r² of per-gene coefficients of variation across cells (scvi PPC)."),
            )
        ),
        *(
            MetricSpec(
                f"{kind}_y_x{scale}",
                "upscale",
                f"cellzoo.imagemetrics:{kind}_y_x{scale}",
                range=bounds,
                summary=f"{label} on the Y channel (BT.601) at ×{scale}, {scale} border pixels cropped, mean over images.",
            )
            for scale in (2, 4)
            for kind, bounds, label in (
                ("psnr", (0.0, 60.0), "PSNR in dB"),
                ("ssim", (0.0, 1.0), "SSIM (11×11 Gaussian, σ 1.5)"),
            )
        ),
        MetricSpec(
            "upscale_per_image",
            "upscale",
            "cellzoo.imagemetrics:per_image",
            scalar=False,
            summary="PSNR-Y and SSIM-Y of every test image at every scale (a table).",
        ),
        MetricSpec(
            "generation_per_type",
            "generate",
            "cellzoo.genmetrics:per_type",
            scalar=False,
            summary="MMD, energy distance, mean correlation and correlation distance per cell type (a table).",
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
        *(
            ModelSpec(name, builder=f"cellzoo.controls:{builder}", summary=summary, **{**common, "task": "generate"})
            for name, builder, summary in (
                ("real_cells", "RealCells", "Positive control: held-out real cells (is given them as the solution)."),
                (
                    "independent_genes",
                    "IndependentGenes",
                    "Control: each gene drawn from its own training marginal (no gene-gene structure).",
                ),
                ("shuffled_genes", "ShuffledGenes", "Negative control: training cells with their genes permuted."),
            )
        ),
        ModelSpec(
            "nearest",
            builder="cellzoo.controls:Nearest",
            summary="Control (the floor): nearest-neighbour up-sampling, pixels repeated.",
            **{**common, "task": "upscale", "config": InterpolationConfig},
        ),
        ModelSpec(
            "bicubic",
            builder="cellzoo.controls:Bicubic",
            summary="Control (the reference to beat): MATLAB-style bicubic up-sampling (resize-right).",
            **{**common, "task": "upscale", "config": InterpolationConfig},
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
            tasks=("annotate", "generate"),
            loader="cellzoo.data.datasets:read_h5ad",
            label_key=None,
            input_state="auto",
            summary="Your own file: --dataset path/to/file.h5ad --label-key COLUMN.",
        )
    ]
