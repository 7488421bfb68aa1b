"""The catalogue of pretrained checkpoints: one TOML file per ``arch.tag`` name.

A registry file names the architecture, the recipe that trains the checkpoint (dataset, split,
seed, config overrides, epochs), where it lives on the Hugging Face Hub and — once published —
the pinned commit with the sha256 and size of every file, plus metrics measured by the harness.
Files are read from the ``cellzoo._registry`` package (``registry/`` in the repository) and from
every folder in ``$CELLZOO_REGISTRY_PATH`` (``os.pathsep``-separated), so a lab can keep its own
checkpoints next to the shipped ones. Reading is strict: an unknown key, a wrong type or a name
that does not match its file is a :class:`~cellzoo.errors.ConfigError` naming file and key.

Schema (``schema_version = 1``)::

    schema_version = 1
    name = "scanna.pbmc68k_reduced"          # == file stem; "arch.tag"
    architecture = "scanna"                   # == the part before the dot
    task = "annotate"
    summary = "..."
    license = "mit"                           # a Hub license id ("other" + license_name otherwise)
    citation = "..."
    training_data = "..."                     # what the checkpoint was trained on
    tags = ["pbmc"]                           # optional

    [recipe]
    dataset = "pbmc68k_reduced"               # a dataset name or a path to an .h5ad
    label_key = "bulk_labels"                 # optional for unsupervised tasks
    seed = 0                                  # becomes config.seed when the config has one
    epochs = 50                               # optional; becomes config.epochs
    [recipe.split]
    kind = "holdout"                          # "all" (train on every cell) or "holdout"
    test_fraction = 0.2                       # holdout only: stratified, cells never trained on
    seed = 0
    [recipe.config]                           # optional config overrides
    [recipe.dataset_params]                   # optional keyword arguments of the dataset loader

    [hub]
    repo_id = "cellzoo/scanna.pbmc68k_reduced"
    revision = "<40-hex commit>"              # published only: written by `cellzoo push --update-registry`
    [hub.files."model.safetensors"]           # published only: every file of the commit
    sha256 = "<64 hex>"
    size = 12345

    [[metrics]]                               # only numbers the harness measured
    dataset = "pbmc68k_reduced"
    split = "test"                            # train | validation | test | cv | independent
    metric = "accuracy"
    value = 0.83
    source = "cellzoo bench benchmarks/annotate.toml"
"""

from __future__ import annotations

import importlib.resources
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .constants import CHECKPOINT_NAME, COMMIT, REGISTRY_PATH_ENV, REPO_ID, SHA256
from .errors import ConfigError, UnknownNameError
from .fileio import write_text

REGISTRY_PACKAGE = "cellzoo._registry"
SCHEMA_VERSION = 1

#: "fixed": the train and test parts an image dataset defines itself
SPLIT_KINDS = ("all", "holdout", "fixed")
#: bioimage.io's dataset roles, plus "cv" for cross-validated numbers
METRIC_SPLITS = ("train", "validation", "test", "cv", "independent")
#: licence ids the Hugging Face Hub accepts in a model card (anything else: "other" + license_name)
HUB_LICENSES = frozenset(
    {
        "apache-2.0", "mit", "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "isc", "zlib",
        "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
        "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cc-by-nd-4.0",
        "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0",
        "agpl-3.0", "mpl-2.0", "epl-2.0", "afl-3.0", "artistic-2.0", "ecl-2.0", "wtfpl", "unlicense",
        "odc-by", "odbl", "pddl", "openrail", "other",
    }
)  # fmt: skip


# -- the entry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Which cells train the checkpoint: all of them, or all but a stratified held-out share."""

    kind: str = "all"
    test_fraction: float | None = None
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "seed": self.seed}
        if self.test_fraction is not None:
            out["test_fraction"] = self.test_fraction
        return out


@dataclass(frozen=True)
class Recipe:
    """Everything :func:`cellzoo.build.build` needs to train the checkpoint again."""

    dataset: str
    label_key: str | None = None
    seed: int = 0
    split: Split = field(default_factory=Split)
    config: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    dataset_params: Mapping[str, Any] = field(default_factory=dict)

    def config_overrides(self) -> dict[str, Any]:
        """``recipe.config`` plus ``seed`` and ``epochs`` as config keys (they win: one source of truth)."""
        overrides = dict(self.config)
        overrides["seed"] = self.seed
        if self.epochs is not None:
            overrides["epochs"] = self.epochs
        return overrides

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "label_key": self.label_key,
            "seed": self.seed,
            "split": self.split.to_json(),
            "config": dict(self.config),
        }
        if self.epochs is not None:
            out["epochs"] = self.epochs
        if self.dataset_params:
            out["dataset_params"] = dict(self.dataset_params)
        return out


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    size: int


@dataclass(frozen=True)
class HubLocation:
    """The Hub repository; ``revision`` and ``files`` are present once the checkpoint is published."""

    repo_id: str
    revision: str | None = None
    files: Mapping[str, FileRecord] = field(default_factory=dict)

    @property
    def published(self) -> bool:
        return self.revision is not None


@dataclass(frozen=True)
class MetricRecord:
    """One number the harness measured: ``metric`` on ``dataset`` (``split`` role) = ``value``."""

    dataset: str
    split: str
    metric: str
    value: float
    source: str = ""


@dataclass(frozen=True)
class PretrainedEntry:
    """One registry file: a named pretrained checkpoint."""

    name: str
    architecture: str
    task: str
    summary: str
    license: str
    citation: str
    training_data: str
    recipe: Recipe
    hub: HubLocation
    metrics: tuple[MetricRecord, ...] = ()
    tags: tuple[str, ...] = ()
    license_name: str | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def published(self) -> bool:
        return self.hub.published

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "architecture": self.architecture,
            "task": self.task,
            "summary": self.summary,
            "license": self.license,
            "license_name": self.license_name,
            "citation": self.citation,
            "training_data": self.training_data,
            "tags": list(self.tags),
            "recipe": self.recipe.to_json(),
            "hub": {
                "repo_id": self.hub.repo_id,
                "revision": self.hub.revision,
                "files": {p: {"sha256": f.sha256, "size": f.size} for p, f in self.hub.files.items()},
            },
            "metrics": [
                {"dataset": m.dataset, "split": m.split, "metric": m.metric, "value": m.value, "source": m.source}
                for m in self.metrics
            ],
            "path": str(self.path) if self.path else None,
        }


# -- strict reading ---------------------------------------------------------------------------


class _Reader:
    """Typed access to one TOML table that remembers the file and key path for its errors."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str = ""):
        self.data, self.source, self.prefix = data, source, prefix
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"registry file {self.source}: {self.key(name)!r} {problem}")

    def get(self, name: str, kind: type | tuple[type, ...], required: bool = True, default: Any = None) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, "is missing; see the schema in cellzoo/pretrained.py or an entry in registry/")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints in Python: never accept one where a number is meant
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            raise self.fail(name, f"must be {expected}, got {type(value).__name__} {value!r}")
        return value

    def text(self, name: str, required: bool = True, default: str | None = None, empty_ok: bool = False) -> Any:
        value = self.get(name, str, required, default)
        if value is not None and not empty_ok and not value.strip():
            raise self.fail(name, "must not be empty")
        return value

    def table(self, name: str, required: bool = True) -> _Reader | None:
        value = self.get(name, dict, required)
        return None if value is None else _Reader(value, self.source, f"{self.key(name)}.")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            where = f"table {self.prefix[:-1]!r}" if self.prefix else "the top level"
            raise ConfigError(
                f"registry file {self.source}: unknown key(s) {', '.join(map(repr, unknown))} in {where}; "
                f"valid keys: {', '.join(sorted(self.seen))}"
            )


def _choice(reader: _Reader, name: str, value: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise reader.fail(name, f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def _parse_recipe(r: _Reader) -> Recipe:
    dataset = r.text("dataset")
    label_key = r.text("label_key", required=False)  # unsupervised tasks train without labels
    seed = r.get("seed", int, required=False, default=0)
    epochs = r.get("epochs", int, required=False)
    if epochs is not None and epochs < 1:
        raise r.fail("epochs", f"must be a positive integer, got {epochs}")
    split = Split()
    s = r.table("split", required=False)
    if s is not None:
        kind = _choice(s, "kind", s.text("kind"), SPLIT_KINDS)
        fraction = s.get("test_fraction", (int, float), required=kind == "holdout")
        if kind == "all" and fraction is not None:
            raise s.fail("test_fraction", 'only applies to kind = "holdout"')
        if fraction is not None and not 0.0 < float(fraction) < 1.0:
            raise s.fail("test_fraction", f"must lie strictly between 0 and 1, got {fraction}")
        split = Split(kind, None if fraction is None else float(fraction), s.get("seed", int, False, 0))
        s.finish()
    config = r.get("config", dict, required=False, default={})
    if "seed" in config or "epochs" in config:
        raise r.fail("config", "must not set 'seed' or 'epochs': write them as recipe.seed / recipe.epochs")
    params = r.get("dataset_params", dict, required=False, default={})
    r.finish()
    return Recipe(dataset, label_key, seed, split, dict(config), epochs, dict(params))


def _parse_hub(r: _Reader) -> HubLocation:
    repo_id = r.text("repo_id")
    if not REPO_ID.match(repo_id):
        raise r.fail("repo_id", f"must look like 'org/name', got {repo_id!r}")
    revision = r.get("revision", str, required=False)
    if revision is not None and not COMMIT.match(revision):
        raise r.fail(
            "revision",
            f"must be a full 40-character commit hash (a branch or tag can move; a commit cannot), got {revision!r}",
        )
    files: dict[str, FileRecord] = {}
    raw_files = r.table("files", required=False)
    if raw_files is not None:
        for path in list(raw_files.data):
            f = raw_files.table(path)
            sha = f.text("sha256")
            if not SHA256.match(sha):
                raise f.fail("sha256", f"must be 64 lowercase hex digits, got {sha!r}")
            size = f.get("size", int)
            if size < 0:
                raise f.fail("size", f"must be >= 0, got {size}")
            f.finish()
            if path.startswith("/") or ".." in Path(path).parts:
                raise raw_files.fail(path, "must be a relative path inside the repository")
            files[path] = FileRecord(sha, size)
        raw_files.finish()
    if (revision is None) != (not files):
        raise r.fail(
            "revision",
            "and hub.files go together: a published entry pins a commit AND lists every file's sha256 and size "
            "(`cellzoo push ARTIFACT --repo ... --update-registry` writes both)",
        )
    if files:
        for required in ("config.json", "model.safetensors"):
            if required not in files:
                raise r.fail("files", f"must list {required!r} (every file of the published commit)")
    r.finish()
    return HubLocation(repo_id, revision, files)


def _parse_metric(r: _Reader) -> MetricRecord:
    dataset = r.text("dataset")
    split = _choice(r, "split", r.text("split"), METRIC_SPLITS)
    metric = r.text("metric")
    value = float(r.get("value", (int, float)))
    if not math.isfinite(value):
        raise r.fail("value", f"must be a finite number, got {value}")
    source = r.text("source", required=False, default="", empty_ok=True)
    r.finish()
    return MetricRecord(dataset, split, metric, value, source)


def parse_entry(data: Mapping[str, Any], source: str | Path, *, expect_name: str | None = None) -> PretrainedEntry:
    """Validate one registry document (already parsed TOML) and return its entry."""
    r = _Reader(data, str(source))
    version = r.get("schema_version", int)
    if version != SCHEMA_VERSION:
        raise r.fail("schema_version", f"is {version}; this cellzoo reads version {SCHEMA_VERSION} (upgrade cellzoo)")
    name = r.text("name")
    if not CHECKPOINT_NAME.match(name):
        raise r.fail("name", f"must be 'arch.tag' (letters, digits, '_' or '-' on each side of one dot), got {name!r}")
    if expect_name is not None and name != expect_name:
        raise r.fail("name", f"is {name!r} but the file is named {expect_name}.toml; they must agree")
    architecture = r.text("architecture")
    if architecture != name.split(".", 1)[0]:
        raise r.fail("architecture", f"is {architecture!r} but the name {name!r} says {name.split('.', 1)[0]!r}")
    task = r.text("task")
    summary = r.text("summary")
    license_ = r.text("license")
    if license_ not in HUB_LICENSES:
        raise r.fail(
            "license",
            f"{license_!r} is not a Hugging Face Hub licence id (e.g. mit, apache-2.0, bsd-3-clause, cc-by-4.0); "
            'use license = "other" with license_name = "..." for anything else',
        )
    license_name = r.text("license_name", required=license_ == "other")
    citation = r.text("citation")
    training_data = r.text("training_data")
    tags = r.get("tags", list, required=False, default=[])
    if not all(isinstance(t, str) and t.strip() for t in tags):
        raise r.fail("tags", f"must be a list of non-empty strings, got {tags!r}")
    recipe = _parse_recipe(r.table("recipe"))
    hub = _parse_hub(r.table("hub"))
    raw_metrics = r.get("metrics", list, required=False, default=[])
    metrics = []
    for i, m in enumerate(raw_metrics):
        if not isinstance(m, dict):
            raise r.fail(f"metrics[{i}]", "must be a table ([[metrics]])")
        metrics.append(_parse_metric(_Reader(m, str(source), f"metrics[{i}].")))
    r.finish()
    return PretrainedEntry(
        name=name,
        architecture=architecture,
        task=task,
        summary=summary,
        license=license_,
        license_name=license_name,
        citation=citation,
        training_data=training_data,
        recipe=recipe,
        hub=hub,
        metrics=tuple(metrics),
        tags=tuple(tags),
        path=Path(source) if not isinstance(source, Path) else source,
    )


def read_entry(path: str | Path) -> PretrainedEntry:
    """Read and validate one registry file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"registry file {path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"registry file {path} cannot be read: {exc}") from exc
    return parse_entry(data, path, expect_name=path.name.removesuffix(".toml"))


# -- the catalogue ----------------------------------------------------------------------------


def registry_dirs() -> list[Path]:
    """The shipped registry folder, then every folder named in ``$CELLZOO_REGISTRY_PATH``."""
    dirs: list[Path] = []
    try:
        shipped = importlib.resources.files(REGISTRY_PACKAGE)
        dirs.append(Path(str(shipped)))
    except ModuleNotFoundError:  # a stripped-down install without the data package
        pass
    for raw in os.environ.get(REGISTRY_PATH_ENV, "").split(os.pathsep):
        if raw.strip():
            dirs.append(Path(raw.strip()).expanduser())
    return dirs


def registry_files() -> list[Path]:
    files: list[Path] = []
    seen: set[Path] = set()
    for directory in registry_dirs():
        if not directory.is_dir():
            raise ConfigError(
                f"registry folder {directory} (from ${REGISTRY_PATH_ENV}) does not exist or is not a folder; "
                "fix the variable or create the folder"
            )
        for path in sorted(directory.glob("*.toml")):
            resolved = path.resolve()
            if resolved not in seen:
                seen.add(resolved)
                files.append(path)
    return files


def pretrained_entries() -> dict[str, PretrainedEntry]:
    """Every registry entry by name, validated; a name defined twice is an error naming both files."""
    entries: dict[str, PretrainedEntry] = {}
    for path in registry_files():
        entry = read_entry(path)
        if entry.name in entries:
            raise ConfigError(
                f"pretrained checkpoint {entry.name!r} is defined twice: in {entries[entry.name].path} and in "
                f"{path}; remove one (or drop its folder from ${REGISTRY_PATH_ENV})"
            )
        entries[entry.name] = entry
    return dict(sorted(entries.items()))


def pretrained_entry(name: str) -> PretrainedEntry:
    """The registry entry ``name`` (``arch.tag``); an unknown name lists the closest ones."""
    entries = pretrained_entries()
    if name not in entries:
        raise UnknownNameError(
            "pretrained checkpoint",
            name,
            entries,
            hint=" Run `cellzoo list --pretrained` to see them, or add a registry file "
            f"(a folder of them can be named in ${REGISTRY_PATH_ENV}).",
        )
    return entries[name]


# -- writing what a push published --------------------------------------------------------------


def hub_toml(repo_id: str, revision: str | None, files: Mapping[str, FileRecord | Mapping[str, Any]]) -> str:
    """The ``[hub]`` block of a registry file (with ``[hub.files."…"]`` tables once published)."""
    lines = ["[hub]", f"repo_id = {_toml_str(repo_id)}"]
    if revision is not None:
        lines.append(f"revision = {_toml_str(revision)}")
    for path in sorted(files):
        record = files[path]
        sha = record.sha256 if isinstance(record, FileRecord) else record["sha256"]
        size = record.size if isinstance(record, FileRecord) else record["size"]
        lines += ["", f"[hub.files.{_toml_str(path)}]", f"sha256 = {_toml_str(sha)}", f"size = {int(size)}"]
    return "\n".join(lines) + "\n"


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def with_hub_block(text: str, block: str) -> str:
    """``text`` with its ``[hub]`` and ``[hub.*]`` tables replaced by ``block`` (comments elsewhere kept)."""
    lines = text.splitlines()
    out: list[str] = []
    inserted = False
    skipping = False
    for line in lines:
        header = _HEADER.match(line)
        if header:
            table = header.group(1).strip().strip('"')
            in_hub = table == "hub" or table.startswith("hub.")
            if in_hub and not inserted:
                out.extend(block.rstrip("\n").splitlines())
                out.append("")
                inserted = True
            skipping = in_hub
            if in_hub:
                continue
        if not skipping:
            out.append(line)
    if not inserted:
        out += ["", *block.rstrip("\n").splitlines()]
    return "\n".join(out).rstrip("\n") + "\n"


def update_hub_record(name: str, repo_id: str, revision: str, files: Mapping[str, Any]) -> Path:
    """Pin ``name`` to a published commit in its registry file (validated before it is written)."""

    entry = pretrained_entry(name)
    if entry.path is None:
        raise ConfigError(f"pretrained checkpoint {name!r} has no registry file to update")
    text = with_hub_block(entry.path.read_text(encoding="utf-8"), hub_toml(repo_id, revision, files))
    try:
        parse_entry(tomllib.loads(text), entry.path, expect_name=name)
    except (tomllib.TOMLDecodeError, ConfigError) as exc:  # a bug here must not corrupt the file
        raise ConfigError(f"updating {entry.path} would make it invalid ({exc}); the file was left unchanged") from exc
    write_text(entry.path, text)
    return entry.path
