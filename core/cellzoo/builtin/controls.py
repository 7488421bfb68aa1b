"""Open Problems–style control methods for ``annotate``.

The scaled scores of every real method are placed between these: ``true_labels`` (positive
control, sees the solution), ``random_labels`` and ``majority`` (negative controls).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..model import Annotation, Annotator, check_state_keys


@dataclass(frozen=True)
class ControlConfig:
    seed: int = 0


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
