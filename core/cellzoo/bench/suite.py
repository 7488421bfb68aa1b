"""Benchmark suites: the TOML schema, parsed into frozen objects and checked for shape.

A suite names what to compare; it says nothing about how models work. Example::

    name = "annotate-pbmc68k"          # optional; default: the file's stem
    task = "annotate"
    models = ["logreg", "linear_svm", "scanna*"]   # names or fnmatch globs; "*" = every method
    metrics = ["accuracy", "f1_macro"]             # optional; default: the task's metrics
    seeds = [0, 1, 2]
    timeout = 600                                  # seconds per run; optional

    [split]
    kind = "stratified_kfold"                      # or "holdout" (test_fraction), "by_batch" (batch_key),
                                                   # or "all" (fit and score every cell; discover, markers)
    folds = 5

    [[datasets]]
    name = "pbmc68k_reduced"                       # a dataset name, or a path to an .h5ad file
    label_key = "bulk_labels"                      # optional for named datasets (their spec's key)

    [[datasets]]                                   # one dataset at several settings: give each an alias
    name = "splat"
    alias = "splat-3k-de0.3"
    params = { n_cells = 3000, de_fac_loc = 0.3 }

    [config.logreg]                                # config overrides of one model
    C = 0.5

``models`` may instead be a table of model → overrides (``[models.logreg]`` then ``C = 0.5``),
for suites that name their models one by one. Checking names against the installed plugins and
loading the data happen in :mod:`cellzoo.bench.plan`; this module only parses.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import BenchmarkError
from ..paths import dataset_argument

SPLIT_KINDS = ("stratified_kfold", "holdout", "by_batch", "all", "fixed")
SUITE_KEYS = ("name", "task", "datasets", "models", "metrics", "seeds", "split", "config", "timeout")
DATASET_KEYS = ("name", "alias", "label_key", "batch_key", "params")
SPLIT_KEYS = ("kind", "folds", "test_fraction", "batch_key", "test_batches")


@dataclass(frozen=True)
class SplitRule:
    """How a dataset is divided into training and test cells (once per dataset and seed)."""

    kind: str = "stratified_kfold"
    folds: int = 5
    test_fraction: float = 0.2
    #: ``by_batch``: the obs column of batches (default: the dataset spec's ``batch_key``)
    batch_key: str | None = None
    #: ``by_batch``: the batches held out, each in turn (default: every batch)
    test_batches: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in SPLIT_KINDS:
            raise BenchmarkError(f"[split] kind {self.kind!r} is not one of {', '.join(SPLIT_KINDS)}")
        if self.kind == "stratified_kfold" and (not _is_int(self.folds) or self.folds < 2):
            raise BenchmarkError(f"[split] folds must be an integer ≥ 2 for stratified_kfold, got {self.folds!r}")
        if self.kind == "holdout" and not (
            isinstance(self.test_fraction, (int, float)) and 0.0 < self.test_fraction < 1.0
        ):
            raise BenchmarkError(
                f"[split] test_fraction must be a number strictly between 0 and 1, got {self.test_fraction!r}"
            )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "stratified_kfold":
            out["folds"] = self.folds
        elif self.kind == "holdout":
            out["test_fraction"] = self.test_fraction
        elif self.kind == "by_batch":
            out["batch_key"] = self.batch_key
            out["test_batches"] = list(self.test_batches) if self.test_batches is not None else None
        return out


@dataclass(frozen=True)
class DatasetEntry:
    """One ``[[datasets]]`` entry: a registered dataset name or a path to an ``.h5ad`` file."""

    name: str
    label_key: str | None = None
    batch_key: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    alias: str | None = None

    @property
    def is_path(self) -> bool:
        if dataset_argument(self.name):
            return False
        return self.name.endswith(".h5ad") or "/" in self.name or "\\" in self.name

    @property
    def registered_name(self) -> str:
        """The registered dataset this entry loads (``image-folder`` for ``image-folder:PATH``)."""
        argument = dataset_argument(self.name)
        return argument[0] if argument else self.name

    @property
    def display_name(self) -> str:
        """How leaderboards name the dataset: its alias, its registered name, or the file's stem."""
        if self.alias:
            return self.alias
        return Path(self.name).stem if self.is_path else self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "label_key": self.label_key,
            "batch_key": self.batch_key,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class Suite:
    """A parsed benchmark suite (see the module docstring for the TOML it comes from)."""

    task: str
    datasets: tuple[DatasetEntry, ...]
    models: tuple[str, ...] = ("*",)
    metrics: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (0,)
    split: SplitRule | None = None  # None: the task's default split rule
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    timeout: float | None = None
    name: str = "bench"
    source: str | None = None

    def __post_init__(self) -> None:
        if not self.datasets:
            raise BenchmarkError(f"suite {self.name!r} names no datasets; add a [[datasets]] entry with a name")
        if not self.models:
            raise BenchmarkError(f'suite {self.name!r} names no models; use models = ["*"] for every installed one')
        if not self.seeds or not all(_is_int(s) for s in self.seeds):
            raise BenchmarkError(f"suite {self.name!r}: seeds must be a non-empty list of integers, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise BenchmarkError(f"suite {self.name!r}: seeds {list(self.seeds)} repeat a value")
        if self.timeout is not None and not (
            isinstance(self.timeout, (int, float)) and not isinstance(self.timeout, bool) and self.timeout > 0
        ):
            raise BenchmarkError(
                f"suite {self.name!r}: timeout must be a positive number of seconds, got {self.timeout!r}"
            )
        names = [d.display_name for d in self.datasets]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise BenchmarkError(
                f"suite {self.name!r} lists dataset(s) {repeated} more than once; give each entry its own "
                'alias = "..." (e.g. one per params setting)'
            )
        for model, overrides in self.config.items():
            if "seed" in overrides:
                raise BenchmarkError(
                    f"suite {self.name!r} sets 'seed' in the config of {model!r}; the harness sets each run's "
                    "seed from the suite's seeds = [...] list, so remove it there"
                )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "datasets": [d.to_json() for d in self.datasets],
            "models": list(self.models),
            "metrics": list(self.metrics) if self.metrics is not None else None,
            "seeds": list(self.seeds),
            "split": self.split.to_json() if self.split is not None else None,
            "config": {k: dict(v) for k, v in self.config.items()},
            "timeout": self.timeout,
            "source": self.source,
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_keys(where: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BenchmarkError(f"{where}: unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)}")


def _string_list(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BenchmarkError(f"{where} must be a list of names, got {value!r}")
    return tuple(value)


def _dataset_entry(i: int, raw: Any, base_dir: Path | None) -> DatasetEntry:
    where = f"[[datasets]] entry {i + 1}"
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        raise BenchmarkError(f"{where} must be a table with a name, got {raw!r}")
    _check_keys(where, raw, DATASET_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise BenchmarkError(f'{where} needs name = "<dataset name or path/to/file.h5ad>"')
    params = raw.get("params", {})
    if not isinstance(params, Mapping):
        raise BenchmarkError(f"{where}: params must be a table, got {params!r}")
    alias = raw.get("alias")
    if alias is not None and (not isinstance(alias, str) or not alias.strip() or "/" in alias):
        raise BenchmarkError(f"{where}: alias must be a non-empty name without '/', got {alias!r}")
    entry = DatasetEntry(
        name=name, label_key=raw.get("label_key"), batch_key=raw.get("batch_key"), params=dict(params), alias=alias
    )
    if entry.is_path and base_dir is not None and not Path(name).is_absolute():
        # relative paths are relative to the suite file, so a suite runs from any directory
        entry = replace(entry, name=str((base_dir / name).resolve()))
    return entry


def _split_rule(raw: Any) -> SplitRule | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise BenchmarkError(f"[split] must be a table, got {raw!r}")
    _check_keys("[split]", raw, SPLIT_KEYS)
    kwargs = dict(raw)
    if "test_batches" in kwargs:
        batches = kwargs["test_batches"]
        if not isinstance(batches, list) or not batches:
            raise BenchmarkError(f"[split] test_batches must be a non-empty list of batch names, got {batches!r}")
        kwargs["test_batches"] = tuple(str(b) for b in batches)
    return SplitRule(**kwargs)


def suite_from_dict(data: Mapping[str, Any], name: str = "bench", base_dir: str | Path | None = None) -> Suite:
    """Parse the content of a suite file (already read as a dict)."""
    _check_keys("suite", data, SUITE_KEYS)
    task = data.get("task")
    if not isinstance(task, str) or not task:
        raise BenchmarkError('the suite needs task = "<task name>", e.g. task = "annotate"')
    base = Path(base_dir) if base_dir is not None else None
    raw_datasets = data.get("datasets")
    if not isinstance(raw_datasets, list) or not raw_datasets:
        raise BenchmarkError("the suite needs at least one [[datasets]] entry with a name")
    datasets = tuple(_dataset_entry(i, d, base) for i, d in enumerate(raw_datasets))

    raw_models = data.get("models", ["*"])
    config: dict[str, dict[str, Any]] = {}
    if isinstance(raw_models, Mapping):
        models = tuple(raw_models)
        for model, overrides in raw_models.items():
            if not isinstance(overrides, Mapping):
                raise BenchmarkError(f"[models.{model}] must be a table of config overrides, got {overrides!r}")
            if overrides:
                config[model] = dict(overrides)
    else:
        models = _string_list("models", raw_models)
    raw_config = data.get("config", {})
    if not isinstance(raw_config, Mapping) or not all(isinstance(v, Mapping) for v in raw_config.values()):
        raise BenchmarkError("[config.<model>] entries must be tables of config overrides")
    for model, overrides in raw_config.items():
        if model in config:
            raise BenchmarkError(f"model {model!r} has overrides both under [models.{model}] and [config.{model}]")
        config[model] = dict(overrides)

    metrics = _string_list("metrics", data["metrics"]) if "metrics" in data else None
    seeds = data.get("seeds", [0])
    if _is_int(seeds):
        seeds = [seeds]
    if not isinstance(seeds, list):
        raise BenchmarkError(f"seeds must be a list of integers, got {seeds!r}")
    timeout = data.get("timeout")
    if isinstance(timeout, float) and math.isinf(timeout):
        timeout = None
    return Suite(
        task=task,
        datasets=datasets,
        models=models,
        metrics=metrics,
        seeds=tuple(seeds),
        split=_split_rule(data.get("split")),
        config=config,
        timeout=timeout,
        name=str(data.get("name") or name),
    )


def load_suite(path: str | Path) -> Suite:
    """Read and parse a suite TOML file (names are checked later, against what is installed)."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"suite file {str(path)!r} does not exist; pass the path of a .toml suite")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BenchmarkError(f"suite file {str(path)!r} is not valid TOML: {exc}") from exc
    suite = suite_from_dict(data, name=path.stem, base_dir=path.parent)
    return replace(suite, source=str(path))


def as_suite(suite: Suite | str | Path | Mapping[str, Any]) -> Suite:
    """A :class:`Suite` from a suite, a path to a TOML file, or the dict such a file holds."""
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, Mapping):
        return suite_from_dict(suite)
    return load_suite(suite)
