"""What a cellzoo ONNX file says about itself: the ``cellzoo.*`` entries of its ``metadata_props``.

:func:`cellzoo.export.export_onnx` writes them; :func:`model_info` reads them back into a
:class:`ModelInfo`, so that a deployment needs nothing but the ``.onnx`` file. Every value is a
string (ONNX metadata is string → string); structured values are JSON:

* ``cellzoo.format`` — ``"1"``
* ``cellzoo.architecture`` — the architecture name (``"scanna"``); results are written under
  ``cellzoo_<architecture>_*``
* ``cellzoo.task`` — ``"annotate"``
* ``cellzoo.genes`` — JSON list: the input's columns, in order
* ``cellzoo.gene_namespace`` — ``symbol`` / ``ensembl`` / ``mixed`` / ``unknown``
* ``cellzoo.gene_species`` — ``human``, ``mouse``, … or empty
* ``cellzoo.labels`` — JSON list: the class of each column of the probability output
* ``cellzoo.min_gene_overlap`` — the smallest share of ``cellzoo.genes`` a data set must have
* ``cellzoo.input`` — JSON: ``name``, ``dtype``, ``shape``, the ``state`` the graph input is in
  (``log1p_norm`` / ``counts`` / ``any``), ``target_sum``, and the steps ``before_graph`` (done by
  the caller) and ``in_graph``
* ``cellzoo.input_contract`` — JSON: the model's own input contract (``state``, ``target_sum``)
* ``cellzoo.outputs`` — JSON list of ``{name, shape, meaning}``
* ``cellzoo.parent`` — JSON: ``source``, ``file`` (``model.safetensors``), its ``sha256`` (null when
  the model was never saved), ``weights_sha256`` (of the numbers), ``saved``
* ``cellzoo.parent_sha256`` — the file sha256, flat, for tools that read one key
* ``cellzoo.precision`` — ``float32`` or ``float16`` (the weights; inputs and outputs stay float32)
* ``cellzoo.tolerance`` — JSON: ``atol``, ``rtol`` against the torch model, as validated at export
* ``cellzoo.versions`` — JSON: cellzoo, torch, onnx, onnxscript, onnxruntime, opset
* ``cellzoo.upscaler`` — JSON, ``upscale`` models only: ``scale`` (the graph maps ``lr``, N × 3 × H
  × W RGB float32 in [0, 1], to ``sr``, N × 3 × scale·H × scale·W), ``channels``, ``tile_overlap``
* ``cellzoo.generator`` — JSON, ``generate`` models only: ``inputs`` (``["z"]`` or ``["z", "y"]``),
  ``latent_dim``, ``conditional`` (whether the graph takes class codes ``y``), ``samples_types``
  (whether the model can sample a given type at all), ``class_counts`` (the training proportions
  unconditioned codes are drawn in), ``output_state`` and ``output_target_sum`` of the generated
  cells. The graph maps standard-normal noise ``z`` (batch × latent_dim, float32) and class codes
  ``y`` (batch, int64; indices into ``cellzoo.labels``) to cells × ``cellzoo.genes``

Parsing needs nothing but the standard library: the caller (:class:`cellzoo.runtime.Session`) reads the
mapping from the file with onnxruntime.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, ConfigError, InputError

FORMAT = "1"
PREFIX = "cellzoo."
#: the graph input states a runtime knows how to feed
GRAPH_STATES = ("log1p_norm", "counts", "any")

#: what the usual outputs hold, written into the metadata when the model does not say
OUTPUT_MEANINGS = {
    "proba": "class probabilities, cells × labels (cellzoo.labels order); rows sum to 1",
    "logits": "class scores before softmax, cells × labels (cellzoo.labels order)",
    "attention": "attention over the input genes, cells × genes (cellzoo.genes order); rows sum to 1",
    "embedding": "a per-cell embedding, cells × dimensions",
}


@dataclass(frozen=True)
class ModelInfo:
    """Everything a runtime needs to feed an exported model and name its outputs."""

    architecture: str
    genes: tuple[str, ...]
    labels: tuple[str, ...] | None
    input_name: str = "x"
    #: the state the graph input must be in (what the caller feeds)
    input_state: str = "any"
    target_sum: float | None = None
    #: the model's own contract (``cellzoo.input_contract``); differs from ``input_state`` for a
    #: ``--from-counts`` export, whose graph normalises counts itself
    contract_state: str = "any"
    task: str = "annotate"
    min_gene_overlap: float = 0.5
    gene_namespace: str = "unknown"
    gene_species: str | None = None
    outputs: tuple[dict[str, Any], ...] = ()
    before_graph: tuple[str, ...] = ()
    in_graph: tuple[str, ...] = ()
    parent: dict[str, Any] = field(default_factory=dict)
    precision: str = "float32"
    tolerance: dict[str, float] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    #: False for an ONNX file that did not come from ``cellzoo export`` (genes/labels given by hand)
    is_cellzoo: bool = True
    #: a generator's sampling facts (``cellzoo.generator``); None for other tasks
    generator: dict[str, Any] | None = None
    #: an up-scaler's graph: its ``scale``, ``channels`` and ``tile_overlap`` (``cellzoo.upscaler``)
    upscaler: dict[str, Any] | None = None

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o["name"] for o in self.outputs)

    @property
    def parent_sha256(self) -> str | None:
        return self.parent.get("sha256")

    def to_json(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "task": self.task,
            "genes": list(self.genes),
            "gene_namespace": self.gene_namespace,
            "gene_species": self.gene_species,
            "labels": list(self.labels) if self.labels is not None else None,
            "min_gene_overlap": self.min_gene_overlap,
            "input": self.input_json(),
            "input_contract": {"state": self.contract_state, "target_sum": self.target_sum},
            "outputs": list(self.outputs),
            "parent": dict(self.parent),
            "precision": self.precision,
            "tolerance": dict(self.tolerance),
            "versions": dict(self.versions),
            "is_cellzoo": self.is_cellzoo,
            **({"generator": dict(self.generator)} if self.generator is not None else {}),
            **({"upscaler": dict(self.upscaler)} if self.upscaler is not None else {}),
        }

    def input_json(self) -> dict[str, Any]:
        return {
            "name": self.input_name,
            "dtype": "float32",
            "shape": ["batch", len(self.genes)],
            "state": self.input_state,
            "target_sum": self.target_sum,
            "before_graph": list(self.before_graph),
            "in_graph": list(self.in_graph),
        }

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` entries (all strings) that :func:`model_info` reads back."""
        dump = json.dumps
        extra = {f"{PREFIX}generator": dump(dict(self.generator))} if self.generator is not None else {}
        if self.upscaler is not None:
            extra[f"{PREFIX}upscaler"] = dump(dict(self.upscaler))
        return extra | {
            f"{PREFIX}format": FORMAT,
            f"{PREFIX}architecture": self.architecture,
            f"{PREFIX}task": self.task,
            f"{PREFIX}genes": dump(list(self.genes)),
            f"{PREFIX}gene_namespace": self.gene_namespace,
            f"{PREFIX}gene_species": self.gene_species or "",
            f"{PREFIX}labels": dump(list(self.labels) if self.labels is not None else None),
            f"{PREFIX}min_gene_overlap": repr(float(self.min_gene_overlap)),
            f"{PREFIX}input": dump(self.input_json()),
            f"{PREFIX}input_contract": dump({"state": self.contract_state, "target_sum": self.target_sum}),
            f"{PREFIX}outputs": dump(list(self.outputs)),
            f"{PREFIX}parent": dump(dict(self.parent)),
            f"{PREFIX}parent_sha256": str(self.parent.get("sha256") or ""),
            f"{PREFIX}precision": self.precision,
            f"{PREFIX}tolerance": dump(dict(self.tolerance)),
            f"{PREFIX}versions": dump(dict(self.versions)),
        }


def describe_steps(state: str, target_sum: float | None, *, in_graph: bool) -> list[str]:
    """Plain-language preprocessing steps for the ``cellzoo.input`` metadata entry."""
    align = "take the model's genes (cellzoo.genes) in order from the data; a missing gene is 0"
    if state == "log1p_norm" and in_graph:
        return [
            f"library-size normalisation over the model's genes to {target_sum:g} per cell "
            "(a cell with no counts stays 0)",
            "natural log1p",
        ]
    if in_graph:
        return []
    if state == "log1p_norm":
        return [
            f"from raw counts: x = log1p(counts / total × {target_sum:g}), total over all genes measured in the "
            "cell, before selecting the model's genes (already log1p-normalised data is used as it is)",
            align,
        ]
    if state == "counts":
        return ["raw integer counts, not normalised", align]
    return [align]


def _json(meta: Mapping[str, str], key: str, path: str, default: Any = None) -> Any:
    raw = meta.get(PREFIX + key)
    if raw is None or raw == "":
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            f"{path}: metadata entry {PREFIX + key!r} is not valid JSON ({exc.msg}); the file was damaged or edited "
            "by hand. Export it again with `cellzoo export`."
        ) from exc


def read_names(source: str | os.PathLike[str] | Sequence[str], what: str) -> tuple[str, ...]:
    """Names from a list, or from a file: a JSON list, or one name per line (blank lines ignored)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(f"the {what} file {str(source)!r} does not exist; pass a text file with one name per line")
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            try:
                names = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} looks like a JSON list of {what} but does not parse: {exc.msg}") from exc
        else:
            names = [line.strip() for line in text.splitlines() if line.strip()]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError(f"{path} must hold {what}: one per line, or a JSON list of strings")
        if not names:
            raise InputError(f"{path} holds no {what}; write one per line")
        return tuple(names)
    return tuple(str(n) for n in source)


def model_info(
    meta: Mapping[str, str],
    *,
    path: str = "the ONNX file",
    input_name: str = "x",
    input_width: int | str | None = None,
    output_names: Sequence[str] = (),
    genes: str | os.PathLike[str] | Sequence[str] | None = None,
    labels: str | os.PathLike[str] | Sequence[str] | None = None,
) -> ModelInfo:
    """Parse ``metadata_props`` of an exported model; ``genes``/``labels`` override or stand in.

    An ONNX file without cellzoo metadata can still be run when ``genes`` (its input columns) is
    given; its input is then fed as stored (no normalisation), its first output is taken as class
    scores and ``labels`` names them (``0…C-1`` when not given).
    """
    gene_override = read_names(genes, "gene names") if genes is not None else None
    label_override = read_names(labels, "labels") if labels is not None else None
    if meta.get(PREFIX + "format") is None:
        if gene_override is None:
            present = ", ".join(sorted(meta)[:8]) or "none"
            raise ArtifactError(
                f"{path} is not a cellzoo export: its metadata has no {PREFIX}format entry (entries: {present}), so "
                "nothing says which genes its input columns are or what its outputs mean. Export the model with "
                "`cellzoo export NAME -o DIR`, or run it anyway with --genes FILE (one gene per input column, in "
                "order) and --labels FILE (one class per output column)"
            )
        return _foreign_info(path, input_name, input_width, output_names, gene_override, label_override)
    if meta.get(PREFIX + "format") != FORMAT:
        raise ArtifactError(
            f"{path} has cellzoo metadata format {meta.get(PREFIX + 'format')!r}; this cellzoo reads format "
            f"{FORMAT}. Upgrade cellzoo, or export the model again with this version."
        )
    stored_genes = _json(meta, "genes", path)
    if not isinstance(stored_genes, list) or not all(isinstance(g, str) for g in stored_genes):
        raise ArtifactError(f"{path}: metadata entry {PREFIX}genes must be a JSON list of gene names")
    stored_labels = _json(meta, "labels", path)
    spec_input = _json(meta, "input", path, {}) or {}
    contract = _json(meta, "input_contract", path, {}) or {}
    outputs = _json(meta, "outputs", path, []) or []
    state = spec_input.get("state", "any")
    if state not in GRAPH_STATES:
        raise ArtifactError(f"{path}: the graph input state {state!r} is not one of {', '.join(GRAPH_STATES)}")
    info_genes = tuple(stored_genes)
    if gene_override is not None:
        if len(gene_override) != len(info_genes):
            raise InputError(
                f"--genes gives {len(gene_override)} names but {path} takes {len(info_genes)} input columns; the "
                "list must name every input column, in order"
            )
        info_genes = gene_override
    info_labels = tuple(stored_labels) if isinstance(stored_labels, list) else None
    if label_override is not None:
        if info_labels is not None and len(label_override) != len(info_labels):
            raise InputError(
                f"--labels gives {len(label_override)} names but {path} has {len(info_labels)} classes; name every "
                "output column, in order"
            )
        info_labels = label_override
    target_sum = spec_input.get("target_sum")
    try:
        min_overlap = float(meta.get(PREFIX + "min_gene_overlap") or 0.5)
    except ValueError as exc:
        raise ArtifactError(f"{path}: metadata entry {PREFIX}min_gene_overlap is not a number") from exc
    return ModelInfo(
        architecture=meta.get(PREFIX + "architecture") or Path(path).stem,
        task=meta.get(PREFIX + "task") or "annotate",
        genes=info_genes,
        labels=info_labels,
        input_name=str(spec_input.get("name") or input_name),
        input_state=state,
        target_sum=float(target_sum) if target_sum is not None else None,
        contract_state=str(contract.get("state", state)),
        min_gene_overlap=min_overlap,
        gene_namespace=meta.get(PREFIX + "gene_namespace") or "unknown",
        gene_species=meta.get(PREFIX + "gene_species") or None,
        outputs=tuple(dict(o) for o in outputs),
        before_graph=tuple(spec_input.get("before_graph") or ()),
        in_graph=tuple(spec_input.get("in_graph") or ()),
        parent=dict(_json(meta, "parent", path, {}) or {}),
        precision=meta.get(PREFIX + "precision") or "float32",
        tolerance=dict(_json(meta, "tolerance", path, {}) or {}),
        versions=dict(_json(meta, "versions", path, {}) or {}),
        generator=_generator(meta, path, info_labels),
        upscaler=_upscaler(meta, path),
    )


def _upscaler(meta: Mapping[str, str], path: str) -> dict[str, Any] | None:
    """The ``cellzoo.upscaler`` entry of an ``upscale`` export: the graph's scale."""
    if (meta.get(PREFIX + "task") or "annotate") != "upscale":
        return None
    entry = _json(meta, "upscaler", path)
    if not isinstance(entry, dict) or not isinstance(entry.get("scale"), int) or entry["scale"] < 2:
        raise ArtifactError(
            f"{path} is an 'upscale' export whose metadata entry {PREFIX}upscaler names no integer scale ≥ 2; export "
            "it again with `cellzoo export`"
        )
    return dict(entry)


def _generator(meta: Mapping[str, str], path: str, labels: tuple[str, ...] | None) -> dict[str, Any] | None:
    """The ``cellzoo.generator`` entry of a ``generate`` export, checked for what sampling needs."""
    if (meta.get(PREFIX + "task") or "annotate") != "generate":
        return None
    entry = _json(meta, "generator", path)
    problem = None
    if not isinstance(entry, dict):
        problem = "is missing or not a JSON object"
    elif not isinstance(entry.get("latent_dim"), int) or entry["latent_dim"] < 1:
        problem = "has no positive integer latent_dim"
    elif entry.get("inputs") not in (["z"], ["z", "y"]) or (entry["inputs"] == ["z", "y"]) != bool(
        entry.get("conditional")
    ):
        problem = "must name inputs ['z'] (unconditional) or ['z', 'y'] (conditional)"
    elif entry.get("conditional") and labels is None:
        problem = "is conditional but cellzoo.labels names no classes"
    counts = entry.get("class_counts") if isinstance(entry, dict) else None
    bad_counts = counts is not None and (
        not isinstance(counts, list)
        or labels is None
        or len(counts) != len(labels)
        or not all(isinstance(c, int) and c >= 0 for c in counts)
    )
    if problem is None and bad_counts:
        problem = "has class_counts that do not match cellzoo.labels"
    if problem is not None:
        raise ArtifactError(
            f"{path} is a 'generate' export whose metadata entry {PREFIX}generator {problem}; the file was damaged "
            "or edited. Export it again with `cellzoo export`."
        )
    return dict(entry)


def _foreign_info(
    path: str,
    input_name: str,
    input_width: int | str | None,
    output_names: Sequence[str],
    genes: tuple[str, ...],
    labels: tuple[str, ...] | None,
) -> ModelInfo:
    if isinstance(input_width, int) and input_width != len(genes):
        raise InputError(
            f"--genes gives {len(genes)} names but the input {input_name!r} of {path} has {input_width} columns; the "
            "list must name every input column, in order"
        )
    if not output_names:
        raise ConfigError(f"{path} declares no outputs")
    first, *rest = output_names
    outputs = [{"name": first, "shape": ["batch", "classes"], "meaning": "class scores (taken as probabilities)"}]
    outputs += [{"name": n, "shape": None, "meaning": "unknown (not a cellzoo export)"} for n in rest]
    stem = "".join(c if c.isalnum() or c in "_-" else "_" for c in Path(path).stem) or "onnx"
    return ModelInfo(
        architecture=stem,
        genes=genes,
        labels=labels,
        input_name=input_name,
        input_state="any",
        contract_state="any",
        outputs=tuple(outputs),
        before_graph=("the matrix is fed as stored: the file declares no input contract",),
        is_cellzoo=False,
    )
