"""What a zoo model is: the protocols of every task family, and every optional capability with its default.

A model is a plain Python object. The core never asks for a base class: it calls the methods of
the protocol of the model's task (:class:`Model` plus one of :class:`Annotator`,
:class:`Discoverer`, :class:`MarkerRanker`, :class:`Generator`, :class:`Upscaler`), and reads
optional capabilities — export, tolerances, contract-suite hints — through :func:`capability`,
which falls back to the default declared here. ``cellzoo.ZooModel`` / ``cellzoo.Annotator`` (and
``cellzoo.training.TorchAnnotator`` for torch) implement the common parts; a plugin fills in the
rest. Loss weighting (SoftAdapt) is not a model but a strategy object, :class:`LossWeighting`.

This module declares; it imports nothing of cellzoo, so every layer may read it.

Protocols by task
-----------------

========== ============================================================================
task       methods, beyond :class:`Model`
========== ============================================================================
annotate   ``fit(adata, label_key)``, ``predict(adata) -> Annotation``, ``annotate(adata, outputs)``
discover   ``fit(adata)`` (no labels), ``predict(adata) -> Annotation`` naming new types
markers    ``fit(adata, label_key)``, ``markers(adata, label_key, n) -> {class: [gene, ...]}``
generate   ``fit(adata, label_key=None)``, ``sample(n, cell_type=None, seed=None) -> AnnData``
upscale    ``fit(images)``, ``upscale(image, scale) -> image``
========== ============================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import anndata
    import numpy as np


@runtime_checkable
class Model(Protocol):
    """What every zoo model offers, whatever its task: the parts the zoo saves, loads and verifies.

    ``config`` is an instance of the dataclass its :class:`~cellzoo.ModelSpec` names; ``spec`` is
    set by :func:`cellzoo.create_model` and :func:`cellzoo.load`.
    """

    config: Any
    spec: Any

    @property
    def is_fitted(self) -> bool: ...

    def state_tensors(self) -> dict[str, np.ndarray]:
        """The learned arrays by name (written to ``model.safetensors``)."""

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        """Load arrays written by :meth:`state_tensors`; missing or unexpected keys are errors."""

    def artifact_state(self) -> dict[str, Any]:
        """JSON-able fitted metadata (genes, classes, input contract) written to ``config.json``."""

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`artifact_state`, on a model built from its config."""

    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        """A deterministic input set for ``test/io.safetensors``."""

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The pure numeric function from golden inputs to outputs (what ONNX export reproduces)."""


@runtime_checkable
class Annotator(Model, Protocol):
    """``annotate``: learn labelled cells, label new ones."""

    def fit(self, adata: anndata.AnnData, label_key: str) -> Any: ...

    def predict(self, adata: anndata.AnnData) -> Any:
        """An :class:`~cellzoo.Annotation`: one label per cell, the classes and their probabilities."""

    def annotate(self, adata: anndata.AnnData, outputs: Sequence[str] = ("proba",)) -> anndata.AnnData:
        """Predict and write ``obs``/``obsm``/``uns`` keys named ``cellzoo_<model>_*`` (AnnData in, AnnData out).

        ``outputs`` are the per-cell outputs written to ``obsm`` besides the labels (``proba``;
        ``attention`` for a model whose exported graph has it).
        """


@runtime_checkable
class Discoverer(Model, Protocol):
    """``discover``: find the cell types of unlabelled cells (cluster, explain, name)."""

    def fit(self, adata: anndata.AnnData) -> Any: ...

    def predict(self, adata: anndata.AnnData) -> Any: ...


@runtime_checkable
class MarkerRanker(Model, Protocol):
    """``markers``: rank each class's genes, best first."""

    def fit(self, adata: anndata.AnnData, label_key: str) -> Any: ...

    def markers(self, adata: anndata.AnnData, label_key: str, n: int = 25) -> dict[str, list[str]]: ...


@runtime_checkable
class Generator(Model, Protocol):
    """``generate``: learn cells (optionally conditioned on their type) and sample new ones.

    ``sample`` returns an AnnData of ``n`` cells over the training genes, in the input state the
    model declares, with the conditioning type in ``obs`` when ``cell_type`` was given.
    """

    def fit(self, adata: anndata.AnnData, label_key: str | None = None) -> Any: ...

    def sample(self, n: int, cell_type: str | None = None, seed: int | None = None) -> anndata.AnnData: ...


@runtime_checkable
class Upscaler(Model, Protocol):
    """``upscale``: learn from high-resolution images, up-scale low-resolution ones by ``scale``."""

    def fit(self, images: Any) -> Any: ...

    def upscale(self, image: np.ndarray, scale: int) -> np.ndarray: ...


@runtime_checkable
class LossWeighting(Protocol):
    """``weighting``: the weights of a multi-part loss, from each part's history of values.

    ``histories[i]`` holds the recent values of loss part ``i``, oldest first; the result has one
    non-negative weight per part. Equal weights are the baseline every strategy is scored against.
    """

    def weights(self, histories: Sequence[Sequence[float]]) -> list[float]: ...


#: the protocol each task's models implement (what ``cellzoo.testing`` and the harness check)
TASK_PROTOCOLS: dict[str, type] = {
    "annotate": Annotator,
    "discover": Discoverer,
    "markers": MarkerRanker,
    "generate": Generator,
    "upscale": Upscaler,
}


# ---------------------------------------------------------------------------------------------
# optional capabilities
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """An attribute a model may set (usually on its class); :func:`capability` reads it or ``default``."""

    name: str
    default: Any
    summary: str
    #: the capability whose value is the default when this one is unset (``export_atol`` → ``golden_atol``)
    falls_back_to: str | None = None


_DECLARED = (
    # inputs
    Capability("input_state", "log1p_norm", "the input state the model consumes (cellzoo.data.contract)"),
    Capability("min_gene_overlap", 0.5, "below this share of the model's genes in the query, predicting is an error"),
    Capability("requires_solution", False, "a control that is given the truth (solution=) by the harness"),
    # persistence
    Capability("state_names", None, "state_names() -> the keys of state_tensors(), without building the arrays"),
    # verification
    Capability("golden_atol", 1e-5, "absolute tolerance of infer() against the golden set"),
    Capability("golden_rtol", 1e-4, "relative tolerance of infer() against the golden set"),
    # export (cellzoo.export)
    Capability("export_module", None, "export_module() -> torch.nn.Module computing infer() (exportable models)"),
    Capability("export_output_names", None, "names of export_module()'s outputs, in order (infer()'s keys)"),
    Capability("export_output_meanings", None, "{output: text} for outputs other than proba, logits, attention"),
    Capability("export_atol", None, "ONNX vs torch absolute tolerance", falls_back_to="golden_atol"),
    Capability("export_rtol", None, "ONNX vs torch relative tolerance", falls_back_to="golden_rtol"),
    Capability("export_fp16_atol", 1e-2, "absolute tolerance of the float16 graph"),
    Capability("export_fp16_rtol", 1e-2, "relative tolerance of the float16 graph"),
    # the contract suite (cellzoo.testing)
    Capability("contract_test_config", None, "config overrides for the contract suite's tiny data ({'epochs': 2})"),
    Capability(
        "contract_expected_failures", None, "{check: why} checks the model is known to fail (run as xfail, strict)"
    ),
)
#: every optional capability by name
CAPABILITIES: dict[str, Capability] = {c.name: c for c in _DECLARED}


def capability(model: Any, name: str) -> Any:
    """The value of optional capability ``name`` on ``model`` (an instance or a class), else its default.

    A value of ``None`` counts as unset. An undeclared name is a programming error (``KeyError``),
    so every optional attribute the core reads is listed in :data:`CAPABILITIES`.
    """
    declared = CAPABILITIES[name]
    value = getattr(model, name, None)
    if value is None and declared.falls_back_to is not None:
        return capability(model, declared.falls_back_to)
    return declared.default if value is None else value


def has_capability(model: Any, name: str) -> bool:
    """Whether ``model`` sets capability ``name`` itself (rather than relying on its default)."""
    CAPABILITIES[name]
    return getattr(model, name, None) is not None
