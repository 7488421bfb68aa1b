"""Train a pretrained checkpoint from its registry recipe, into the local cache.

This is the embedded default behind every registry name: before a checkpoint is published, or
with no network at all, ``cellzoo build NAME`` (or the first ``cellzoo.load(NAME)``) trains it
here from the recipe — dataset, split, seed, config overrides, epochs — and stores the artifact
at :func:`cellzoo.paths.artifact_dir`. The same recipe and seed give the same tensors on the same
machine: the split is drawn with its own seeded generator, the model's ``config.seed`` is set
from the recipe, and Python, numpy (and torch, when the model uses it) are seeded before fitting.

With a ``holdout`` split the cells never trained on are predicted after training and the task's
metrics are written into the artifact (``config.json`` and its card) — measured, not copied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .artifacts import save
from .cache import cache_hit, checkpoint_lock, read_origin, write_origin
from .data.datasets import dataset_hash, load_dataset
from .data.labels import labels_of
from .data.splits import split_indices
from .errors import ConfigError
from .genmetrics import TYPE_KEY, reference_cells
from .paths import artifact_dir
from .pretrained import PretrainedEntry, pretrained_entry
from .registry import contribution, create_model, get_metric, metric_spec, task_spec
from .seeding import seed_everything
from .tasks import dispatch_of


def recipe_sha256(entry: PretrainedEntry) -> str:
    """A hash of everything that decides what a build produces (architecture + recipe)."""
    payload = {"architecture": entry.architecture, "recipe": entry.recipe.to_json()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def recipe_config(entry: PretrainedEntry, spec: Any) -> dict[str, Any]:
    """The config overrides of ``entry`` for the architecture's config dataclass.

    ``recipe.seed`` becomes ``config.seed`` when the config has one; ``recipe.epochs`` must find
    an ``epochs`` field. TOML arrays become tuples where the field's default is a tuple.
    """
    overrides = entry.recipe.config_overrides()
    if spec.config is None:
        overrides.pop("seed", None)
        if overrides:
            raise ConfigError(f"registry entry {entry.name} sets {sorted(overrides)} but {spec.name!r} takes no config")
        return {}
    fields = {f.name: f for f in dataclasses.fields(spec.config)}
    if "seed" not in fields:
        overrides.pop("seed")
    if "epochs" in overrides and "epochs" not in fields:
        raise ConfigError(
            f"registry file {entry.path}: recipe.epochs is set but architecture {spec.name!r} has no 'epochs' "
            "config field; remove recipe.epochs"
        )
    for key, value in overrides.items():
        f = fields.get(key)
        if f is not None and isinstance(value, list) and isinstance(f.default, tuple):
            overrides[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return overrides


def reporter(progress: bool) -> Callable[[str], None]:
    """A function printing one timed step line to stderr (the model's own training bar shows in between)."""
    if not progress:
        return lambda message: None
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False)
    start = time.perf_counter()

    def say(message: str) -> None:
        elapsed = time.perf_counter() - start
        console.print(f"[bold cyan]build[/] {escape(message)} [dim]({elapsed:.1f} s)[/]", soft_wrap=True)

    return say


def train_from_recipe(
    entry: PretrainedEntry, *, progress: bool = True, say: Callable[[str], None] | None = None
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Train ``entry``'s model from its recipe: (model, recipe record for config.json, held-out metrics)."""
    say = say or reporter(progress)
    recipe = entry.recipe
    spec = contribution("model", entry.architecture).spec
    if spec.task != entry.task:
        raise ConfigError(
            f"registry file {entry.path} says task {entry.task!r} but the installed architecture "
            f"{entry.architecture!r} is a {spec.task!r} model"
        )
    model = create_model(entry.architecture, **recipe_config(entry, spec))
    say(f"{entry.name}: loading dataset {recipe.dataset!r}")
    if task_spec(entry.task).data == "images":
        return _train_images(entry, model, say)
    if recipe.split.kind == "fixed":
        raise ConfigError(
            f'registry file {entry.path}: split kind "fixed" takes an image dataset\'s own train/test parts; a cell '
            'recipe splits with kind = "holdout" or trains on "all"'
        )
    adata = load_dataset(recipe.dataset, label_key=recipe.label_key, **dict(recipe.dataset_params))
    labels = labels_of(adata, recipe.label_key) if recipe.label_key else None
    train, test = split_indices(labels, recipe.split, n=adata.n_obs)
    train_data = adata[train].copy()
    say(
        f"{entry.name}: training {entry.architecture} on {train.size} of {adata.n_obs} cells "
        f"({adata.n_vars} genes, seed {recipe.seed})"
    )
    seed_everything(recipe.seed)
    dispatch = dispatch_of(task_spec(entry.task))
    dispatch.fit(model, train_data, recipe.label_key)

    metrics: dict[str, float] = {}
    if test.size and task_spec(entry.task).scoring == "generate":
        say(f"{entry.name}: scoring generated cells against {test.size} held-out cells")
        reference = reference_cells(adata, test, None if labels is None else labels[test], train)
        label_key = None if labels is None else TYPE_KEY
        generated = dispatch.output(model, reference, label_key=label_key, seed=recipe.seed)
        for metric in task_spec(entry.task).metrics:
            metrics[metric] = float(get_metric(metric)(reference, generated))
    elif test.size and labels is not None and dispatch.can_predict(model):
        say(f"{entry.name}: measuring {test.size} held-out cells")
        prediction = dispatch.output(model, adata[test].copy(), solution=labels[test])
        for metric in task_spec(entry.task).metrics:
            if metric_spec(metric).scalar:
                metrics[metric] = float(get_metric(metric)(labels[test], prediction))
    record = {
        "name": entry.name,
        "architecture": entry.architecture,
        **recipe.to_json(),
        "dataset_sha256": dataset_hash(adata, recipe.label_key),
        "n_cells": int(adata.n_obs),
        "n_train": int(train.size),
        "n_test": int(test.size),
        "train_cells_sha256": hashlib.sha256("\n".join(map(str, adata.obs_names[train])).encode()).hexdigest(),
        "recipe_sha256": recipe_sha256(entry),
        "command": f"cellzoo build {entry.name}",
    }
    return model, record, ({recipe.dataset: metrics} if metrics else {})


def build_into(entry: PretrainedEntry, target: Path, *, progress: bool = True) -> Path:
    """Train ``entry`` and save it at ``target`` (atomically), recording its origin. No locking here."""
    say = reporter(progress)
    model, record, metrics = train_from_recipe(entry, say=say)
    save(model, target, overwrite=True, recipe=record, metrics=metrics)
    write_origin(target, "build", name=entry.name, recipe_sha256=record["recipe_sha256"])
    shown = ", ".join(f"{k} {v:.3f}" for values in metrics.values() for k, v in values.items())
    say(f"{entry.name}: saved to {target}" + (f" — held-out {shown}" if shown else ""))
    return target


def built_artifact(name: str) -> Path | None:
    """The cached artifact of ``name`` when it is a build of the current recipe (files re-checked)."""
    entry = pretrained_entry(name)
    target = artifact_dir(name)
    origin = read_origin(target) if (target / "config.json").is_file() else None
    if not origin or origin.get("source") != "build" or origin.get("recipe_sha256") != recipe_sha256(entry):
        return None
    cache_hit(target, None, name, fix=f"run `cellzoo build {name} --force` to build it again")
    return target


def build(name: str, *, force: bool = False, progress: bool = True) -> Path:
    """Train checkpoint ``name`` from its registry recipe into the local cache and return the folder.

    A cached build of the same recipe is reused (its files re-checked) unless ``force``; any
    other cached artifact of that name (e.g. a Hub download) is replaced.
    """
    entry = pretrained_entry(name)
    with checkpoint_lock(entry.name):
        if not force:
            cached = built_artifact(entry.name)
            if cached is not None:
                return cached
        return build_into(entry, artifact_dir(entry.name), progress=progress)


def _train_images(entry: PretrainedEntry, model: Any, say: Callable[[str], None]):
    """An image model's recipe: train on the dataset's own train part, score its test part at every scale."""
    from .data.datasets import images_hash

    recipe = entry.recipe
    if recipe.split.kind != "fixed":
        raise ConfigError(
            f"registry file {entry.path}: an image recipe trains on its dataset's own train part and scores the test "
            f'part; set [recipe.split] kind = "fixed" (got {recipe.split.kind!r})'
        )
    loaded = load_dataset(recipe.dataset, **dict(recipe.dataset_params))
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"registry file {entry.path}: image dataset {recipe.dataset!r} has no train/test parts of its own; a "
            "recipe trains on the train part and scores the test part"
        )
    train, test = loaded["train"], loaded["test"]
    say(f"{entry.name}: training {entry.architecture} on {len(train)} images (seed {recipe.seed})")
    seed_everything(recipe.seed)
    dispatch = dispatch_of(task_spec(entry.task))
    dispatch.fit(model, train, None)
    spec = task_spec(entry.task)
    scales = sorted({int(m.rpartition("_x")[2]) for m in spec.metrics if m.rpartition("_x")[2].isdigit()})
    scales = [s for s in scales if s in model.scales]
    say(f"{entry.name}: scoring ×{', ×'.join(map(str, scales))} on {len(test)} held-out images")
    upscaled = dispatch.output(model, test, scales=scales)
    metrics = {
        m: float(get_metric(m)(test, upscaled))
        for m in spec.metrics
        if m.rpartition("_x")[2].isdigit() and int(m.rpartition("_x")[2]) in scales
    }
    parts = ["train"] * len(train) + ["test"] * len(test)
    record = {
        "name": entry.name,
        "architecture": entry.architecture,
        **recipe.to_json(),
        "dataset_sha256": images_hash([*train, *test], parts),
        "n_train": len(train),
        "n_test": len(test),
        "recipe_sha256": recipe_sha256(entry),
        "command": f"cellzoo build {entry.name}",
    }
    return model, record, ({recipe.dataset: metrics} if metrics else {})
