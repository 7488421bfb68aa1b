"""Trained models as directories: JSON config, safetensors weights, a model card and golden I/O.

::

    <artifact>/config.json          architecture, config, fitted state, versions, recipe, file hashes
    <artifact>/model.safetensors    the learned arrays (``model.state_tensors()``)
    <artifact>/README.md            the model card (Hub metadata in YAML front matter)
    <artifact>/test/io.safetensors  golden inputs and the outputs they gave when saved

The layout is the same on disk, in the cache and on the Hub. Loading never unpickles: every
safetensors header is checked before the library reads the file, and the architecture is
resolved from installed plugins only — never imported from a string found in the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

import numpy as np

from .constants import __version__
from .errors import ArtifactError, ConfigError, IntegrityError, NotFittedError, UnknownNameError
from .fileio import atomic_dir
from .protocols import capability, has_capability

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
GOLDEN_FILE = "test/io.safetensors"
MAX_HEADER_BYTES = 100 * 1024 * 1024
_REQUIRED: dict[str, type] = {"cellzoo_format": int, "architecture": str, "config": dict, "state": dict, "files": dict}
_REFETCH = "the file was changed after saving; download or rebuild the artifact"
_WHAT_IT_IS = (
    f"A cellzoo artifact is a directory holding {CONFIG_FILE}, {WEIGHTS_FILE}, {CARD_FILE} and {GOLDEN_FILE}, "
    "as written by cellzoo.save(model, DIR) or `cellzoo train`."
)
#: bytes per element of the safetensors dtypes numpy can hold
_DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}  # fmt: skip
#: the keys of a safetensors header entry, all required and no others
_ENTRY_KEYS = frozenset({"dtype", "shape", "data_offsets"})
_ENTRY_KEYS_TEXT = "dtype, shape and data_offsets"


# ---------------------------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------------------------


def save(
    model: Any,
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    recipe: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write a fitted ``model`` as an artifact directory and return its path.

    Everything is computed in memory and written into a temporary directory that is renamed
    into place at the end, so a failure (an unfitted model, a plugin whose ``infer`` raises, a
    full disk) leaves no directory behind. ``recipe`` (how it was trained) and ``metrics``
    (``{metric: value}`` or ``{dataset: {metric: value}}``) go into config.json and the card.
    """
    directory = Path(directory).expanduser()
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ArtifactError(
            f"{type(model).__name__} has no model spec, so its architecture cannot be recorded; build it with "
            "cellzoo.create_model(NAME) (which sets model.spec) before saving"
        )
    if not model.is_fitted:
        raise NotFittedError(
            f"model {spec.name!r} is not trained, so there is nothing to save; call .fit(...) first or load a "
            "trained one with cellzoo.load(NAME)"
        )
    if directory.exists() and not directory.is_dir():
        raise ArtifactError(f"{directory} is a file; an artifact is a directory. Choose a folder path to save into.")
    if directory.is_dir() and any(directory.iterdir()) and not overwrite:
        raise ArtifactError(
            f"{directory} exists and is not empty; choose another directory or pass overwrite=True "
            "(--overwrite on the command line) to replace it"
        )
    contribution = _installed(spec.name, what=f"the artifact for model {spec.name!r} could not be loaded again")

    tensors = _checked_arrays(model.state_tensors(), f"{type(model).__name__}.state_tensors()", spec.name)
    weights = _serialize(tensors, spec.name)
    inputs = _checked_arrays(model.golden_inputs(), f"{type(model).__name__}.golden_inputs()", spec.name)
    outputs = _checked_arrays(model.infer(inputs), f"{type(model).__name__}.infer()", spec.name)
    golden_arrays = {f"input.{k}": v for k, v in inputs.items()} | {f"output.{k}": v for k, v in outputs.items()}
    golden = _serialize(golden_arrays, spec.name)
    first = next(iter(inputs.values()), np.zeros(0))

    config_json: dict[str, Any] = {
        "cellzoo_format": FORMAT_VERSION,
        "architecture": spec.name,
        "task": spec.task,
        "config": _jsonable(_config_dict(model.config), f"the config of model {spec.name!r}"),
        "state": _jsonable(model.artifact_state(), f"{type(model).__name__}.artifact_state()"),
        "plugin": {
            "name": contribution.plugin,
            "distribution": contribution.distribution,
            "version": contribution.version,
        },
        "versions": _versions(),
        "recipe": _jsonable(dict(recipe or {}), "recipe"),
        "metrics": _jsonable(dict(metrics or {}), "metrics"),
        "golden": {
            "atol": float(capability(model, "golden_atol")),
            "rtol": float(capability(model, "golden_rtol")),
            "n": int(first.shape[0]) if first.ndim else 1,
        },
        "files": {
            WEIGHTS_FILE: {"sha256": hashlib.sha256(weights).hexdigest(), "size": len(weights)},
            GOLDEN_FILE: {"sha256": hashlib.sha256(golden).hexdigest(), "size": len(golden)},
        },
    }
    card = model_card(config_json, spec, metrics)

    with atomic_dir(directory, overwrite=True) as tmp:
        (tmp / WEIGHTS_FILE).write_bytes(weights)
        (tmp / GOLDEN_FILE).parent.mkdir(parents=True, exist_ok=True)
        (tmp / GOLDEN_FILE).write_bytes(golden)
        (tmp / CARD_FILE).write_text(card, encoding="utf-8")
        (tmp / CONFIG_FILE).write_text(json.dumps(config_json, indent=2) + "\n", encoding="utf-8")
    return directory


def _installed(arch: str, what: str):
    from .registry import contribution, list_models

    try:
        return contribution("model", arch)
    except UnknownNameError:
        installed = ", ".join(list_models()) or "(none)"
        raise ArtifactError(
            f"architecture {arch!r} is provided by no installed plugin, so {what}; install the plugin that "
            f"provides it (installed architectures: {installed})"
        ) from None


def _config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    raise ArtifactError(f"model config must be a dataclass instance (or None), got {type(config).__name__}")


def _jsonable(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as exc:
        raise ArtifactError(
            f"{what} is not JSON-serialisable ({exc}); config.json holds only JSON values (str, number, bool, "
            "None, list, dict) — convert the value (e.g. a Path to str) in the plugin"
        ) from exc


def _checked_arrays(arrays: Any, what: str, arch: str) -> dict[str, np.ndarray]:
    if not isinstance(arrays, Mapping):
        raise ArtifactError(f"{what} must return a dict of name → numpy array, got {type(arrays).__name__}")
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise ArtifactError(f"{what} returned the key {name!r}; tensor names must be non-empty strings")
        if hasattr(value, "detach"):  # a torch tensor slipped through
            value = value.detach().cpu().numpy()
        array = np.asarray(value)
        if array.dtype.kind in "OUSV":
            raise ArtifactError(
                f"{what} of model {arch!r} returned {name!r} with dtype {array.dtype}: safetensors holds numbers "
                "only. Put names, labels and other text into artifact_state() (it goes to config.json)."
            )
        # np.ascontiguousarray would turn a 0-d array (BatchNorm's num_batches_tracked) into shape (1,)
        out[name] = array if array.flags.c_contiguous else np.array(array, order="C")
    return out


def _serialize(arrays: dict[str, np.ndarray], arch: str) -> bytes:
    from safetensors import SafetensorError
    from safetensors.numpy import save as st_save

    try:
        return st_save(arrays, metadata={"format": "np"})  # one key: safetensors orders metadata by hash map
    except SafetensorError as exc:
        raise ArtifactError(f"could not write the arrays of model {arch!r} with safetensors: {exc}") from exc


def _versions() -> dict[str, str]:
    versions = {"cellzoo": __version__, "python": platform.python_version(), "numpy": np.__version__}
    torch = sys.modules.get("torch")
    if torch is not None:
        versions["torch"] = str(torch.__version__)
    return versions


# ---------------------------------------------------------------------------------------------
# the model card
# ---------------------------------------------------------------------------------------------


def model_card(
    config_json: Mapping[str, Any],
    spec: Any,
    metrics: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
) -> str:
    """The README.md of an artifact: Hub metadata (YAML front matter) and a short card.

    ``source`` is what users pass to ``cellzoo.load`` (default: a ``local-dir:`` placeholder).
    """
    from huggingface_hub import EvalResult, ModelCardData

    arch = config_json["architecture"]
    task = config_json.get("task") or spec.task
    state = config_json.get("state") or {}
    recipe = config_json.get("recipe") or {}
    plugin = config_json.get("plugin") or {}
    metrics = dict(metrics if metrics is not None else config_json.get("metrics") or {})
    source = source or "local-dir:PATH/TO/THIS/FOLDER"
    default_dataset = str(recipe.get("dataset") or "unspecified")
    table = _metric_table(metrics, default_dataset)

    license_id = (spec.license or "unknown").lower()
    tags = list(dict.fromkeys(["cellzoo", "single-cell", task, getattr(spec, "role", "method"), *spec.tags]))
    eval_results = [
        EvalResult(task_type=task, dataset_type=ds, dataset_name=ds, metric_type=m, metric_value=v)
        for ds, m, v in table
    ]
    card_data = ModelCardData(
        library_name="cellzoo",
        license=license_id,
        tags=tags,
        model_name=arch,
        datasets=[default_dataset] if "dataset" in recipe else None,
        eval_results=eval_results or None,
    )

    lines = ["---", card_data.to_yaml().strip(), "---", "", f"# {arch}", ""]
    if spec.summary:
        lines += [spec.summary, ""]
    dist = plugin.get("distribution") or plugin.get("name") or "?"
    lines += [
        "| | |",
        "|---|---|",
        f"| architecture | `{arch}` (plugin `{dist}` {plugin.get('version') or ''}) |".replace(" )", ")"),
        f"| task | {task} |",
        f"| role | {getattr(spec, 'role', 'method')} |",
    ]
    if spec.paper:
        lines.append(f"| paper | {spec.paper} |")
    if spec.authors:
        lines.append(f"| authors | {', '.join(spec.authors)} |")
    lines += [f"| license | {spec.license or 'unknown'} |", "", "## Usage", "", "```python", "import cellzoo", ""]
    lines.append(f'model = cellzoo.load("{source}")')
    if task == "annotate":
        lines += ["adata = model.annotate(adata)  # adds obs/obsm columns named cellzoo_<model>_*"]
    lines += ["```", ""]

    contract = state.get("input_contract")
    genes = state.get("genes")
    if contract or genes:
        lines += ["## Input", ""]
        if isinstance(contract, Mapping):
            lines.append(f"- input state: `{contract.get('state', '?')}` — {_describe_contract(contract)}")
        if isinstance(genes, Mapping):
            names = list(genes.get("genes") or [])
            shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
            lines.append(
                f"- genes: {len(names)} (namespace `{genes.get('namespace', 'unknown')}`, species "
                f"`{genes.get('species') or 'unknown'}`): {shown}"
            )
        lines.append("")
    classes = state.get("classes")
    if classes:
        lines += ["## Classes", "", f"{len(classes)} classes: " + ", ".join(map(str, classes)), ""]
    if recipe:
        lines += ["## Training recipe", "", "```json", json.dumps(recipe, indent=2), "```", ""]
    if table:
        lines += ["## Metrics", "", "| dataset | metric | value |", "|---|---|---|"]
        lines += [f"| {ds} | {m} | {v:.4g} |" for ds, m, v in table]
        lines.append("")
    golden = config_json.get("golden") or {}
    if golden:
        lines += [
            "## Verification",
            "",
            f"`{GOLDEN_FILE}` holds {golden.get('n', '?')} golden inputs and their outputs; "
            f"`cellzoo verify {source}` re-runs them (atol {golden.get('atol')}, rtol {golden.get('rtol')}).",
            "",
        ]
    if spec.citation:
        lines += ["## Citation", "", "```bibtex", spec.citation.strip(), "```", ""]
    return "\n".join(lines)


def _describe_contract(contract: Mapping[str, Any]) -> str:
    state = contract.get("state")
    if state == "log1p_norm":
        target = contract.get("target_sum") or 1e4
        return (
            f"log1p of counts normalised to {target:g} per cell; give raw counts and cellzoo converts them "
            "(every input is checked)"
        )
    if state == "counts":
        return "raw integer counts, checked on every call"
    if state == "any":
        return "any finite matrix"
    return "see the plugin's documentation"


def _metric_table(metrics: Mapping[str, Any], default_dataset: str) -> list[tuple[str, str, float]]:
    """(dataset, metric, value) rows from ``{metric: v}`` or ``{dataset: {metric: v}}``."""
    rows: list[tuple[str, str, float]] = []
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            rows += [(str(key), str(m), float(v)) for m, v in value.items() if _is_number(v)]
        elif _is_number(value):
            rows.append((default_dataset, str(key), float(value)))
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------


def load_artifact(directory: str | os.PathLike[str], *, verify_hashes: bool = True) -> Any:
    """Build the model saved in ``directory``: config.json + safetensors, never a pickle.

    The architecture must be provided by an installed plugin; the weight file's sha256 and its
    safetensors header are checked before any model code runs; tensors load strictly.
    """
    directory = Path(directory).expanduser()
    config_json = read_config(directory)
    arch = config_json["architecture"]
    contrib = _installed(arch, what=f"{directory} cannot be loaded")
    _check_files(directory, config_json, verify_hashes)
    tensors = read_safetensors(directory / WEIGHTS_FILE)

    spec = contrib.spec
    try:
        from .registry import make_config

        config = make_config(spec, _restore_tuples(spec.config, config_json["config"]))
    except ConfigError as exc:
        written = config_json.get("plugin", {}).get("version")
        raise ArtifactError(
            f"the config in {directory / CONFIG_FILE} does not fit architecture {arch!r} of the installed plugin "
            f"{contrib.distribution} {contrib.version} (the artifact was written with version {written}): {exc}. "
            "Install the plugin version that wrote it."
        ) from exc
    _warn_on_version_change(config_json, contrib, directory)

    from .specs import resolve

    builder = resolve(spec.builder)
    model = builder(config) if spec.config is not None else builder()
    model.spec = spec
    model.restore_artifact_state(config_json["state"])
    try:
        model.load_state_tensors(tensors)
    except ArtifactError as exc:
        raise ArtifactError(f"{directory / WEIGHTS_FILE}: {exc}") from exc
    # A plugin whose load_state_tensors is lax would silently drop tensors; check it here too.
    loaded = set(model.state_names() if has_capability(model, "state_names") else model.state_tensors())
    if loaded != set(tensors):
        raise ArtifactError(
            f"{directory / WEIGHTS_FILE} holds tensors {sorted(set(tensors) - loaded)[:10]} that model {arch!r} "
            f"did not take, and the model expects {sorted(loaded - set(tensors))[:10]} that the file lacks"
        )
    model.artifact_dir = directory
    model.artifact_config = config_json
    return model


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and validate ``config.json`` of an artifact directory."""
    directory = Path(directory)
    if not directory.exists():
        raise ArtifactError(f"{directory} does not exist. {_WHAT_IT_IS}")
    if not directory.is_dir():
        raise ArtifactError(f"{directory} is a file, not an artifact directory. {_WHAT_IT_IS}")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory} has no {CONFIG_FILE}, so it is not a cellzoo artifact. {_WHAT_IT_IS}")
    try:
        config_json = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{path} is not UTF-8 text ({exc}); the file is damaged") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); the file is damaged"
        ) from exc
    if not isinstance(config_json, dict):
        raise ArtifactError(f"{path} must hold a JSON object, found a {type(config_json).__name__}")
    version = config_json.get("cellzoo_format")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has cellzoo_format {version}, newer than this cellzoo understands ({FORMAT_VERSION}); "
            "upgrade cellzoo (pip install -U cellzoo)"
        )
    for key, kind in _REQUIRED.items():
        if key not in config_json:
            raise ArtifactError(f"{path} lacks the key {key!r} that every cellzoo artifact has; the file is damaged")
        if not isinstance(config_json[key], kind) or isinstance(config_json[key], bool):
            raise ArtifactError(
                f"{path}: {key!r} must be a {kind.__name__}, found {type(config_json[key]).__name__} "
                f"({config_json[key]!r:.60})"
            )
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{path} has cellzoo_format {version!r}; this cellzoo reads format {FORMAT_VERSION}")
    return config_json


def _check_files(directory: Path, config_json: Mapping[str, Any], verify_hashes: bool) -> None:
    files = config_json["files"]
    if WEIGHTS_FILE not in files:
        raise ArtifactError(f"{directory / CONFIG_FILE} records no hash for {WEIGHTS_FILE}; the file is damaged")
    for rel, meta in files.items():
        path = directory / _safe_relative(rel, directory)
        if not path.is_file():
            raise ArtifactError(f"{path} is listed in {CONFIG_FILE} but missing; the artifact is incomplete")
        if verify_hashes:
            check_file(path, meta, name=rel, fix=_REFETCH)


def check_file(
    path: Path,
    record: Any,
    *,
    name: str | None = None,
    what: str | None = None,
    fix: str = "download or rebuild the artifact",
    kind: str = "recorded",
) -> None:
    """Raise :class:`IntegrityError` unless ``path`` exists with the size and sha256 of ``record``.

    ``record`` is a mapping (``{"sha256", "size"}``, as in config.json, an origin file or a bundle
    index) or an object with those attributes (a pinned registry file); ``what`` names where the
    file is (``"the bundle DIR"``), ``fix`` what the user can do, ``kind`` which hash it is held
    against (``recorded``, ``pinned``). The one place a file is checked against its hash.
    """
    name = name or path.name
    sha = getattr(record, "sha256", None) or (record.get("sha256") if isinstance(record, Mapping) else None)
    size = getattr(record, "size", None)
    if size is None and isinstance(record, Mapping):
        size = record.get("size")
    if not isinstance(sha, str):
        raise ArtifactError(f"no sha256 is recorded for {name!r}; the artifact is damaged")
    where = f" in {what}" if what else ""
    if not path.is_file():
        raise IntegrityError(f"{name} is missing{where} ({path}); {fix}")
    got_size = path.stat().st_size
    if isinstance(size, int) and got_size != size:
        raise IntegrityError(
            f"{name}{where} ({path}) has {got_size} bytes, expected {size}: it was changed or truncated; {fix}"
        )
    got = sha256_file(path)
    if got != sha:
        raise IntegrityError(
            f"{name}{where} ({path}) does not match its {kind} hash: expected sha256 {sha}, got {got}; {fix}"
        )


def check_files(
    directory: Path, records: Mapping[str, Any], *, what: str | None = None, fix: str = "", kind: str = "pinned"
) -> None:
    """:func:`check_file` for every ``{relative path: record}`` of ``records``, in sorted order."""
    directory = Path(directory)
    for rel in sorted(records):
        check_file(
            directory / _safe_relative(rel, directory),
            records[rel],
            name=rel,
            what=what,
            fix=fix or "get the files again",
            kind=kind,
        )


def _safe_relative(rel: str, directory: Path) -> PurePosixPath:
    path = PurePosixPath(rel)
    if not rel or "\\" in rel or path.is_absolute() or ".." in path.parts:
        raise ArtifactError(
            f"{directory / CONFIG_FILE} lists the file {rel!r}, which is not a plain path inside the artifact; "
            "refusing to read outside the artifact directory"
        )
    return path


def _restore_tuples(config_type: type | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; give tuple-typed config fields their tuples back."""
    data = dict(data)
    if config_type is None:
        return data
    for f in dataclasses.fields(config_type):
        value = data.get(f.name)
        declared_tuple = str(f.type).startswith(("tuple", "Tuple", "typing.Tuple")) or isinstance(f.default, tuple)
        if isinstance(value, list) and declared_tuple:
            data[f.name] = tuple(value)
    return data


def _warn_on_version_change(config_json: Mapping[str, Any], contrib: Any, directory: Path) -> None:
    written = (config_json.get("plugin") or {}).get("version")
    if written and contrib.version and written != contrib.version:
        warnings.warn(
            f"{directory} was written by {contrib.distribution} {written}; the installed version is "
            f"{contrib.version}. `cellzoo verify` checks that it still gives the recorded outputs.",
            stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------
# safetensors, checked before the library sees the file
# ---------------------------------------------------------------------------------------------


def read_safetensors_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated JSON header of a safetensors file ({name: {dtype, shape, data_offsets}}).

    Checks, without trusting the file: the 8-byte little-endian header length N fits the file
    (0 < N <= size - 8, N < 100 MB), the header is a JSON object, every tensor's entry holds
    exactly the keys dtype (a known name), shape (non-negative integers) and data_offsets (two
    integers), and its offsets lie inside the data and agree with its dtype × shape. A pickle, a zip (``torch.save``), a
    truncated file or garbage gives an :class:`ArtifactError` naming the file and what it is.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if size < 8:
            _not_safetensors(
                path, head, f"it has only {size} bytes (a safetensors file starts with an 8-byte header length)"
            )
        n = int.from_bytes(head, "little")
        if n == 0 or n > size - 8 or n >= MAX_HEADER_BYTES:
            _not_safetensors(path, head, f"its first 8 bytes give a header length of {n} bytes for a {size}-byte file")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _not_safetensors(path, head, f"its header is not UTF-8 JSON ({exc})")
    if not isinstance(header, dict):
        _not_safetensors(path, head, f"its header is a JSON {type(header).__name__}, not an object")

    data_len = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                _not_safetensors(path, head, "its __metadata__ is not a mapping of strings")
            continue
        if not isinstance(entry, dict):
            _not_safetensors(
                path, head, f"tensor {name!r} is a JSON {type(entry).__name__}, not an object of {_ENTRY_KEYS_TEXT}"
            )
        if set(entry) != _ENTRY_KEYS:
            problems = []
            if missing := sorted(_ENTRY_KEYS - set(entry)):
                problems.append(f"lacks {', '.join(missing)}")
            if extra := sorted(set(entry) - _ENTRY_KEYS):
                problems.append(f"has the unknown key(s) {', '.join(map(repr, extra))}")
            _not_safetensors(
                path, head, f"tensor {name!r} {' and '.join(problems)} (an entry holds exactly {_ENTRY_KEYS_TEXT})"
            )
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPE_SIZES:
            _not_safetensors(path, head, f"tensor {name!r} has dtype {dtype!r}, which cellzoo does not read")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            _not_safetensors(path, head, f"tensor {name!r} has shape {shape!r} (a list of non-negative integers)")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
            _not_safetensors(
                path, head, f"tensor {name!r} has data_offsets {offsets!r} (a list [begin, end] of integers)"
            )
        begin, end = offsets
        if not 0 <= begin <= end:
            _not_safetensors(path, head, f"tensor {name!r} has data_offsets {offsets!r}")
        if end > data_len:
            _not_safetensors(
                path,
                head,
                f"tensor {name!r} ends at data byte {end} but the file holds {data_len} data bytes "
                "(the file is truncated)",
            )
        expected = math.prod(shape) * _DTYPE_SIZES[dtype]
        if end - begin != expected:
            _not_safetensors(
                path, head, f"tensor {name!r} spans {end - begin} bytes but {dtype} × {shape} needs {expected}"
            )
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            _not_safetensors(path, head, f"tensor {name!r} starts at data byte {begin}, expected {position}")
        position = end
    if position != data_len:
        _not_safetensors(path, head, f"{data_len - position} bytes follow the last tensor")
    return header


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Arrays of a safetensors file, after :func:`read_safetensors_header` accepted it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing; the artifact is incomplete. {_WHAT_IT_IS}")
    read_safetensors_header(path)
    try:
        return st_load(path.read_bytes())
    except SafetensorError as exc:
        raise ArtifactError(f"{path} could not be read as safetensors: {exc}") from exc


def _is_int(value: Any) -> bool:
    """A JSON integer (``true``/``false`` are not sizes, although Python counts bool as int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _not_safetensors(path: Path, head: bytes, reason: str) -> NoReturn:
    looks = _looks_like(path, head)
    raise ArtifactError(
        f"{path} is not a valid safetensors file: {reason}"
        + (f". It looks like {looks}" if looks else "")
        + ". cellzoo reads weights from safetensors only and never unpickles; re-save the model with "
        "cellzoo.save(model, DIR) or download the artifact again."
    )


def _looks_like(path: Path, head: bytes) -> str:
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return f"a Python pickle (protocol {head[1]}), which could run code when loaded"
    if head[:2] in (b"(d", b"(l", b"}q", b"]q", b"(i", b"cc"):
        return "a Python pickle (text protocol), which could run code when loaded"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive — the format torch.save writes, which holds a pickle"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "an HDF5 file (e.g. an .h5ad or a Keras model), not weights in safetensors"
    if head[:2] == b"\x1f\x8b":
        return "a gzip archive"
    if head[:6] == b"\x93NUMPY":
        return "a numpy .npy file"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file (e.g. an HTML error page saved in place of the download)"
    return ""


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputCheck:
    """The comparison of one golden output with what the model gives now."""

    name: str
    shape: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    passed: bool
    problem: str = ""


@dataclass
class VerifyReport:
    """What :func:`verify` found: one :class:`OutputCheck` per golden output."""

    source: str
    n: int
    atol: float
    rtol: float
    checks: list[OutputCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def summary(self) -> str:
        lines = [
            f"verify {self.source}: {'PASS' if self.passed else 'FAIL'} "
            f"({self.n} golden inputs, atol {self.atol:g}, rtol {self.rtol:g})"
        ]
        for c in self.checks:
            status = "ok" if c.passed else f"FAIL {c.problem}".rstrip()
            lines.append(
                f"  {c.name}: shape {c.shape}, max abs diff {c.max_abs_diff:.3g}, "
                f"max rel diff {c.max_rel_diff:.3g} — {status}"
            )
        return "\n".join(lines)

    __str__ = summary

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "passed": self.passed,
            "n": self.n,
            "atol": self.atol,
            "rtol": self.rtol,
            "checks": [dataclasses.asdict(c) | {"shape": list(c.shape)} for c in self.checks],
        }


def verify(
    model_or_dir: Any,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    strict: bool = False,
) -> VerifyReport:
    """Re-run ``infer`` on an artifact's golden inputs and compare with the golden outputs.

    ``model_or_dir`` is a model returned by :func:`load_artifact` / :func:`cellzoo.load`, an
    artifact directory, or a source name (``local-dir:PATH``, ``arch.tag``). Tolerances default
    to those recorded at save time. With ``strict=True`` a failure raises :class:`IntegrityError`.
    """
    model, source = _as_loaded_model(model_or_dir)
    directory: Path = model.artifact_dir
    config_json = getattr(model, "artifact_config", None) or read_config(directory)
    golden_path = directory / GOLDEN_FILE
    meta = config_json["files"].get(GOLDEN_FILE)
    if meta is None or not golden_path.is_file():
        raise ArtifactError(f"{directory} has no golden set ({GOLDEN_FILE}); re-save it with cellzoo.save to add one")
    check_file(golden_path, meta, name=GOLDEN_FILE, fix=_REFETCH)
    inputs, expected = read_golden(golden_path)

    recorded = config_json.get("golden") or {}
    atol = float(atol if atol is not None else recorded.get("atol", capability(model, "golden_atol")))
    rtol = float(rtol if rtol is not None else recorded.get("rtol", capability(model, "golden_rtol")))
    got = model.infer(inputs)
    first = next(iter(inputs.values()), np.zeros(0))
    report = VerifyReport(source=source, n=int(first.shape[0]) if first.ndim else 1, atol=atol, rtol=rtol)
    for name in sorted(set(expected) | set(got)):
        report.checks.append(compare_output(name, got.get(name), expected.get(name), atol, rtol))
    if strict and not report.passed:
        raise IntegrityError(f"the model no longer reproduces its golden outputs.\n{report.summary()}")
    return report


def read_golden(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(inputs, outputs) of a golden set file (``input.<name>`` / ``output.<name>`` tensors)."""
    arrays = read_safetensors(path)
    inputs = {k.removeprefix("input."): v for k, v in arrays.items() if k.startswith("input.")}
    outputs = {k.removeprefix("output."): v for k, v in arrays.items() if k.startswith("output.")}
    stray = sorted(k for k in arrays if not k.startswith(("input.", "output.")))
    if stray or not outputs:
        raise ArtifactError(
            f"{path} is not a golden set: tensors must be named input.<name> / output.<name> "
            f"(found {stray[:5] or 'no outputs'})"
        )
    return inputs, outputs


def _as_loaded_model(obj: Any) -> tuple[Any, str]:
    if isinstance(obj, (os.PathLike, str)):
        path = Path(obj).expanduser()
        if not path.is_dir():
            raise ArtifactError(
                f"{obj!s} is not an artifact directory; to verify a model by name use cellzoo.verify(NAME) "
                "(or `cellzoo verify NAME`), which resolves names first"
            )
        return load_artifact(path), f"local-dir:{path}"
    if getattr(obj, "artifact_dir", None) is None:
        raise ArtifactError(
            f"{type(obj).__name__} has no golden set to check: verify works on a saved artifact. Save the model "
            "with cellzoo.save(model, DIR) and verify DIR (or the model cellzoo.load returns)"
        )
    return obj, f"local-dir:{obj.artifact_dir}"


def compare_output(name: str, got: Any, expected: np.ndarray | None, atol: float, rtol: float) -> OutputCheck:
    """Output ``name`` against its expected array: within ``atol + rtol·|expected|`` everywhere (NaN only where expected)."""
    if expected is None:
        return OutputCheck(name, tuple(np.shape(got)), math.inf, math.inf, False, "not in the golden set")
    if got is None:
        return OutputCheck(name, expected.shape, math.inf, math.inf, False, "the model no longer returns it")
    got = np.asarray(got)
    if got.shape != expected.shape:
        return OutputCheck(name, expected.shape, math.inf, math.inf, False, f"shape is now {got.shape}")
    if expected.size == 0:
        return OutputCheck(name, expected.shape, 0.0, 0.0, True)
    if expected.dtype.kind not in "fc":
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        ok = bool(np.array_equal(got, expected))
        return OutputCheck(name, expected.shape, float(diff.max()), float(diff.max()), ok, "" if ok else "differs")
    g = got.astype(np.float64)
    e = expected.astype(np.float64)
    same_nan = np.isnan(g) & np.isnan(e)
    diff = np.where(same_nan, 0.0, np.abs(g - e))
    diff = np.where(np.isnan(diff), np.inf, diff)
    scale = np.abs(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, diff / scale, np.where(diff > 0, np.inf, 0.0))
    bad = diff > atol + rtol * np.nan_to_num(scale)
    ok = not bool(bad.any())
    problem = (
        ""
        if ok
        else f"exceeds the tolerance ({int(bad.sum())} of {bad.size} values beyond atol {atol:g} + rtol {rtol:g})"
    )
    return OutputCheck(name, expected.shape, float(diff.max()), float(rel.max()), ok, problem)
