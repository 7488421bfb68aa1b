"""Export a trained model to ONNX, validated against torch; a failed validation fails the export.

The export protocol
-------------------

A model whose :class:`~cellzoo.ModelSpec` says ``exportable=True`` implements

``export_module() -> torch.nn.Module``
    An eval-mode module whose ``forward(x)`` takes ``x``, float32, cells × the model's genes (its
    gene manifest, in order) in the model's declared input state — exactly what
    ``model.golden_inputs()["x"]`` holds and what ``model.infer`` takes — and returns a tuple of
    tensors (or one tensor), computing exactly what ``infer`` returns. Preprocessing that belongs
    to the model (ACTINN's rescaling, log2 and gene filter) lives in this module, hence in the
    graph. The module may share parameters with the model; the exporter only puts it in eval
    mode (float16 and counts variants wrap a copy or the module itself, never edit its weights).

``export_output_names: tuple[str, ...]``
    The names of those outputs, in order — the keys of ``infer``'s dict (``("proba",
    "attention")``). A model may instead give the module an ``output_names`` attribute.

A generator (``task = "generate"``) exports its decoder the same way: the graph's inputs are the
keys of ``golden_inputs()`` in order — latent noise ``z`` (batch × latent_dim, float32) and, for a
conditional model, class codes ``y`` (batch, int64) — and its output ``cells``. The sampling facts
(latent size, conditioning, training class proportions, the state of the generated cells) go to
the ``cellzoo.generator`` metadata entry, so :func:`cellzoo.runtime.sample_cells` samples without
torch. ``--fp16`` and ``--from-counts`` do not apply to generators.

Optional: ``export_atol`` / ``export_rtol`` (defaults: ``golden_atol`` / ``golden_rtol``),
``export_fp16_atol`` / ``export_fp16_rtol``, and ``export_output_meanings`` ({name: text}) for
outputs other than the usual ``proba``, ``logits``, ``attention``, ``embedding``.

What ``cellzoo export`` writes
------------------------------

``DIR/model.onnx``
    The graph (dynamo exporter, input ``x`` with a dynamic batch axis, named outputs, opset
    ``--opset`` or torch's default), self-contained below 2 GB (weights in ``model.onnx.data``
    above), with the ``cellzoo.*`` metadata of :mod:`cellzoo.runtime.metadata`: genes, labels,
    input contract and steps, output meanings, parent sha256, versions.
``DIR/model.from_counts.onnx`` (``--from-counts``, log1p_norm models only)
    The same model with counts → log1p_norm in the graph. It is not the default because the
    normalisation in a graph can only sum over the model's own genes: a cell's library size
    must be taken over *all* its measured genes, which only the caller sees (the runtime does it
    with :mod:`cellzoo.data.contract` before selecting the model's genes). And data that is
    already log-normalised — scanpy's ``pbmc68k_reduced`` only has log1p data over 765 genes —
    would be normalised a second time and change. The graph of ``model.onnx`` therefore takes
    the model's declared state and the metadata says how to produce it; the counts variant is
    for pipelines that only ever see raw counts over exactly the model's genes.
``DIR/model.fp16.onnx`` (``--fp16``)
    float16 weights and arithmetic for GPUs, float32 inputs and outputs, validated with its own
    tolerance and by agreement of the predicted class with float32.
``DIR/export.json``
    The validation report: every check, its numbers, the tolerances, file hashes, versions.

Validation, for each file: the onnx checker (full check); the input name, its symbolic batch
axis and width, the output names; onnxruntime (CPU) against the torch module at batch sizes 1,
2, 7 and 1024, shapes and values within the declared tolerance; the artifact's golden set
(``test/io.safetensors``) through onnxruntime. Everything is written into a temporary directory
that only replaces ``DIR`` when every check passed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .artifacts import compare_output
from .errors import ConfigError, IntegrityError, NotFittedError, ProtocolError
from .fileio import atomic_dir
from .protocols import CAPABILITIES, capability
from .runtime.metadata import OUTPUT_MEANINGS, ModelInfo, describe_steps
from .runtime.verify import verify_onnx

__all__ = [
    "EXPORT_FILE",
    "FP16_FILE",
    "FROM_COUNTS_FILE",
    "REPORT_FILE",
    "ExportReport",
    "export_module_of",
    "export_onnx",
    "verify_onnx",
]

EXPORT_FILE = "model.onnx"
FROM_COUNTS_FILE = "model.from_counts.onnx"
FP16_FILE = "model.fp16.onnx"
REPORT_FILE = "export.json"
VALIDATION_BATCHES = (1, 2, 7, 1024)
#: protobuf cannot hold more than 2 GiB; above this the weights go to a side file
EXTERNAL_DATA_BYTES = 1_800_000_000
FP16_ATOL = CAPABILITIES["export_fp16_atol"].default
FP16_RTOL = CAPABILITIES["export_fp16_rtol"].default
_QUIET_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")


# ---------------------------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------------------------


@dataclass
class Check:
    """One validation check of one exported file."""

    name: str
    passed: bool
    detail: str = ""
    max_abs_diff: float | None = None


@dataclass
class VariantReport:
    """The validation of one exported file (``model.onnx``, ``model.fp16.onnx``, …)."""

    file: str
    input_state: str
    precision: str
    atol: float
    rtol: float
    checks: list[Check] = field(default_factory=list)
    sha256: str = ""
    size: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"passed": self.passed}


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how each file validated (written as ``export.json``)."""

    directory: str
    architecture: str
    source: str
    #: the artifact's model.safetensors sha256 (None for a model that was never saved)
    parent_sha256: str | None
    #: sha256 of the weights themselves (see cellzoo.runtime.verify.weights_sha256)
    weights_sha256: str
    opset: int | None
    versions: dict[str, str]
    variants: list[VariantReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.variants) and all(v.passed for v in self.variants)

    def variant(self, file: str) -> VariantReport:
        return next(v for v in self.variants if v.file == file)

    def summary(self) -> str:
        lines = [f"export {self.source} → {self.directory}: {'PASS' if self.passed else 'FAIL'}"]
        for v in self.variants:
            lines.append(
                f"  {v.file} ({v.precision}, input {v.input_state}, atol {v.atol:g}, rtol {v.rtol:g}): "
                f"{'PASS' if v.passed else 'FAIL'}"
            )
            for c in v.checks:
                diff = f", max |diff| {c.max_abs_diff:.3g}" if c.max_abs_diff is not None else ""
                lines.append(
                    f"    {'ok  ' if c.passed else 'FAIL'} {c.name}{diff}{' — ' + c.detail if c.detail else ''}"
                )
        return "\n".join(lines)

    __str__ = summary

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "variants"}
        data["passed"] = self.passed
        data["variants"] = [v.to_json() for v in self.variants]
        return data


# ---------------------------------------------------------------------------------------------
# the graph modules
# ---------------------------------------------------------------------------------------------


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


class CountsToLog1p(nn.Module):
    """``counts → log1p(counts / total × target_sum)`` over the input's genes, then ``inner``."""

    def __init__(self, inner: nn.Module, target_sum: float):
        super().__init__()
        self.inner = inner
        self.target_sum = float(target_sum)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        total = x.sum(dim=-1, keepdim=True)
        # a cell without counts stays all zeros (0/0 would be NaN)
        safe = torch.where(total > 0, total, torch.ones_like(total))
        scale = torch.where(total > 0, self.target_sum / safe, torch.zeros_like(total))
        return _as_tuple(self.inner(torch.log1p(x * scale)))


class Float16(nn.Module):
    """A float16 copy of ``inner`` with float32 inputs and outputs (the casts are in the graph)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(inner).half().eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(o.float() for o in _as_tuple(self.inner(x.half())))


def export_module_of(model: Any) -> tuple[nn.Module, tuple[str, ...]]:
    """The eval-mode module and output names a model offers under the export protocol."""
    spec = getattr(model, "spec", None)
    name = getattr(model, "name", type(model).__name__)
    if spec is not None and not spec.exportable:
        raise ProtocolError(
            f"model {name!r} is not exportable to ONNX (its ModelSpec says exportable=False); see "
            "`cellzoo list` for the models that are"
        )
    if not callable(capability(model, "export_module")):
        raise ProtocolError(
            f"model {name!r} declares exportable=True but has no export_module() method; the plugin must implement "
            "export_module() -> torch.nn.Module and export_output_names (see cellzoo.export)"
        )
    if getattr(model, "is_fitted", True) is False:
        raise NotFittedError(f"model {name!r} is not trained; train it or load a trained artifact before exporting")
    module = model.export_module()
    if not isinstance(module, nn.Module):
        raise ProtocolError(
            f"{type(model).__name__}.export_module() returned a {type(module).__name__}, not an nn.Module"
        )
    module.eval()
    names = capability(model, "export_output_names") or getattr(module, "output_names", None)
    if not names:
        raise ProtocolError(
            f"model {name!r} names no outputs: set export_output_names = ('proba', ...) on the model (the keys of "
            "infer(), in the order export_module() returns them)"
        )
    names = tuple(str(n) for n in names)
    if len(set(names)) != len(names):
        raise ProtocolError(f"model {name!r} has repeated output names {names}")
    return module, names


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter logs and warns a lot about things that are not the user's business."""
    levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _weight_bytes(module: nn.Module) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _export_graph(
    module: nn.Module, example: Mapping[str, np.ndarray], output_names: Sequence[str], opset: int | None, arch: str
) -> Any:
    """Run the dynamo exporter; returns the onnx_ir model (metadata is added before saving)."""
    batch = torch.export.Dim("batch", min=1)
    height, width = torch.export.Dim("height", min=1), torch.export.Dim("width", min=1)
    # positional, so that the module's forward may call its arguments anything; one batch axis for all,
    # and an image (N × C × H × W) takes any height and width
    dims = tuple({0: batch, 2: height, 3: width} if v.ndim == 4 else {0: batch} for v in example.values())
    kwargs: dict[str, Any] = {
        "dynamo": True,
        "input_names": list(example),
        "output_names": list(output_names),
        "dynamic_shapes": dims,
        "external_data": _weight_bytes(module) >= EXTERNAL_DATA_BYTES,
        "verbose": False,
    }
    if opset is not None:
        kwargs["opset_version"] = int(opset)
    try:
        with _quiet_exporter():
            return torch.onnx.export(module, _tensors(example), **kwargs)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ProtocolError(
            f"torch.onnx (dynamo) could not export the module of {arch!r}: {type(exc).__name__}: {first}. The forward "
            "of export_module() must be traceable by torch.export: no Python branches on tensor values, no .item(), "
            "numpy or in-place changes of the input; the batch size must not be baked into reshapes"
        ) from exc


def _save(program: Any, path: Path, metadata: Mapping[str, str], module: nn.Module) -> None:
    program.model.metadata_props.update(metadata)
    n_genes = len(json.loads(metadata["cellzoo.genes"]))
    inputs = (
        f"input x (cells × {n_genes} genes, see cellzoo.input)"
        if "cellzoo.generator" not in metadata
        else f"inputs {', '.join(json.loads(metadata['cellzoo.generator'])['inputs'])} (see cellzoo.generator), "
        f"cells × {n_genes} genes out"
    )
    program.model.doc_string = (
        f"cellzoo export of {metadata['cellzoo.architecture']}: {inputs}, outputs described in cellzoo.outputs."
    )
    program.save(str(path), external_data=_weight_bytes(module) >= EXTERNAL_DATA_BYTES)


def _opset(program: Any) -> int | None:
    version = program.model.opset_imports.get("")
    return int(version) if version is not None else None


def _versions(opset: int | None) -> dict[str, str]:
    import onnx
    import onnxruntime
    import onnxscript

    from .constants import __version__

    return {
        "cellzoo": __version__,
        "torch": str(torch.__version__),
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opset": str(opset),
    }


def _sha256(path: Path) -> str:
    from .artifacts import sha256_file

    return sha256_file(path)


def _parent(model: Any, source: str) -> dict[str, Any]:
    """The weights the export came from: the artifact's recorded file hash and a content hash."""
    from .artifacts import WEIGHTS_FILE
    from .runtime.verify import weights_sha256

    config = getattr(model, "artifact_config", None)
    recorded = ((config or {}).get("files") or {}).get(WEIGHTS_FILE) or {}
    return {
        "source": source,
        "file": WEIGHTS_FILE,
        "sha256": recorded.get("sha256"),
        "weights_sha256": weights_sha256(model.state_tensors()),
        "saved": bool(recorded.get("sha256")),
    }


def _contract(model: Any) -> tuple[str, float | None]:
    contract = getattr(model, "contract", None)
    if contract is None:
        return "any", None
    return contract.state, contract.target_sum


def _info(
    model: Any,
    outputs: Sequence[tuple[str, int]],
    *,
    graph_state: str,
    precision: str,
    atol: float,
    rtol: float,
    parent: dict[str, Any],
    versions: dict[str, str],
) -> ModelInfo:
    state, target_sum = _contract(model)
    manifest = getattr(model, "manifest", None)
    genes = tuple(manifest.genes) if manifest is not None else ()
    classes = getattr(model, "classes", None)
    meanings = {**OUTPUT_MEANINGS, **dict(capability(model, "export_output_meanings") or {})}
    spec = getattr(model, "spec", None)
    task = spec.task if spec is not None else getattr(model, "task", "annotate")
    generator = _generator_entry(model) if task == "generate" else None
    if generator is not None:  # the graph takes noise, not cells: the state of its input is nobody's business
        graph_state = state = "any"
    in_graph = graph_state != state
    before = (
        describe_steps(graph_state, target_sum, in_graph=False)
        if generator is None
        else [
            "z: standard-normal noise, batch × latent_dim float32 (cellzoo.data.sampling.latent_noise)",
            *(["y: class codes, int64, indices into cellzoo.labels"] if generator["conditional"] else []),
        ]
    )
    return ModelInfo(
        architecture=getattr(model, "name", type(model).__name__.lower()),
        task=task,
        genes=genes,
        labels=tuple(classes) if classes is not None else None,
        input_name="z" if generator is not None else "x",
        input_state=graph_state,
        target_sum=target_sum,
        contract_state=state,
        min_gene_overlap=float(capability(model, "min_gene_overlap")),
        gene_namespace=getattr(manifest, "namespace", "unknown"),
        gene_species=getattr(manifest, "species", None),
        outputs=tuple(
            {
                "name": n,
                "shape": ["batch", w],
                "meaning": meanings.get(n, "model output (see the plugin's documentation)"),
            }
            for n, w in outputs
        ),
        before_graph=tuple(before),
        in_graph=tuple(describe_steps(state, target_sum, in_graph=True)) if in_graph else (),
        parent=parent,
        precision=precision,
        tolerance={"atol": atol, "rtol": rtol},
        versions=versions,
        generator=generator,
    )


def _generator_entry(model: Any) -> dict[str, Any]:
    """The ``cellzoo.generator`` metadata of a generator: what sampling without torch needs."""
    conditional = bool(getattr(model, "conditional", False))
    counts = getattr(model, "class_counts", None)
    target_sum = getattr(model, "output_target_sum", None)
    return {
        "inputs": ["z", "y"] if conditional else ["z"],
        "latent_dim": int(model.latent_dim),
        "conditional": conditional,
        "samples_types": bool(getattr(model, "samples_types", False)),
        "class_counts": None if counts is None else [int(c) for c in counts],
        "output_state": str(getattr(model, "output_state", "counts")),
        "output_target_sum": None if target_sum is None else float(target_sum),
    }


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _tensors(inputs: Mapping[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in inputs.values())


def _torch_outputs(module: nn.Module, inputs: Mapping[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        out = _as_tuple(module(*_tensors(inputs)))
    if len(out) != len(names):
        raise ProtocolError(
            f"export_module() returned {len(out)} outputs but {len(names)} are named ({', '.join(names)})"
        )
    return {n: o.detach().float().cpu().numpy() for n, o in zip(names, out)}


def _compare(
    got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray], atol: float, rtol: float
) -> tuple[bool, float, str]:
    """All outputs of ``want`` against ``got``: passed, the largest difference, the problems."""
    checks = [compare_output(name, got.get(name), expected, atol, rtol) for name, expected in want.items()]
    worst = max((c.max_abs_diff for c in checks), default=0.0)
    problems = [f"{c.name}: {c.problem}" for c in checks if not c.passed]
    return not problems, worst, "; ".join(problems)


def _graph_checks(path: Path, session: Any, names: Sequence[str], example: Mapping[str, np.ndarray]) -> list[Check]:
    import onnx

    checks = []
    try:
        onnx.checker.check_model(str(path), full_check=True)
        checks.append(Check("onnx checker (full)", True))
    except Exception as exc:  # the checker raises ValidationError and friends
        checks.append(Check("onnx checker (full)", False, _first_line(exc)))
    graph_inputs = session._session.get_inputs()
    if [i.name for i in graph_inputs] != list(example):
        checks.append(Check("input names", False, f"{[i.name for i in graph_inputs]} instead of {list(example)}"))
    for graph_input, (name, value) in zip(graph_inputs, example.items()):
        expected: list[Any] = ["batch", *value.shape[1:]]
        if value.ndim == 4:
            expected[2:] = ["height", "width"]
        got = list(graph_input.shape)
        symbolic = [isinstance(d, str) and bool(d) for d in got]
        ok = graph_input.name == name and len(got) == len(expected)
        ok = ok and all(symbolic[i] if isinstance(e, str) else got[i] == e for i, e in enumerate(expected))
        checks.append(
            Check(
                f"input {name}: dynamic batch" + "".join(f" × {d}" for d in expected[1:]),
                ok,
                "" if ok else f"input {graph_input.name!r} has shape {graph_input.shape}, expected {expected}",
            )
        )
    got = list(session.output_names)
    checks.append(
        Check("output names", got == list(names), "" if got == list(names) else f"{got} instead of {list(names)}")
    )
    return checks


def _argmax_check(pairs: list[tuple[np.ndarray, np.ndarray]], atol: float) -> Check:
    """Float16 must predict the float32 class wherever float32's top-two margin exceeds the tolerance."""
    clear = agree = total = agree_all = 0
    for p32, p16 in pairs:
        top2 = np.sort(p32, axis=1)[:, -2:] if p32.shape[1] > 1 else np.concatenate([p32, p32], axis=1)
        margin = top2[:, 1] - top2[:, 0]
        same = np.argmax(p32, axis=1) == np.argmax(p16, axis=1)
        decided = margin > 2 * atol
        clear += int(decided.sum())
        agree += int(same[decided].sum())
        agree_all += int(same.sum())
        total += len(same)
    passed = agree == clear
    detail = f"{agree_all}/{total} cells agree ({agree}/{clear} with a top-two margin above {2 * atol:g})"
    return Check("argmax agreement with float32", passed, detail)


def _validate(path: Path, v: _Variant, names: Sequence[str], batch_sizes: Sequence[int]) -> list[Check]:
    from .runtime.session import Session

    try:
        session = Session(path, device="cpu")
    except Exception as exc:
        return [Check("onnxruntime session + metadata", False, _first_line(exc))]
    checks = [Check("onnxruntime session + metadata", True), *_graph_checks(path, session, names, v.inputs(2))]
    pairs = []
    for b in batch_sizes:
        x = v.inputs(b)
        try:
            want = v.reference(x)
        except Exception as exc:  # a module that only works at some batch sizes is a finding, not a crash
            checks.append(Check(f"batch {b}: onnxruntime vs torch", False, f"torch fails: {_first_line(exc)}"))
            continue
        try:
            got = session.run_feeds(x)
        except Exception as exc:
            checks.append(Check(f"batch {b}: onnxruntime vs torch", False, _first_line(exc)))
            continue
        ok, worst, problem = _compare(got, want, v.atol, v.rtol)
        checks.append(Check(f"batch {b}: onnxruntime vs torch", ok, problem, _finite(worst)))
        if v.argmax_output is not None and v.argmax_output in got:
            pairs.append((want[v.argmax_output], got[v.argmax_output]))
    if v.golden is not None:
        x, expected, g_atol, g_rtol = v.golden
        try:
            got = session.run_feeds(x)
            ok, worst, problem = _compare(got, expected, g_atol, g_rtol)
        except Exception as exc:
            ok, worst, problem = False, None, _first_line(exc)
        cells = len(next(iter(x.values())))
        checks.append(Check(f"golden set ({cells} cells) through onnxruntime", ok, problem, _finite(worst)))
    if v.argmax_output is not None and pairs:
        checks.append(_argmax_check(pairs, v.atol))
    return checks


@dataclass
class _Variant:
    """One file to export: the module to trace, what it takes and what it is checked against."""

    file: str
    module: nn.Module
    input_state: str
    precision: str
    atol: float
    rtol: float
    #: batch size → the graph's inputs by name, in order
    inputs: Callable[[int], dict[str, np.ndarray]]
    reference: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
    golden: tuple[dict[str, np.ndarray], dict[str, np.ndarray], float, float] | None = None
    #: the output whose argmax (the predicted class) must agree with float32 (fp16 only)
    argmax_output: str | None = None


def _golden(model: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float, float]:
    """The artifact's golden set (recorded tolerances) or, for an unsaved model, ``infer`` on golden inputs."""
    from .artifacts import GOLDEN_FILE, check_file, read_golden

    directory = getattr(model, "artifact_dir", None)
    config = getattr(model, "artifact_config", None) or {}
    meta = (config.get("files") or {}).get(GOLDEN_FILE)
    recorded = config.get("golden") or {}
    atol = float(recorded.get("atol", capability(model, "golden_atol")))
    rtol = float(recorded.get("rtol", capability(model, "golden_rtol")))
    if directory is not None and meta is not None and (Path(directory) / GOLDEN_FILE).is_file():
        path = Path(directory) / GOLDEN_FILE
        check_file(path, meta, name=GOLDEN_FILE)
        inputs, outputs = read_golden(path)
    else:
        inputs = model.golden_inputs()
        outputs = {k: np.asarray(v) for k, v in model.infer(inputs).items()}
    order = list(model.golden_inputs(n=1))  # the graph's input order; a file's tensors come back sorted
    missing = [n for n in order if n not in inputs]
    if missing:
        raise IntegrityError(f"the golden set of {model.name!r} has no input {missing[0]!r} (it has {sorted(inputs)})")
    return {n: _graph_dtype(inputs[n]) for n in order}, outputs, atol, rtol


def _graph_dtype(value: Any) -> np.ndarray:
    """Float inputs as float32, integer ones (class codes) as int64: what the graphs take."""
    value = np.asarray(value)
    return np.ascontiguousarray(value, dtype=np.int64 if np.issubdtype(value.dtype, np.integer) else np.float32)


def _count_inputs(n_genes: int) -> Callable[[int], dict[str, np.ndarray]]:
    def make(b: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(1000 + b)
        counts = rng.poisson(1.0, size=(b, n_genes)).astype(np.float32)
        counts[:, 0] += 1  # no empty cell
        return {"x": counts}

    return make


def _state_inputs(model: Any) -> Callable[[int], dict[str, np.ndarray]]:
    return lambda b: {n: _graph_dtype(v) for n, v in model.golden_inputs(n=b, seed=1000 + b).items()}


# ---------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------


def _load(model_or_name: Any) -> tuple[Any, str]:
    if isinstance(model_or_name, (str, os.PathLike)):
        from .sources import load_source

        name = str(model_or_name) if isinstance(model_or_name, str) else f"local-dir:{model_or_name}"
        return load_source(model_or_name), name
    directory = getattr(model_or_name, "artifact_dir", None)
    return model_or_name, f"local-dir:{directory}" if directory is not None else f"<unsaved {model_or_name.name}>"


def export_onnx(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    opset: int | None = None,
    fp16: bool = False,
    from_counts: bool = False,
    overwrite: bool = False,
    batch_sizes: Sequence[int] = VALIDATION_BATCHES,
    on_step: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export ``model`` (a trained model, or a name ``cellzoo.load`` accepts) to ``out_dir``.

    Writes ``model.onnx`` (plus ``model.from_counts.onnx`` / ``model.fp16.onnx`` when asked) and
    ``export.json``; see the module docstring. Raises :class:`~cellzoo.errors.IntegrityError`
    with the report when a validation check fails, and then writes nothing.
    """
    t_start = time.perf_counter()
    step = on_step or (lambda _text: None)
    model, source = _load(model)
    if getattr(getattr(model, "spec", None), "task", getattr(model, "task", None)) == "upscale":
        if fp16 or from_counts:
            raise ConfigError(f"{model.name!r} is an image model: --fp16 and --from-counts apply to cell models only")
        return _export_upscaler(model, source, Path(out_dir).expanduser(), opset, overwrite, step, t_start)
    module, names = export_module_of(model)
    arch = getattr(model, "name", type(model).__name__.lower())
    state, target_sum = _contract(model)
    generates = getattr(getattr(model, "spec", None), "task", getattr(model, "task", None)) == "generate"
    if generates and (fp16 or from_counts):
        raise ConfigError(
            f"{arch!r} is a generator: its graph maps latent noise to cells, so --from-counts has nothing to normalise "
            "and --fp16 (validated by agreement of predicted classes) does not apply. Export without them"
        )
    if from_counts and state != "log1p_norm":
        raise ConfigError(
            f"--from-counts puts counts → log1p_norm into the graph, but {arch!r} takes {state!r} input; there is "
            "nothing to add. Export without --from-counts"
        )
    golden = _golden(model)
    n_genes = len(model.manifest.genes) if getattr(model, "manifest", None) is not None else None
    if n_genes is None:
        n_genes = int(golden[0]["x"].shape[1])
    atol = float(capability(model, "export_atol"))
    rtol = float(capability(model, "export_rtol"))
    fp16_atol = float(capability(model, "export_fp16_atol"))
    fp16_rtol = float(capability(model, "export_fp16_rtol"))
    parent = _parent(model, source)
    example = {n: v[:2] for n, v in golden[0].items()}
    widths = [(n, int(v.shape[1]) if v.ndim > 1 else 1) for n, v in _torch_outputs(module, example, names).items()]
    argmax_output = "proba" if "proba" in names else None
    reference = lambda x: _torch_outputs(module, x, names)  # noqa: E731

    graph_input = "latent" if generates else state
    variants = [
        _Variant(EXPORT_FILE, module, graph_input, "float32", atol, rtol, _state_inputs(model), reference, golden)
    ]
    if from_counts:
        contract = model.contract

        def counts_reference(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            from .data.contract import to_input_state

            return reference({"x": np.asarray(to_input_state(inputs["x"], "counts", contract), dtype=np.float32)})

        wrapped = CountsToLog1p(module, target_sum).eval()
        variants.append(
            _Variant(
                FROM_COUNTS_FILE, wrapped, "counts", "float32", atol, rtol, _count_inputs(n_genes), counts_reference
            )
        )
    if fp16:
        fp16_golden = (golden[0], golden[1], fp16_atol, fp16_rtol)
        fp16_variant = _Variant(
            FP16_FILE, Float16(module), state, "float16", fp16_atol, fp16_rtol, _state_inputs(model), reference,
            fp16_golden, argmax_output,
        )  # fmt: skip
        variants.append(fp16_variant)

    out_dir = Path(out_dir).expanduser()
    report = ExportReport(str(out_dir), arch, source, parent["sha256"], parent["weights_sha256"], None, {})
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for v in variants:
            t0 = time.perf_counter()
            path = tmp / v.file
            step(f"exporting {v.file}")
            program = _export_graph(v.module, v.inputs(2), names, opset, arch)
            report.opset = _opset(program)
            report.versions = _versions(report.opset)
            info = _info(
                model, widths, graph_state=v.input_state, precision=v.precision, atol=v.atol, rtol=v.rtol,
                parent=parent, versions=report.versions,
            )  # fmt: skip
            _save(program, path, info.to_metadata(), v.module)
            step(f"validating {v.file}")
            checks = _validate(path, v, names, batch_sizes)
            seconds = round(time.perf_counter() - t0, 3)
            report.variants.append(
                VariantReport(
                    v.file,
                    v.input_state,
                    v.precision,
                    v.atol,
                    v.rtol,
                    checks,
                    _sha256(path),
                    path.stat().st_size,
                    seconds,
                )
            )
        _finish(report, tmp, t_start)
    return report


def _finish(report: ExportReport, tmp: Path, t_start: float) -> None:
    """Write the report beside the graphs; a failed check raises, so ``atomic_dir`` writes nothing."""
    report.seconds = round(time.perf_counter() - t_start, 3)
    (tmp / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    if not report.passed:
        error = IntegrityError(
            f"the exported model does not reproduce the torch model; nothing was written.\n{report.summary()}"
        )
        error.report = report
        raise error


def upscaler_file(scale: int) -> str:
    """The file an up-scaler's ×``scale`` graph is exported to."""
    return f"model.x{int(scale)}.onnx"


def _image_inputs(k: int) -> dict[str, np.ndarray]:
    """Smooth test images whose size changes with ``k``: the graph must take any height and width."""
    rng = np.random.default_rng(2000 + k)
    h, w = 7 + 5 * k, 11 + 3 * k
    base = rng.random((max(1, k % 3), 3, h // 3 + 1, w // 3 + 1)).astype(np.float32)
    return {"lr": np.ascontiguousarray(np.repeat(np.repeat(base, 3, axis=2), 3, axis=3)[:, :, :h, :w])}


def _export_upscaler(
    model: Any, source: str, out_dir: Path, opset: int | None, overwrite: bool, step: Callable[[str], None],
    t_start: float,
) -> ExportReport:  # fmt: skip
    """One graph per scale (``model.x<scale>.onnx``: ``lr`` N × 3 × H × W → ``sr``), validated at several sizes."""
    if not callable(capability(model, "export_module")):
        export_module_of(model)  # raises the protocol's error
    if not model.is_fitted:
        raise NotFittedError(f"model {model.name!r} is not trained; train it or load a trained artifact first")
    arch = model.name
    atol = float(capability(model, "export_atol"))
    rtol = float(capability(model, "export_rtol"))
    parent = _parent(model, source)
    golden_inputs, golden_outputs, g_atol, g_rtol = _golden(model)
    report = ExportReport(str(out_dir), arch, source, parent["sha256"], parent["weights_sha256"], None, {})
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for scale in model.scales:
            t0 = time.perf_counter()
            module = model.export_module(scale).eval()
            file = upscaler_file(scale)
            reference = lambda x, module=module: _torch_outputs(module, x, ("sr",))  # noqa: E731
            golden = (golden_inputs, {"sr": golden_outputs[f"x{scale}"]}, g_atol, g_rtol)
            variant = _Variant(file, module, "image", "float32", atol, rtol, _image_inputs, reference, golden)
            step(f"exporting {file}")
            program = _export_graph(module, _image_inputs(2), ("sr",), opset, arch)
            report.opset = _opset(program)
            report.versions = _versions(report.opset)
            info = ModelInfo(
                architecture=arch, task="upscale", genes=(), labels=None, input_name="lr", input_state="any",
                contract_state="any", min_gene_overlap=0.0,
                outputs=({"name": "sr", "shape": ["batch", 3, f"{scale}·height", f"{scale}·width"],
                          "meaning": f"the image up-scaled ×{scale}, RGB float32 in [0, 1]"},),
                before_graph=("lr: RGB float32 in [0, 1], batch × 3 × height × width (cellzoo.data.images)",),
                parent=parent, precision="float32", tolerance={"atol": atol, "rtol": rtol}, versions=report.versions,
                upscaler={"scale": int(scale), "channels": 3, "tile_overlap": int(model.tile_overlap)},
            )  # fmt: skip
            program.model.metadata_props.update(info.to_metadata())
            program.model.doc_string = f"cellzoo export of {arch}: lr (N × 3 × H × W) → sr ×{scale}"
            program.save(str(tmp / file), external_data=_weight_bytes(module) >= EXTERNAL_DATA_BYTES)
            step(f"validating {file}")
            checks = _validate(tmp / file, variant, ("sr",), (1, 2, 3, 4))
            path = tmp / file
            report.variants.append(
                VariantReport(file, "image", "float32", atol, rtol, checks, _sha256(path), path.stat().st_size,
                              round(time.perf_counter() - t0, 3))
            )  # fmt: skip
        _finish(report, tmp, t_start)
    return report


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # onnxruntime's messages span lines
    return f"{type(exc).__name__}: {text[:300]}"


def _finite(value: float | None) -> float | None:
    """A difference for the JSON report: NaN/inf (reported in the detail) become null."""
    return value if value is not None and math.isfinite(value) else None
