"""The model protocol every zoo model implements, and the shared base for annotators.

A model is a plain Python object. What the zoo needs to save, load, verify and export it:

* ``config`` — an instance of the dataclass named in its :class:`~cellzoo.ModelSpec`;
* ``state_tensors()`` / ``load_state_tensors()`` — the learned numbers, as numpy arrays
  (written to ``model.safetensors``; loading is strict);
* ``artifact_state()`` / ``restore_artifact_state()`` — JSON-able fitted metadata (gene
  manifest, class names, input contract) written to ``config.json``;
* ``golden_inputs()`` / ``infer()`` — a deterministic input set and the pure numeric function
  that maps it to outputs (written to ``test/io.safetensors`` and re-checked by ``verify``).

Task protocols add methods on top (``fit``/``predict`` for ``annotate``; see :class:`Annotator`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .data.labels import labels_of
from .errors import ArtifactError, ConfigError, InputError, NotFittedError, ProtocolError, TrainingError
from .protocols import CAPABILITIES, has_capability

if TYPE_CHECKING:
    import anndata

    from .specs import ModelSpec


class ZooModel:
    """Base class of zoo models; subclasses fill in the persistence and inference methods."""

    #: set on the instance by :func:`cellzoo.create_model` / :func:`cellzoo.load`
    spec: ModelSpec | None = None
    #: tolerance for comparing ``infer`` outputs with the golden set
    golden_atol: ClassVar[float] = CAPABILITIES["golden_atol"].default
    golden_rtol: ClassVar[float] = CAPABILITIES["golden_rtol"].default

    def __init__(self, config: Any = None):
        self.config = config

    @property
    def name(self) -> str:
        return self.spec.name if self.spec is not None else type(self).__name__.lower()

    @property
    def seed(self) -> int:
        return int(getattr(self.config, "seed", 0))

    # -- persistence -------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        raise NotImplementedError

    def state_tensors(self) -> dict[str, np.ndarray]:
        """The learned arrays, by name."""
        raise NotImplementedError

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        """Load arrays written by :meth:`state_tensors`; missing or unexpected keys are errors."""
        raise NotImplementedError

    def artifact_state(self) -> dict[str, Any]:
        """JSON-able fitted metadata needed to rebuild the model before its tensors are loaded."""
        return {}

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`artifact_state` (called on a model built from its config)."""

    # -- golden I/O --------------------------------------------------------------------------
    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        cfg = dataclasses.asdict(self.config) if dataclasses.is_dataclass(self.config) else self.config
        return f"{type(self).__name__}(name={self.name!r}, config={cfg!r})"


def check_state_keys(expected: Mapping[str, Any], got: Mapping[str, Any], what: str = "model") -> None:
    """Strict loading: raise :class:`ArtifactError` naming missing and unexpected tensors."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:10]}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:10]}")
        raise ArtifactError(
            f"weights do not match the {what} built from config.json: {'; '.join(parts)}. "
            "The file was written by a different architecture or configuration."
        )
    for key, value in expected.items():
        shape = tuple(np.shape(value))
        got_shape = tuple(np.shape(got[key]))
        if shape != got_shape:
            raise ArtifactError(
                f"tensor {key!r} has shape {got_shape} in the weight file but the model built from "
                f"config.json expects {shape}."
            )


# ---------------------------------------------------------------------------------------------
# annotate
# ---------------------------------------------------------------------------------------------


@dataclass
class Annotation:
    """What an annotator's ``predict`` returns: one label per cell and class probabilities."""

    labels: np.ndarray
    classes: tuple[str, ...]
    proba: np.ndarray | None = None

    def write(self, adata: anndata.AnnData, model_name: str) -> anndata.AnnData:
        """Store into ``obs["cellzoo_<model>_label"]`` and ``obsm["cellzoo_<model>_proba"]``.

        The keys are those of :func:`cellzoo.data.stream.result_keys` (spelled there only).
        """
        import pandas as pd

        from .data.stream import result_keys

        keys = result_keys(model_name, ["proba"])
        adata.obs[keys["label"][1]] = pd.Categorical(self.labels, categories=list(self.classes))
        if self.proba is not None:
            adata.obsm[keys["proba"][1]] = np.asarray(self.proba, dtype=np.float32)
            adata.uns[keys["classes"][1]] = list(self.classes)
        return adata


class Annotator(ZooModel):
    """Shared base for ``annotate`` models: label handling, gene manifest and input contract.

    Subclasses implement ``_fit(X, y)`` (``X`` cells × manifest genes in the model's input
    state, ``y`` integer codes into ``self.classes``) and ``_predict_proba(X)``; they persist
    their own tensors. Controls that need the true labels set ``requires_solution = True`` and
    receive ``solution=`` in :meth:`predict`.
    """

    task: ClassVar[str] = "annotate"
    requires_solution: ClassVar[bool] = CAPABILITIES["requires_solution"].default
    #: the input state the model consumes (see :mod:`cellzoo.data.contract`)
    input_state: ClassVar[str] = CAPABILITIES["input_state"].default
    #: below this fraction of the model's genes present in query data, predicting is an error
    min_gene_overlap: ClassVar[float] = CAPABILITIES["min_gene_overlap"].default

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.classes: tuple[str, ...] | None = None
        self.manifest = None  # cellzoo.data.genes.GeneManifest once fitted
        self.contract = None  # cellzoo.data.contract.InputContract once fitted
        self.last_alignment = None

    @property
    def is_fitted(self) -> bool:
        return self.classes is not None

    # -- the protocol ------------------------------------------------------------------------
    def fit(self, adata: anndata.AnnData, label_key: str) -> Annotator:
        from .data.contract import InputContract, prepare_input
        from .data.genes import GeneManifest

        y_text = labels_of(adata, label_key)
        classes, y = np.unique(y_text, return_inverse=True)
        self.classes = tuple(str(c) for c in classes)
        self.contract = InputContract(state=self.input_state)
        X = prepare_input(adata, self.contract)
        genes = np.asarray(adata.var_names, dtype=object)
        keep = self.selected_genes(X)
        if keep is not None:
            X, genes = X[:, keep], genes[keep]
        self.manifest = GeneManifest.from_names(genes)
        self.check_resources(X.shape[1], len(self.classes))
        self._fit(X, y.astype(np.int64))
        return self

    def predict(self, adata: anndata.AnnData, solution: np.ndarray | None = None) -> Annotation:
        """Labels and probabilities for the cells of ``adata``, through the prediction pipeline.

        The matrix is chosen once (:func:`cellzoo.data.stream.choose_source`), then checked,
        converted, aligned and given to the model's backend (:meth:`prediction_backend`): in
        chunks of rows for a model whose outputs are per cell (an exportable one), else whole (a
        sparse matrix stays sparse).
        """
        from .data.stream import ArrayResults

        results, done = self._run_pipeline(adata, ("proba",), solution, lambda w: ArrayResults(adata.n_obs, w))
        labels = np.asarray(self.classes, dtype=object)[done.codes]
        return Annotation(labels=labels, classes=self.classes, proba=results.arrays["proba"])

    def annotate(
        self, adata: anndata.AnnData, outputs: Sequence[str] = ("proba",), *, chunk_size: int | None = None
    ) -> anndata.AnnData:
        """Predict and write the results into ``adata`` (AnnData in, AnnData out).

        Labels go to ``obs["cellzoo_<model>_label"]``, each of ``outputs`` (``proba``, and for a
        model whose exported graph has it, ``attention``) to ``obsm["cellzoo_<model>_<output>"]``,
        the class names to ``uns`` (keys: :func:`cellzoo.data.stream.result_keys`). A model whose
        outputs are per cell runs in chunks of ``chunk_size`` cells (default: about 32 MiB of input).
        """
        from .data.stream import MemoryResults, finish_run, result_keys

        outputs = tuple(outputs)
        keys = result_keys(self.name, outputs)
        results, done = self._run_pipeline(
            adata, outputs, None, lambda widths: MemoryResults(adata, keys, widths), chunk_size
        )
        extras: dict[str, Any] = {"classes": list(self.classes)}
        if "attention" in outputs:
            extras["attention_genes"] = np.asarray(self.manifest.genes, dtype=object)
        finish_run(results, done, self.classes, extras, keys)
        return adata

    def prediction_backend(self, outputs: Sequence[str] = ("proba",), solution: np.ndarray | None = None) -> Any:
        """What the pipeline runs on prepared rows (:class:`cellzoo.data.stream.Backend`).

        Here ``_predict_proba``, per chunk of cells for an exportable model, else on the whole
        matrix; :class:`cellzoo.TorchAnnotator` adds its torch module for outputs beyond ``proba``.
        """
        from .data.stream import FunctionBackend

        self._check_fitted()
        if tuple(outputs) != ("proba",):
            raise ConfigError(f"model {self.name!r} gives only probabilities, not {', '.join(outputs)}")
        if self.requires_solution:
            return FunctionBackend(lambda X: {"proba": self._predict_proba(X, solution=solution)})
        return FunctionBackend(
            lambda X: {"proba": self._predict_proba(X)}, row_wise=has_capability(self, "export_module")
        )

    def _run_pipeline(
        self,
        adata: anndata.AnnData,
        outputs: Sequence[str],
        solution: Any,
        make_results: Any,
        chunk_size: int | None = None,
    ) -> tuple[Any, Any]:
        """Run the pipeline on ``adata`` into ``make_results(widths)``: the results and the
        :class:`cellzoo.data.stream.ChunkRun` (each cell's class code, the cells without signal)."""
        from .data.stream import ChunkPreparer, chunk_rows, memory_sources, plan, require_anndata, run_chunks

        self._check_fitted()
        require_anndata(adata, f"model {self.name!r}")
        if adata.n_obs == 0:
            raise InputError("the AnnData has 0 cells; there is nothing to annotate")
        backend = self.prediction_backend(outputs, solution)
        # raw restricted to var_names, as fit() reads it (cellzoo.data.contract.prepare_input)
        decided = plan(memory_sources(adata, raw="var_names"), self.contract, self.manifest, self.min_gene_overlap,
                       "the AnnData")  # fmt: skip
        self.last_alignment = decided.alignment
        source = decided.source
        chunk = chunk_rows(backend, source.n_obs, chunk_size, len(source.var_names), len(self.manifest.genes))
        prepare = ChunkPreparer(source, decided.state, decided.contract, decided.alignment, "the AnnData",
                                lambda rows: list(adata.obs_names[rows]), dense=backend.dense)  # fmt: skip
        results = make_results(self.output_widths(outputs))
        return results, run_chunks(backend, source, prepare, results, list(outputs), chunk)

    def output_widths(self, outputs: Sequence[str]) -> dict[str, int]:
        """Columns per cell of each output: one per class for ``proba``, one per gene for ``attention``."""
        widths = {"proba": len(self.classes), "attention": len(self.manifest.genes)}
        unknown = [o for o in outputs if o not in widths]
        if unknown:
            raise ConfigError(f"model {self.name!r} has no per-cell output {', '.join(unknown)}")
        return {name: widths[name] for name in outputs}

    def model_input(self, adata: anndata.AnnData):
        """``adata``'s matrix in the model's input state, aligned to its genes (sparse stays sparse)."""
        from .data.contract import prepare_input
        from .data.genes import align_genes, apply_alignment

        self._check_fitted()
        if adata.n_obs == 0:
            raise InputError("the AnnData has 0 cells; there is nothing to annotate")
        self.last_alignment = align_genes(adata.var_names, self.manifest, min_overlap=self.min_gene_overlap)
        return apply_alignment(prepare_input(adata, self.contract), self.last_alignment)

    # -- for subclasses ----------------------------------------------------------------------
    def selected_genes(self, X) -> np.ndarray | None:
        """Columns of the prepared training matrix the model trains on, or None for all of them.

        The kept genes become the gene manifest, so prediction aligns query data to them.
        """
        return None

    def check_resources(self, n_genes: int, n_classes: int) -> None:
        """Raise :class:`~cellzoo.errors.ResourceError` before training when the run cannot fit the machine."""

    def _fit(self, X, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_proba(self, X, **kwargs) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"model {self.name!r} is not trained: call .fit(adata, label_key) or load a "
                "pretrained one with cellzoo.load(name)"
            )

    # -- persistence of what every annotator shares --------------------------------------------
    def artifact_state(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "classes": list(self.classes),
            "genes": self.manifest.to_json(),
            "input_contract": self.contract.to_json(),
        }

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        from .data.contract import InputContract
        from .data.genes import GeneManifest

        try:
            self.classes = tuple(state["classes"])
            self.manifest = GeneManifest.from_json(state["genes"])
            self.contract = InputContract.from_json(state["input_contract"])
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"config.json lacks the annotator state ({exc}); the artifact is damaged") from exc

    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        from .data.contract import to_input_state

        self._check_fitted()
        rng = np.random.default_rng(seed)
        counts = rng.poisson(1.0, size=(n, len(self.manifest.genes))).astype(np.float32)
        counts[:, 0] += 1  # no all-zero cell
        X = to_input_state(counts, "counts", self.contract)
        return {"x": np.asarray(X, dtype=np.float32)}

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"proba": np.asarray(self._predict_proba(inputs["x"]), dtype=np.float32)}


# ---------------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------------


class Generator(ZooModel):
    """Shared base of ``generate`` models: learn cells from counts, sample new ones.

    ``fit(adata, label_key=None)`` reads raw counts (``X``, ``layers['counts']`` or ``raw``), keeps
    the gene manifest and, with ``label_key``, the classes, and calls ``_fit(X, y)`` with a
    cells × genes float32 count matrix and class codes (``None`` when unlabelled).
    ``sample(n, cell_type=None, seed=None)`` draws latent noise with numpy (so that the torch
    model and its ONNX export sample the same cells from the same seed), decodes it with
    ``_decode(z, codes)`` — or ``_sample`` when a model samples differently (ACTIVA's
    classifier-guided rejection) — and returns an AnnData over the training genes in
    :attr:`output_state`, with ``obs["cell_type"]`` when conditioned.

    A subclass sets :attr:`latent_dim` and :attr:`conditional` (whether ``_decode`` takes the
    class codes: cscGAN; ACTIVA conditions through a classifier instead), and implements ``_fit``
    and ``_decode``; ``golden_inputs``/``infer`` are the decoder on seeded noise.
    """

    task: ClassVar[str] = "generate"
    #: what ``fit`` reads
    input_state: ClassVar[str] = "counts"
    #: what ``sample`` returns: ``counts``, or ``nonnegative`` (per-cell scaled, no log; see ``output_target_sum``)
    output_state: ClassVar[str] = "counts"
    #: the per-cell total of the generated cells when they are library-size normalised (scGAN, ACTIVA: 20,000)
    output_target_sum: ClassVar[float | None] = None
    #: whether ``_decode`` takes class codes (a conditional generator)
    conditional: ClassVar[bool] = False
    #: whether ``sample(cell_type=…)`` works although ``_decode`` takes no codes (ACTIVA's classifier-guided ``_sample``)
    samples_types: ClassVar[bool] = False
    latent_dim: int = 128
    #: what ``infer`` returns and an exported decoder outputs
    export_output_names: ClassVar[tuple[str, ...]] = ("cells",)

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.classes: tuple[str, ...] | None = None
        self.class_counts: tuple[int, ...] | None = None
        self.manifest = None  # cellzoo.data.genes.GeneManifest once fitted
        self.fitted = False

    @property
    def is_fitted(self) -> bool:
        return self.fitted

    @property
    def contract(self) -> Any:
        """What ``fit`` reads (:class:`cellzoo.data.contract.InputContract`): raw counts."""
        from .data.contract import InputContract

        return InputContract(state=self.input_state)

    # -- the protocol ------------------------------------------------------------------------
    def fit(self, adata: anndata.AnnData, label_key: str | None = None) -> Generator:
        from .data.contract import prepare_input
        from .data.genes import GeneManifest

        if self.conditional and label_key is None:
            raise ConfigError(f"model {self.name!r} is a conditional generator: pass label_key (the cell-type column)")
        y = None
        if label_key is not None:
            classes, codes, counts = np.unique(labels_of(adata, label_key), return_inverse=True, return_counts=True)
            self.classes = tuple(str(c) for c in classes)
            self.class_counts = tuple(int(c) for c in counts)
            y = codes.astype(np.int64)
        self.manifest = GeneManifest.from_names(adata.var_names)
        X = prepare_input(adata, self.contract)
        try:
            self._fit(X, y)
        except TrainingError as exc:
            # a loop that kept its last good weights (training.LastGood) leaves a usable model behind
            self.fitted = exc.kept is not None
            raise
        self.fitted = True
        return self

    def sample(self, n: int, cell_type: str | None = None, seed: int | None = None) -> anndata.AnnData:
        """``n`` generated cells (of ``cell_type`` when given) as an AnnData over the training genes."""
        from .data.sampling import generated_cells, sampling_meta

        self._check_fitted()
        n = self._checked_n(n)
        code = None if cell_type is None else self.class_code(cell_type)
        rng = np.random.default_rng(seed)
        X = np.asarray(self._sample(n, code, rng), dtype=np.float32)
        if X.shape != (n, len(self.manifest.genes)):
            raise ProtocolError(
                f"model {self.name!r} generated shape {X.shape}; expected ({n}, {len(self.manifest.genes)})"
            )
        meta = sampling_meta(
            name=self.name, output_state=self.output_state, seed=seed, target_sum=self.output_target_sum
        )
        return generated_cells(
            X,
            self.manifest.genes,
            name=self.name,
            cell_type=None if code is None else self.classes[code],
            classes=self.classes,
            meta=meta,
        )

    def class_code(self, cell_type: str) -> int:
        """The code of ``cell_type`` among the training classes (clear errors otherwise)."""
        from .errors import UnknownNameError

        if self.classes is None:
            raise ConfigError(
                f"model {self.name!r} was trained without labels, so it cannot sample a cell type; sample without "
                "--cell-type, or train it with --label-key"
            )
        if not (self.conditional or self.samples_types):
            raise ConfigError(
                f"model {self.name!r} is not conditional, so it cannot sample a given cell type; sample without "
                "--cell-type, or use a conditional model (cscgan, activa)"
            )
        if str(cell_type) not in self.classes:
            raise UnknownNameError("cell type", str(cell_type), self.classes,
                                   hint=f" Model {self.name!r} was trained on: {', '.join(self.classes)}.")  # fmt: skip
        return self.classes.index(str(cell_type))

    @staticmethod
    def _checked_n(n: Any) -> int:
        from .data.sampling import checked_n

        return checked_n(n)

    def latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Standard-normal latent noise, float32, drawn with numpy (:mod:`cellzoo.data.sampling`)."""
        from .data.sampling import latent_noise

        return latent_noise(n, self.latent_dim, rng)

    def sample_codes(self, n: int, code: int | None, rng: np.random.Generator) -> np.ndarray | None:
        """Class codes of ``n`` cells: all ``code``, or drawn in the training proportions (None if unlabelled)."""
        from .data.sampling import class_codes

        return class_codes(n, code, self.class_counts if self.classes is not None else None, rng)

    # -- for subclasses ----------------------------------------------------------------------
    def _fit(self, X, y: np.ndarray | None) -> None:
        raise NotImplementedError

    def _decode(self, z: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
        """Cells × genes from latent ``z`` (and class ``codes`` for a conditional model)."""
        raise NotImplementedError

    def _sample(self, n: int, code: int | None, rng: np.random.Generator) -> np.ndarray:
        z = self.latent(n, rng)
        codes = self.sample_codes(n, code, rng) if self.conditional else None
        return self._decode(z, codes)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"model {self.name!r} is not trained: call .fit(adata) or load a pretrained one with cellzoo.load(name)"
            )

    # -- persistence and golden I/O ----------------------------------------------------------
    def artifact_state(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "genes": self.manifest.to_json(),
            "classes": None if self.classes is None else list(self.classes),
            "class_counts": None if self.class_counts is None else list(self.class_counts),
        }

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        from .data.genes import GeneManifest

        try:
            self.manifest = GeneManifest.from_json(state["genes"])
            self.classes = None if state["classes"] is None else tuple(state["classes"])
            self.class_counts = None if state["class_counts"] is None else tuple(state["class_counts"])
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"config.json lacks the generator state ({exc}); the artifact is damaged") from exc
        self.fitted = True

    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        self._check_fitted()
        rng = np.random.default_rng(seed)
        inputs = {"z": self.latent(n, rng)}
        if self.conditional:
            inputs["y"] = (np.arange(n) % len(self.classes)).astype(np.int64)
        return inputs

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"cells": np.asarray(self._decode(inputs["z"], inputs.get("y")), dtype=np.float32)}


# ---------------------------------------------------------------------------------------------
# upscale
# ---------------------------------------------------------------------------------------------


class Upscaler(ZooModel):
    """Shared base of ``upscale`` models: learn from high-resolution images, up-scale others.

    ``fit(images)`` takes high-resolution images in any layout :func:`cellzoo.data.images.as_float_image`
    accepts (grey, RGB, RGBA; 8-bit, 16-bit or float in [0, 1]) and calls ``_fit(hr)`` with float32
    RGB arrays, H × W × 3 in [0, 1] (a grey image repeated over three channels; alpha dropped).
    ``upscale(image, scale)`` checks the scale against :attr:`scales`, converts the image the
    same way, runs ``_upscale(x, scale)`` — on the whole image, or on overlapping tiles of
    ``config.tile`` input pixels blended together when that is set — and returns the result in
    the input's own layout and dtype (grey stays grey, 16-bit stays 16-bit, an alpha channel is
    up-scaled bicubically beside the colour).

    A subclass implements ``_fit`` (nothing for the interpolation baselines) and ``_upscale``;
    its config holds ``scales`` (the factors it was trained for). Golden inputs are a small batch
    of low-resolution patches (``lr``, N × 3 × h × w); ``infer`` returns ``x<scale>`` for every
    scale, N × 3 × (scale·h) × (scale·w).
    """

    task: ClassVar[str] = "upscale"
    #: overlap of neighbouring tiles in input pixels (``config.tile`` > 0)
    tile_overlap: ClassVar[int] = 8
    #: side of the golden low-resolution patches
    golden_size: ClassVar[int] = 12

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.fitted = False

    @property
    def is_fitted(self) -> bool:
        return self.fitted

    @property
    def scales(self) -> tuple[int, ...]:
        """The scale factors this model up-scales by."""
        return tuple(int(s) for s in getattr(self.config, "scales", (2, 4)))

    # -- the protocol ------------------------------------------------------------------------
    def fit(self, images: Sequence[Any]) -> Upscaler:
        from .data.images import as_float_image, to_rgb

        if isinstance(images, np.ndarray) and images.ndim == 2:
            images = [images]
        if not isinstance(images, (list, tuple)) and not (isinstance(images, np.ndarray) and images.ndim == 4):
            raise InputError(
                f"{self.name}.fit takes a list of high-resolution images (numpy arrays), not {type(images).__name__}"
            )
        if len(images) == 0:
            raise InputError(f"{self.name}.fit got no images; pass at least one high-resolution image")
        self._fit([to_rgb(as_float_image(image)[0]) for image in images])
        self.fitted = True
        return self

    def upscale(self, image: np.ndarray, scale: int) -> np.ndarray:
        """``image`` up-scaled ``scale`` times, in its own layout and dtype."""
        from .data.images import upscale_with

        self._check_fitted()
        scale = self.checked_scale(scale)
        tile = int(getattr(self.config, "tile", 0) or 0)
        run = lambda part: self._checked_output(self._upscale(part, scale), part, scale)  # noqa: E731
        return upscale_with(run, image, scale, tile, self.tile_overlap)

    def checked_scale(self, scale: Any) -> int:
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) not in self.scales:
            shown = ", ".join(f"×{s}" for s in self.scales)
            raise ConfigError(
                f"model {self.name!r} up-scales by {shown}, not {scale!r}; pick one of those, or train it for that "
                "scale (--set scales=[...])"
            )
        return int(scale)

    def _checked_output(self, out: np.ndarray, x: np.ndarray, scale: int) -> np.ndarray:
        want = (x.shape[0] * scale, x.shape[1] * scale, 3)
        out = np.asarray(out, dtype=np.float32)
        if out.shape != want:
            raise ProtocolError(
                f"model {self.name!r} returned shape {out.shape} for a {x.shape} input; expected {want}"
            )
        if not np.isfinite(out).all():
            raise ProtocolError(f"model {self.name!r} produced NaN or infinite pixels; the model is broken")
        return np.clip(out, 0.0, 1.0)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"model {self.name!r} is not trained: call .fit(images) or load a pretrained one with cellzoo.load(name)"
            )

    # -- for subclasses ----------------------------------------------------------------------
    def _fit(self, images: list[np.ndarray]) -> None:
        """Learn from float32 RGB high-resolution images (H × W × 3, [0, 1])."""

    def _upscale(self, x: np.ndarray, scale: int) -> np.ndarray:
        """(scale·H) × (scale·W) × 3 float32 from a float32 RGB image H × W × 3 in [0, 1]."""
        raise NotImplementedError

    # -- persistence and golden I/O ----------------------------------------------------------
    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        check_state_keys({}, tensors, self.name)

    def artifact_state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"scales": list(self.scales)}

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        if list(state.get("scales", [])) != list(self.scales):
            raise ArtifactError(
                f"config.json of {self.name!r} records scales {state.get('scales')} but its config gives "
                f"{list(self.scales)}; the artifact is damaged"
            )
        self.fitted = True

    def golden_inputs(self, n: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
        self._check_fitted()
        rng = np.random.default_rng(seed)
        size = self.golden_size
        # smooth patches (a blurred random field), closer to images than white noise
        base = rng.random((n, 3, size // 3 + 1, size // 3 + 1)).astype(np.float32)
        lr = np.repeat(np.repeat(base, 3, axis=2), 3, axis=3)[:, :, :size, :size]
        return {"lr": np.ascontiguousarray(lr)}

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        lr = np.asarray(inputs["lr"], dtype=np.float32)
        out = {}
        for scale in self.scales:
            images = []
            for x in lr:
                hwc = np.transpose(x, (1, 2, 0))
                images.append(np.transpose(self._checked_output(self._upscale(hwc, scale), hwc, scale), (2, 0, 1)))
            out[f"x{scale}"] = np.stack(images).astype(np.float32)
        return out
