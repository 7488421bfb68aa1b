"""cellzoo hooks of the classic plugin: declarations only.

Importing this module and calling its hooks imports neither numpy, scikit-learn, torch nor
scanpy: builders are lazy ``"module:Class"`` strings resolved when a model is created.
"""

from __future__ import annotations

from cellzoo import ModelSpec, hookimpl

from .config import KNNConfig, LinearSVMConfig, LogRegConfig, WilcoxonConfig

CELLTYPIST = (
    "Domínguez Conde C, Xu C, Jarvis LB, et al. Cross-tissue immune cell analysis reveals "
    "tissue-specific features in humans. Science 376(6594):eabl5197 (2022). doi:10.1126/science.abl5197"
)
ABDELAAL = (
    "Abdelaal T, Michielsen L, Cats D, et al. A comparison of automatic cell identification methods "
    "for single-cell RNA sequencing data. Genome Biology 20:194 (2019). doi:10.1186/s13059-019-1795-z"
)
WOLF_2018 = (
    "Wolf FA, Angerer P, Theis FJ. SCANPY: large-scale single-cell gene expression data analysis. "
    "Genome Biology 19:15 (2018). doi:10.1186/s13059-017-1382-0"
)
OPEN_PROBLEMS = (
    "Luecken MD, Gigante S, Burkhardt DB, Cannoodt R, et al. Defining and benchmarking open problems "
    "in single-cell analysis. Nature Biotechnology 43(7) (2025)."
)

_COMMON = dict(task="annotate", role="baseline", license="MIT", authors=("cellzoo developers",))


@hookimpl
def cellzoo_models():
    return [
        ModelSpec(
            name="logreg",
            builder="cellzoo_classic.linear:LogReg",
            config=LogRegConfig,
            summary=(
                "CellTypist-style logistic regression: log1p CP10k input standardised per gene "
                "(capped at +10), L2-regularised multinomial logistic regression with its class probabilities."
            ),
            paper="https://doi.org/10.1126/science.abl5197",
            citation=CELLTYPIST,
            tags=("linear", "celltypist", "cpu"),
            **_COMMON,
        ),
        ModelSpec(
            name="linear_svm",
            builder="cellzoo_classic.linear:LinearSVM",
            config=LinearSVMConfig,
            summary=(
                "Linear SVM (one-vs-rest LinearSVC) on standardised log1p CP10k, the overall winner of "
                "Abdelaal et al. 2019; 'probabilities' are softmaxed decision scores, not calibrated."
            ),
            paper="https://doi.org/10.1186/s13059-019-1795-z",
            citation=ABDELAAL,
            tags=("linear", "svm", "cpu"),
            **_COMMON,
        ),
        ModelSpec(
            name="knn",
            builder="cellzoo_classic.knn:KNN",
            config=KNNConfig,
            summary=(
                "k nearest neighbours (k=5, Euclidean, uniform votes) on a 50-component PCA of "
                "standardised log1p CP10k, Open Problems' kNN baseline; proba = neighbour vote shares."
            ),
            paper="https://openproblems.bio",
            citation=OPEN_PROBLEMS,
            tags=("neighbours", "pca", "cpu"),
            **_COMMON,
        ),
        # marker rankers: the field's usual ways to find markers, beside attention (task "markers")
        ModelSpec(
            name="logreg_coef",
            builder="cellzoo_classic.linear:LogReg",
            config=LogRegConfig,
            summary="Markers = each class's largest logistic-regression weights on standardised genes (CellTypist).",
            paper="https://doi.org/10.1126/science.abl5197",
            citation=CELLTYPIST,
            tags=("linear", "celltypist", "markers", "cpu"),
            **{**_COMMON, "task": "markers"},
        ),
        ModelSpec(
            name="wilcoxon",
            builder="cellzoo_classic.wilcoxon:Wilcoxon",
            config=WilcoxonConfig,
            summary=(
                "Markers = Wilcoxon rank-sum z-scores of each class against the rest on log1p CP10k, as "
                "scanpy's rank_genes_groups ranks them."
            ),
            paper="https://doi.org/10.1186/s13059-017-1382-0",
            citation=WOLF_2018,
            tags=("statistics", "scanpy", "markers", "cpu"),
            **{**_COMMON, "task": "markers"},
        ),
    ]
