"""A suite checked against what is installed: the models, metrics, datasets and configs to run.

Everything that can be wrong with a suite is found here, before the first run starts: unknown
names (the error lists what is installed), a metric of another task, a config key the model does
not have, a dataset without the label column (the data are loaded to check, and kept for the
runs). Model code is not imported here: a model whose plugin fails to import is a failed run,
recorded like any other failure.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BenchmarkError, CellzooError
from ..plugins import get_plugin_manager
from ..registry import make_config
from ..specs import Contribution, DatasetSpec, MetricSpec, ModelSpec, TaskSpec
from .suite import DatasetEntry, SplitRule, Suite

if TYPE_CHECKING:
    import anndata


#: scorings whose runs compare predictions or rankings with the label column: one class cannot be scored
LABELLED_SCORINGS = ("supervised", "unsupervised", "markers")


class SmallClassWarning(UserWarning):
    """A class of a dataset has too few cells to be in every test fold: it trains, but is never scored."""


@dataclass(frozen=True)
class PlannedModel:
    """A model of the suite with its resolved config (the seed is set per run)."""

    name: str
    spec: ModelSpec
    overrides: dict[str, Any]
    plugin: str
    distribution: str | None
    version: str | None
    is_control: bool

    @property
    def role(self) -> str:
        return "control" if self.is_control else self.spec.role

    @property
    def takes_seed(self) -> bool:
        return self.spec.config is not None and any(f.name == "seed" for f in dataclasses.fields(self.spec.config))

    def overrides_for(self, seed: int) -> dict[str, Any]:
        """The config overrides of one run: the suite's, plus the run's seed when the config has one."""
        return {**self.overrides, "seed": seed} if self.takes_seed else dict(self.overrides)

    def config_for(self, seed: int) -> Any:
        return make_config(self.spec, self.overrides_for(seed))


@dataclass
class PlannedDataset:
    """A loaded dataset with its labels, content hash and the obs columns that give labels away."""

    entry: DatasetEntry
    name: str
    #: the cells (None for an image set)
    adata: anndata.AnnData | None
    label_key: str
    labels: np.ndarray
    hash: str
    batch_key: str | None
    label_columns: tuple[str, ...]
    #: ``markers`` tasks: the true markers the dataset declares, {class: [gene, ...]}
    markers: dict[str, list[str]] | None = None
    #: an image set (``data="images"``): the images, their part (train/test) in ``labels``
    images: list[np.ndarray] | None = None

    def to_json(self) -> dict[str, Any]:
        if self.images is not None:
            return {
                "name": self.name,
                "source": self.entry.name,
                "params": dict(self.entry.params),
                "hash": self.hash,
                "n_images": len(self.images),
                "n_train": int((self.labels == "train").sum()),
                "n_test": int((self.labels == "test").sum()),
                "megapixels": round(sum(im.shape[0] * im.shape[1] for im in self.images) / 1e6, 4),
            }
        return {
            "name": self.name,
            "source": self.entry.name,
            "params": dict(self.entry.params),
            "hash": self.hash,
            "label_key": self.label_key,
            "batch_key": self.batch_key,
            "n_obs": int(self.adata.n_obs),
            "n_vars": int(self.adata.n_vars),
            "n_classes": int(np.unique(self.labels).size),
        }


@dataclass
class Plan:
    suite: Suite
    task: TaskSpec
    models: list[PlannedModel]
    metrics: list[MetricSpec]
    #: non-scalar metrics of the task (per-class tables), always kept in the records
    tables: list[MetricSpec]
    datasets: list[PlannedDataset]
    split: SplitRule
    plugins: dict[str, str | None] = field(default_factory=dict)

    @property
    def controls(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models if m.is_control)

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {m.name: m.higher_is_better for m in self.metrics}


def config_hash(model: str, config: Any) -> str:
    """sha256 of the model name and its resolved config as canonical JSON."""
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    text = json.dumps({"model": model, "config": data}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _unknown(kind: str, name: str, installed: Sequence[str], task: str | None = None) -> BenchmarkError:
    close = difflib.get_close_matches(name, installed, n=3, cutoff=0.5)
    what = f"{task} {kind}s" if task else f"{kind}s"
    listing = ", ".join(sorted(installed)) or "(none)"
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return BenchmarkError(
        f"the suite names unknown {kind} {name!r}.{hint} Installed {what}: {listing}. Fix the name or install "
        "the plugin that provides it (`cellzoo list` shows what is installed)."
    )


def _resolve_models(suite: Suite, task: TaskSpec, entries: dict[str, Contribution]) -> list[PlannedModel]:
    of_task = {n: c for n, c in entries.items() if c.spec.task == task.name}
    chosen: list[str] = []
    for pattern in suite.models:
        if any(ch in pattern for ch in "*?["):
            # a glob means "the methods that match": controls are added below in any case
            matches = sorted(
                n for n, c in of_task.items() if fnmatch.fnmatchcase(n, pattern) and c.spec.role != "control"
            )
            if not matches and pattern != "*":  # "*" with only the controls installed runs the controls
                raise BenchmarkError(
                    f"models pattern {pattern!r} matches no installed {task.name} model; installed: "
                    f"{', '.join(sorted(of_task)) or '(none)'}"
                )
            chosen.extend(m for m in matches if m not in chosen)
        elif pattern in of_task:
            if pattern not in chosen:
                chosen.append(pattern)
        elif pattern in entries:
            raise BenchmarkError(
                f"model {pattern!r} is a {entries[pattern].spec.task!r} model, not a {task.name!r} one; installed "
                f"{task.name} models: {', '.join(sorted(of_task))}"
            )
        else:
            raise _unknown("model", pattern, sorted(of_task), task.name)

    missing_controls = [c for c in task.controls if c not in of_task]
    if missing_controls:
        raise BenchmarkError(
            f"task {task.name!r} declares control(s) {missing_controls} that no installed plugin provides; "
            "reinstall the plugin that defines the task"
        )
    names = [m for m in chosen if m not in task.controls] + list(task.controls)

    unknown_config = sorted(set(suite.config) - set(names))
    if unknown_config:
        raise BenchmarkError(
            f"the suite has config overrides for {unknown_config}, which the suite does not run; it runs "
            f"{', '.join(names)}"
        )
    planned = []
    for name in names:
        c = of_task[name]
        model = PlannedModel(
            name=name,
            spec=c.spec,
            overrides=dict(suite.config.get(name, {})),
            plugin=c.plugin,
            distribution=c.distribution,
            version=c.version,
            is_control=name in task.controls,
        )
        try:
            model.config_for(suite.seeds[0])
        except CellzooError as exc:
            raise BenchmarkError(f"[config.{name}] in the suite: {exc}") from exc
        planned.append(model)
    return planned


def _resolve_metrics(
    suite: Suite, task: TaskSpec, entries: dict[str, Contribution]
) -> tuple[list[MetricSpec], list[MetricSpec]]:
    names = list(suite.metrics) if suite.metrics is not None else list(task.metrics)
    of_task = sorted(n for n, c in entries.items() if c.spec.task == task.name)
    metrics = []
    for name in names:
        if name not in entries:
            raise _unknown("metric", name, of_task, task.name)
        spec = entries[name].spec
        if spec.task != task.name:
            raise BenchmarkError(
                f"metric {name!r} is defined for task {spec.task!r}, not {task.name!r}; metrics of "
                f"{task.name}: {', '.join(of_task)}"
            )
        if not spec.scalar:
            raise BenchmarkError(
                f"metric {name!r} is a table, not a number, so it cannot be ranked; it is kept in every run "
                "record anyway. Remove it from metrics = [...]"
            )
        metrics.append(spec)
    if not metrics:
        raise BenchmarkError(f"the suite scores no metric; metrics of {task.name}: {', '.join(of_task)}")
    tables = [entries[n].spec for n in of_task if not entries[n].spec.scalar]
    return metrics, tables


def label_columns(obs, label_key: str, labels: np.ndarray) -> tuple[str, ...]:
    """The label column and every obs column that encodes it one-to-one (a copy or a recoding).

    These are removed from the test cells a model sees; a column that merely correlates with the
    labels (clusters, batches) is the model's to use.
    """
    import pandas as pd

    found = [label_key]
    for col in obs.columns:
        if col == label_key:
            continue
        values = obs[col].astype(str).to_numpy()
        pairs = pd.DataFrame({"v": values, "y": labels}).drop_duplicates()
        if len(pairs) == pairs["v"].nunique() == pairs["y"].nunique():
            found.append(str(col))
    return tuple(found)


def _dataset_spec(entry: DatasetEntry, task: TaskSpec, entries: dict[str, Contribution]) -> DatasetSpec | None:
    """The spec of a named dataset (None for a file), checked before any data is loaded."""
    if entry.is_path:
        return None
    if entry.registered_name not in entries:
        installed = sorted(n for n, c in entries.items() if task.name in c.spec.tasks and n != "h5ad")
        raise _unknown("dataset", entry.registered_name, installed, task.name)
    spec = entries[entry.registered_name].spec
    if task.name not in spec.tasks:
        raise BenchmarkError(f"dataset {entry.name!r} is for task(s) {list(spec.tasks)}, not {task.name!r}")
    return spec


def _truth_markers(adata, name: str) -> dict[str, list[str]]:
    """The dataset's declared markers, checked against its genes; an error says how to declare them."""
    from ..metrics import true_markers

    try:
        markers = true_markers(adata)
    except CellzooError as exc:
        raise BenchmarkError(f"dataset {name!r}: {exc}") from exc
    if not markers:
        raise BenchmarkError(
            f'dataset {name!r} declares no true markers, so a markers suite cannot score it: set adata.uns["cellzoo"]'
            '["markers"] = {class: [gene, ...]} (splat and pbmc68k_reduced declare theirs)'
        )
    unknown = sorted({g for genes in markers.values() for g in genes} - set(map(str, adata.var_names)))
    if unknown:
        raise BenchmarkError(
            f"dataset {name!r}: {len(unknown)} declared marker gene(s) are not among its genes (e.g. {unknown[:5]}); "
            "a gene that is not measured cannot be ranked — drop them from the declared markers"
        )
    return markers


def _load_images(entry: DatasetEntry, rule: SplitRule) -> PlannedDataset:
    """An image set: its own train/test parts (a ``fixed`` split), or one list split by ``holdout``."""
    from ..data.datasets import images_hash, load_dataset

    try:
        loaded = load_dataset(entry.name, **dict(entry.params))
    except CellzooError as exc:
        raise BenchmarkError(f"dataset {entry.name!r} could not be loaded: {exc}") from exc
    if isinstance(loaded, dict):
        images = [*loaded["train"], *loaded["test"]]
        parts = np.array(["train"] * len(loaded["train"]) + ["test"] * len(loaded["test"]))
    else:
        if rule.kind == "fixed":
            raise BenchmarkError(
                f"image dataset {entry.display_name!r} has no train/test parts of its own, so a fixed split cannot "
                'use them; set [split] kind = "holdout"'
            )
        images, parts = list(loaded), np.array(["image"] * len(loaded))
    return PlannedDataset(
        entry=entry,
        name=entry.display_name,
        adata=None,
        label_key="part",
        labels=parts,
        hash=images_hash(images, parts),
        batch_key=None,
        label_columns=(),
        images=images,
    )


def _load_dataset(
    entry: DatasetEntry, spec: DatasetSpec | None, rule: SplitRule, task: TaskSpec | None = None
) -> PlannedDataset:
    from ..data.datasets import dataset_hash, load_dataset

    if spec is not None and spec.data == "images":
        return _load_images(entry, rule)

    label_key = entry.label_key or (spec.label_key if spec is not None else None)
    if not label_key:
        raise BenchmarkError(
            f'dataset {entry.name!r} has no default label key; set label_key = "<obs column>" in its [[datasets]] '
            "entry (or --label-key on the command line)"
        )
    try:
        adata = load_dataset(entry.name, **dict(entry.params))
    except CellzooError as exc:
        raise BenchmarkError(f"dataset {entry.name!r} could not be loaded: {exc}") from exc
    if label_key not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:30])) or "(none)"
        raise BenchmarkError(
            f"dataset {entry.display_name!r} has no obs column {label_key!r} to use as labels; its obs columns: "
            f"{cols}. Set label_key to the column that holds the cell types"
        )
    column = adata.obs[label_key]
    if column.isna().any():
        raise BenchmarkError(
            f"dataset {entry.display_name!r}: {int(column.isna().sum())} cells have no label in obs[{label_key!r}]; "
            "drop them (adata = adata[adata.obs[key].notna()]) and save the file again"
        )
    labels = column.astype(str).to_numpy()
    _check_classes(entry.display_name, label_key, labels, rule, task)
    batch_key = None
    if rule.kind == "by_batch":
        batch_key = rule.batch_key or entry.batch_key or (spec.batch_key if spec is not None else None)
        if not batch_key:
            raise BenchmarkError(
                f"a by_batch split needs a batch column for dataset {entry.display_name!r}; set batch_key in "
                "[split] or in its [[datasets]] entry"
            )
        if batch_key not in adata.obs.columns:
            raise BenchmarkError(
                f"dataset {entry.display_name!r} has no obs column {batch_key!r} (the by_batch split's batch_key)"
            )
    digest = dataset_hash(adata, label_key=label_key)
    markers = None
    if task is not None and task.scoring == "markers":
        markers = _truth_markers(adata, entry.display_name)
        # the truth is part of what a record scored: other markers, other key
        text = json.dumps({"dataset": digest, "markers": markers}, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
    return PlannedDataset(
        entry=entry,
        name=entry.display_name,
        adata=adata,
        label_key=label_key,
        labels=labels,
        hash=digest,
        batch_key=batch_key,
        label_columns=label_columns(adata.obs, label_key, labels),
        markers=markers,
    )


def _check_classes(name: str, label_key: str, labels: np.ndarray, rule: SplitRule, task: TaskSpec | None) -> None:
    """Refuse a label column with a single class; warn about classes too small for the split.

    Every run of a task scored against the labels would score the same degenerate number on
    one class (a leaderboard of zeros, or of ones), so the suite is refused before any run. A
    class with fewer cells than folds (fewer than two for a holdout split) is kept in training
    and never tested, which :func:`cellzoo.data.splits.make_splits` records; the warning says so.
    """
    classes, counts = np.unique(labels, return_counts=True)
    scoring = task.scoring if task is not None else "supervised"
    if scoring in LABELLED_SCORINGS and classes.size < 2:
        only = f"{str(classes[0])!r} (all {labels.size} cells)" if classes.size else "none (no cells)"
        raise BenchmarkError(
            f"dataset {name!r}: its label column obs[{label_key!r}] holds one class only, {only}; task "
            f"{task.name if task is not None else 'annotate'!r} needs at least two classes to score. "
            "Set label_key (--label-key) to a column with several cell types, or add cells of other types"
        )
    minimum = rule.folds if rule.kind == "stratified_kfold" else 2 if rule.kind == "holdout" else 0
    small = [(str(c), int(n)) for c, n in zip(classes, counts, strict=True) if n < minimum]
    if scoring in LABELLED_SCORINGS and small:
        shown = ", ".join(f"{c!r} ({n} cell{'s' * (n != 1)})" for c, n in small)
        if rule.kind == "stratified_kfold":
            need, fix = f"fewer cells than the {rule.folds} folds", "use fewer folds (--folds)"
        else:
            need, fix = "a single cell, which a holdout split cannot test", "add cells"
        warnings.warn(
            f"dataset {name!r}: class(es) of obs[{label_key!r}] with {need}: {shown}; their cells are in every "
            f"training set and no test set, so they are never scored. To score them, {fix} or merge them with "
            "another class",
            SmallClassWarning,
            stacklevel=2,
        )


def build_plan(suite: Suite) -> Plan:
    """Check ``suite`` against the installed plugins and load its datasets; raise before any run."""
    catalog = get_plugin_manager().catalog()
    if suite.task not in catalog["task"]:
        raise _unknown("task", suite.task, sorted(catalog["task"]))
    task = catalog["task"][suite.task].spec
    models = _resolve_models(suite, task, catalog["model"])
    metrics, tables = _resolve_metrics(suite, task, catalog["metric"])
    split = suite.split or SplitRule(kind=task.split)
    if split.kind == "all" and task.scoring == "supervised":
        raise BenchmarkError(
            f"a split of kind 'all' fits and scores the same cells, so {task.name!r} models would be scored on "
            "labels they were trained on; use stratified_kfold, holdout or by_batch"
        )
    specs = [_dataset_spec(entry, task, catalog["dataset"]) for entry in suite.datasets]
    datasets = [_load_dataset(entry, spec, split, task) for entry, spec in zip(suite.datasets, specs)]
    plugins = {(info.distribution or info.name): info.version for info in get_plugin_manager().plugins() if info.ok}
    return Plan(suite, task, models, metrics, tables, datasets, split, plugins)
