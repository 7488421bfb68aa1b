"""Configuration dataclasses of the classical baselines.

Kept apart from the models so that the hook module can name them without importing numpy or
scikit-learn. Bad values raise :class:`cellzoo.errors.ConfigError` when the config is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from cellzoo.errors import ConfigError


def _positive(model: str, key: str, value: float, integer: bool = False) -> None:
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{model}: {key} must be an integer, got {value!r}")
    if not value > 0:
        raise ConfigError(f"{model}: {key} must be > 0, got {value!r}")


def _check_clip(model: str, clip: float | None) -> None:
    if clip is not None and not clip > 0:
        raise ConfigError(f"{model}: clip must be > 0 or None (no clipping), got {clip!r}")


@dataclass(frozen=True)
class LogRegConfig:
    """CellTypist-style logistic regression.

    ``C`` is the inverse L2 strength and ``max_iter`` the lbfgs iteration cap, as in
    :class:`sklearn.linear_model.LogisticRegression` (CellTypist: C=1, max_iter=1000 below 50k
    cells). ``clip`` caps standardised values from above, as CellTypist does; ``batch_size`` is
    the number of cells densified at once when predicting.
    """

    C: float = 1.0
    max_iter: int = 1000
    clip: float | None = 10.0
    batch_size: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("logreg", "C", self.C)
        _positive("logreg", "max_iter", self.max_iter, integer=True)
        _positive("logreg", "batch_size", self.batch_size, integer=True)
        _check_clip("logreg", self.clip)


@dataclass(frozen=True)
class LinearSVMConfig:
    """Linear support vector machine (one-vs-rest, squared hinge), the classifier Abdelaal et al. ran.

    ``C`` and ``max_iter`` are :class:`sklearn.svm.LinearSVC`'s; the input is the same
    standardised log1p matrix as :class:`LogRegConfig`'s. ``C=0.003`` (not sklearn's 1.0) is the
    value nested cross-validation picked on pbmc68k_reduced (10 of 15 outer folds): on standardised
    genes C=1 barely regularises and overfits small training sets (0.809 vs 0.828 accuracy there).
    The penalty is summed over cells, so the same C regularises large training sets less.
    """

    C: float = 0.003
    max_iter: int = 5000
    clip: float | None = 10.0
    batch_size: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("linear_svm", "C", self.C)
        _positive("linear_svm", "max_iter", self.max_iter, integer=True)
        _positive("linear_svm", "batch_size", self.batch_size, integer=True)
        _check_clip("linear_svm", self.clip)


@dataclass(frozen=True)
class KNNConfig:
    """k nearest neighbours (Euclidean, uniform votes) on a PCA of the standardised log1p input.

    ``n_neighbors=5`` is Open Problems' setting; ``n_components`` is capped at fit time by the
    number of training cells and genes.
    """

    n_neighbors: int = 5
    n_components: int = 50
    clip: float | None = 10.0
    batch_size: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("knn", "n_neighbors", self.n_neighbors, integer=True)
        _positive("knn", "n_components", self.n_components, integer=True)
        _positive("knn", "batch_size", self.batch_size, integer=True)
        _check_clip("knn", self.clip)


@dataclass(frozen=True)
class WilcoxonConfig:
    """Wilcoxon rank-sum markers (scanpy's ``rank_genes_groups`` default test, no tie correction).

    ``n_markers`` is how many of each class's top genes the marker-score classifier averages;
    ``batch_size`` the number of cells densified at once when predicting.
    """

    n_markers: int = 25
    batch_size: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("wilcoxon", "n_markers", self.n_markers, integer=True)
        _positive("wilcoxon", "batch_size", self.batch_size, integer=True)
