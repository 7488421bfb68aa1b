"""Open Problems–style control methods for ``annotate`` and ``markers``.

The scaled scores of every real method are placed between these: ``true_labels`` (positive
control, sees the solution), ``random_labels`` and ``majority`` (negative controls); for marker
rankings ``true_markers`` (the truth itself) and ``random_genes`` (genes drawn at random).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .builtin import ControlConfig
from .errors import InputError
from .model import Annotation, Annotator, check_state_keys


class _Control(Annotator):
    input_state = "any"
    min_gene_overlap = 0.0

    def __init__(self, config: ControlConfig | None = None):
        super().__init__(config or ControlConfig())
        self.freq: np.ndarray | None = None

    def _fit(self, X, y: np.ndarray) -> None:
        self.freq = np.bincount(y, minlength=len(self.classes)).astype(np.float64) / len(y)

    def state_tensors(self) -> dict[str, np.ndarray]:
        return {"class_frequency": self.freq}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        check_state_keys({"class_frequency": np.zeros(len(self.classes))}, tensors, self.name)
        self.freq = np.asarray(tensors["class_frequency"], dtype=np.float64)


class Majority(_Control):
    def _predict_proba(self, X) -> np.ndarray:
        proba = np.zeros((X.shape[0], len(self.classes)), dtype=np.float32)
        proba[:, int(np.argmax(self.freq))] = 1.0
        return proba


class RandomLabels(_Control):
    def _predict_proba(self, X) -> np.ndarray:
        # seeded per call so that the same model gives the same labels for the same cells
        rng = np.random.default_rng(self.seed)
        picks = rng.choice(len(self.classes), size=X.shape[0], p=self.freq)
        proba = np.zeros((X.shape[0], len(self.classes)), dtype=np.float32)
        proba[np.arange(X.shape[0]), picks] = 1.0
        return proba


class TrueLabels(_Control):
    requires_solution = True

    def predict(self, adata, solution=None) -> Annotation:
        self._check_fitted()
        if solution is None:
            raise InputError("true_labels is a positive control: it needs the true labels (solution=...)")
        solution = np.asarray(solution).astype(str)
        if solution.shape[0] != adata.n_obs:
            raise InputError(f"solution has {solution.shape[0]} labels for {adata.n_obs} cells")
        # classes unseen in training are kept: the positive control is right by construction
        classes = tuple(self.classes) + tuple(sorted(set(solution) - set(self.classes)))
        index = {c: i for i, c in enumerate(classes)}
        proba = np.zeros((solution.shape[0], len(classes)), dtype=np.float32)
        proba[np.arange(solution.shape[0]), [index[s] for s in solution]] = 1.0
        return Annotation(labels=solution.astype(object), classes=classes, proba=proba)

    def infer(self, inputs):
        # without a solution the positive control is the uniform distribution over classes
        return {"proba": np.full((inputs["x"].shape[0], len(self.classes)), 1.0 / len(self.classes), np.float32)}


class RandomGenes(RandomLabels):
    """Negative control: ``n`` genes drawn at random (seeded) for each class."""

    def markers(self, adata, label_key: str, n: int = 25) -> dict[str, list[str]]:
        self._check_fitted()
        genes = np.asarray(self.manifest.genes)
        rng = np.random.default_rng(self.seed)
        return {c: [str(g) for g in rng.choice(genes, size=min(n, genes.size), replace=False)] for c in self.classes}


class TrueMarkers(RandomLabels):
    """Positive control: the true markers themselves (is given them as ``solution=``)."""

    requires_solution = True

    def markers(self, adata, label_key: str, n: int = 25, solution: Mapping[str, Any] | None = None):
        self._check_fitted()
        if solution is None:
            raise InputError("true_markers is a positive control: it needs the true markers (solution=...)")
        return {str(c): [str(g) for g in genes][:n] for c, genes in solution.items()}
