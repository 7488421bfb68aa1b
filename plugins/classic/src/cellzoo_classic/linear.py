"""Linear baselines on standardised log1p data: CellTypist-style logistic regression and a linear SVM.

scikit-learn fits them; afterwards a model is four numpy arrays (gene mean and scale, weights,
intercepts) and predicting is one batched matrix product, so loading and predicting need neither
scikit-learn nor pickles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from cellzoo import Annotator, check_state_keys
from cellzoo.errors import ArtifactError, InputError

from .config import LinearSVMConfig, LogRegConfig
from .scaling import gene_mean_scale, row_blocks, softmax, standardise, standardise_all


def shape_only(*shape: int) -> np.ndarray:
    """A zero-memory array of ``shape``, for telling :func:`cellzoo.check_state_keys` what to expect."""
    return np.broadcast_to(np.float32(0), shape)


def require_restored(model: Annotator) -> None:
    """Tensors can only be checked against a model whose classes and genes are known."""
    if model.classes is None or model.manifest is None:
        raise ArtifactError(
            f"{model.name}: load_state_tensors() needs the classes and gene manifest first; call "
            "restore_artifact_state() with the artifact's config.json state (cellzoo.load does both)"
        )


class LinearAnnotator(Annotator):
    """Shared fit/predict/persistence for models that score cells with ``X @ coef.T + intercept``."""

    input_state: ClassVar[str] = "log1p_norm"
    config_class: ClassVar[type] = LogRegConfig

    def __init__(self, config: Any = None):
        super().__init__(config if config is not None else self.config_class())
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        return super().is_fitted and self.coef is not None

    # -- training ----------------------------------------------------------------------------
    def _estimator(self):
        raise NotImplementedError

    def _fit(self, X, y: np.ndarray) -> None:
        n_classes = len(self.classes)
        if n_classes < 2:
            raise InputError(
                f"{self.name} needs at least two cell types to learn from; the labels hold only "
                f"{self.classes[0]!r}. Check the label key or train on more cell types."
            )
        mean, scale = gene_mean_scale(X)
        Xs = standardise_all(X, mean, scale, self.config.clip, self.config.batch_size)
        estimator = self._estimator().fit(Xs, y)
        # C order: sklearn's coef_ can be Fortran-ordered, and safetensors writes raw buffers
        coef = np.ascontiguousarray(estimator.coef_, dtype=np.float32)
        intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float32))
        if n_classes == 2:
            # sklearn keeps one weight row for the positive class; a zero row for the other
            # makes softmax([0, z]) = sigmoid(z), so one formula serves every class count
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([np.zeros(1, np.float32), intercept])
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept

    # -- prediction --------------------------------------------------------------------------
    def decision_function(self, X) -> np.ndarray:
        """Raw class scores (cells × classes) of a matrix already in manifest gene order."""
        self._check_fitted()
        out = np.empty((X.shape[0], len(self.classes)), dtype=np.float32)
        start = 0
        for block in row_blocks(X, self.config.batch_size):
            z = standardise(block, self.mean, self.scale, self.config.clip) @ self.coef.T
            out[start : start + block.shape[0]] = z + self.intercept
            start += block.shape[0]
        return out

    def _predict_proba(self, X) -> np.ndarray:
        return softmax(self.decision_function(X))

    def markers(self, adata: Any, label_key: str, n: int = 25) -> dict[str, list[str]]:
        """Per class, the ``n`` genes with the largest weights (on standardised genes, so comparable).

        The usual way to read markers off a linear classifier (CellTypist's ``top_markers``);
        ``adata`` and ``label_key`` are not used — the ranking is the fitted model's.
        """
        self._check_fitted()
        genes = np.asarray(self.manifest.genes, dtype=object)
        order = np.argsort(-self.coef, axis=1, kind="stable")[:, : max(1, int(n))]
        return {str(c): [str(g) for g in genes[row]] for c, row in zip(self.classes, order)}

    # -- persistence -------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"scaler.mean": self.mean, "scaler.scale": self.scale, "coef": self.coef, "intercept": self.intercept}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        require_restored(self)
        n_genes, n_classes = len(self.manifest.genes), len(self.classes)
        expected = {
            "scaler.mean": shape_only(n_genes),
            "scaler.scale": shape_only(n_genes),
            "coef": shape_only(n_classes, n_genes),
            "intercept": shape_only(n_classes),
        }
        check_state_keys(expected, tensors, self.name)
        self.mean = np.array(tensors["scaler.mean"], dtype=np.float32)
        self.scale = np.array(tensors["scaler.scale"], dtype=np.float32)
        self.coef = np.array(tensors["coef"], dtype=np.float32)
        self.intercept = np.array(tensors["intercept"], dtype=np.float32)


class LogReg(LinearAnnotator):
    """CellTypist-style logistic regression (Domínguez Conde et al., Science 2022).

    Input: log1p of counts normalised to 10,000 per cell, standardised per gene with the
    training mean and standard deviation and capped at +10, as CellTypist does. Classifier:
    L2-regularised multinomial logistic regression (lbfgs). ``predict`` returns its class
    probabilities.
    """

    config_class = LogRegConfig

    def _estimator(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.config.C, max_iter=self.config.max_iter, random_state=self.config.seed)


class LinearSVM(LinearAnnotator):
    """Linear support vector machine, the overall winner of Abdelaal et al. (Genome Biology 2019).

    Same standardised log1p input as :class:`LogReg`; one-vs-rest ``LinearSVC``. The
    "probabilities" it returns are the softmax of its decision scores: they rank the classes and
    sum to one but are **not calibrated** probabilities (do not threshold them as such).
    """

    config_class = LinearSVMConfig

    def _estimator(self):
        from sklearn.svm import LinearSVC

        return LinearSVC(C=self.config.C, max_iter=self.config.max_iter, random_state=self.config.seed)
