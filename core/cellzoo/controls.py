"""Open Problems–style control methods for ``annotate``, ``markers`` and ``generate``.

The scaled scores of every real method are placed between these: ``true_labels`` (positive
control, sees the solution), ``random_labels`` and ``majority`` (negative controls); for marker
rankings ``true_markers`` (the truth itself) and ``random_genes`` (genes drawn at random); for
generators ``real_cells`` (held-out real cells the model was not scored against: the best
achievable), ``independent_genes`` (each gene drawn from its own training marginal: right means
and variances, no gene–gene structure) and ``shuffled_genes`` (training cells with the gene
labels permuted: the floor); for image up-scaling ``nearest`` (pixels repeated: the floor) and
``bicubic`` (MATLAB-style bicubic: the reference a learned model must beat, not a ceiling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .builtin import ControlConfig
from .errors import InputError
from .model import Annotation, Annotator, Generator, Upscaler, check_state_keys


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


# -- generate ------------------------------------------------------------------------------------


class _GenerateControl(Generator):
    """A generator control that keeps its training cells (counts) and their type codes."""

    samples_types = True

    def __init__(self, config: ControlConfig | None = None):
        super().__init__(config or ControlConfig())
        self.cells: np.ndarray | None = None
        self.codes: np.ndarray | None = None
        self.n_cells = 0

    def _fit(self, X, y: np.ndarray | None) -> None:
        import scipy.sparse as sp

        self.cells = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)
        self.codes = np.full(len(self.cells), -1, dtype=np.int64) if y is None else np.asarray(y, dtype=np.int64)

    def state_tensors(self) -> dict[str, np.ndarray]:
        return {"cells": self.cells, "codes": self.codes}

    def artifact_state(self) -> dict:
        return {**super().artifact_state(), "n_cells": len(self.cells)}

    def restore_artifact_state(self, state: Mapping) -> None:
        super().restore_artifact_state(state)
        self.n_cells = int(state.get("n_cells", 0))

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        n = len(self.cells) if self.cells is not None else self.n_cells
        expected = {"cells": np.zeros((n, len(self.manifest.genes))), "codes": np.zeros(n)}
        check_state_keys(expected, tensors, self.name)
        self.cells = np.asarray(tensors["cells"], dtype=np.float32)
        self.codes = np.asarray(tensors["codes"], dtype=np.int64)

    def _pool(self, code: int | None) -> np.ndarray:
        return self.cells if code is None else self.cells[self.codes == code]

    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        return {"seed": np.asarray([seed], dtype=np.int64), "n": np.asarray([n], dtype=np.int64)}

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(int(inputs["seed"][0]))
        return {"cells": np.asarray(self._sample(int(inputs["n"][0]), None, rng), dtype=np.float32)}


class IndependentGenes(_GenerateControl):
    """Each gene of each cell drawn independently from that gene's training values (of the type asked for)."""

    def _sample(self, n: int, code: int | None, rng: np.random.Generator) -> np.ndarray:
        pool = self._pool(code)
        rows = rng.integers(0, len(pool), size=(n, pool.shape[1]))
        return pool[rows, np.arange(pool.shape[1])]


class ShuffledGenes(_GenerateControl):
    """Training cells (of the type asked for) with their genes in a fixed random order: the floor."""

    def _sample(self, n: int, code: int | None, rng: np.random.Generator) -> np.ndarray:
        pool = self._pool(code)
        order = np.random.default_rng(self.seed).permutation(pool.shape[1])
        return pool[rng.integers(0, len(pool), size=n)][:, order]


class RealCells(_GenerateControl):
    """Positive control: real held-out cells the metrics do not score against (given as ``solution``).

    It returns at most the cells it is given (of the type asked for), each once.
    """

    requires_solution = True

    def _sample(self, n: int, code: int | None, rng: np.random.Generator) -> np.ndarray:
        # without held-out cells (golden outputs only): distinct training cells
        pool = self._pool(code)
        return pool[np.sort(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]

    def sample(self, n: int, cell_type: str | None = None, seed: int | None = None, solution=None):
        if solution is None:
            raise InputError("the real_cells control samples from the held-out real cells; pass solution=AnnData")
        self._check_fitted()
        n = self._checked_n(n)
        rng = np.random.default_rng(seed)
        if cell_type is not None:
            self.class_code(cell_type)
            pool = solution[solution.obs["cell_type"].astype(str).to_numpy() == str(cell_type)]
        else:
            pool = solution
        if pool.n_obs == 0:  # a rare type may be missing from the other half: it contributes no cells
            return pool.copy()
        # never the same cell twice: a copy in both halves of the classifier test would be recognised
        rows = rng.choice(pool.n_obs, size=min(n, pool.n_obs), replace=False)
        out = pool[np.sort(rows)].copy()
        out.obs_names_make_unique()
        return out


# -- upscale -------------------------------------------------------------------------------------


class Nearest(Upscaler):
    """Nearest-neighbour up-sampling: each pixel repeated ``scale`` × ``scale`` times (the floor)."""

    def _upscale(self, x: np.ndarray, scale: int) -> np.ndarray:
        return np.repeat(np.repeat(x, scale, axis=0), scale, axis=1)


class Bicubic(Upscaler):
    """MATLAB-style bicubic up-sampling (:func:`cellzoo.data.images.imresize`): the reference to beat."""

    def _upscale(self, x: np.ndarray, scale: int) -> np.ndarray:
        from .data.images import imresize

        return np.clip(imresize(x, scale), 0.0, 1.0).astype(np.float32)
