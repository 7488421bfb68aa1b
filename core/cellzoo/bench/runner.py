"""Running a plan: every (dataset, seed, fold, model) in its own forked process.

Isolation is what makes a benchmark of other people's code survivable: an exception, a crash
(segfault, out-of-memory kill) or a run longer than ``timeout`` becomes a failed record with its
error, and the next run starts. The child gets a copy of the parent's memory (the loaded data,
the splits, the plugin manager) for free through ``fork``; it reports back through a JSON file,
so nothing is pickled.

What a model sees depends on the task's ``scoring``:

* ``supervised`` (annotate): the training cells (``adata[train]``, labels included) for ``fit``,
  then the test cells with the label column — and every obs column that encodes it one-to-one —
  removed for ``predict``; predictions must be training classes.
* ``unsupervised`` (discover): ``fit`` gets the training cells without those columns too, and
  ``predict`` may name clusters anything; the labels are only used to score.
* ``markers``: ``fit(train, label_key)`` then ``markers(train, label_key, n)``; the ranking is
  scored against the true markers the dataset declares, and kept in the record.

Controls that need the truth (``requires_solution``) get it as ``solution=`` and nothing else does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import select
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..data.splits import Split, make_splits
from ..errors import ProtocolError, ResourceError
from ..fileio import write_json
from ..protocols import capability
from ..seeding import seed_everything
from ..specs import resolve
from ..tasks import MARKERS_PER_CLASS, dispatch_of
from .plan import Plan, PlannedDataset, PlannedModel, config_hash
from .records import (
    SCHEMA,
    load_predictions,
    predictions_path,
    read_record,
    record_path,
    run_key,
    save_predictions,
)

#: lines of a crashed run's log kept in its record
LOG_TAIL_LINES = 30


@dataclass
class Job:
    """One run: a model on one fold of one dataset, with one seed."""

    dataset: PlannedDataset
    model: PlannedModel
    seed: int
    split: Split
    config: Any
    config_hash: str
    key: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.model.name} on {self.dataset.name} · seed {self.seed} · fold {self.split.fold + 1}/{self.split.n_folds}"


@dataclass
class RunOutcome:
    """The records of a plan's runs (in plan order) and what happened while getting them."""

    records: list[dict[str, Any]]
    counts: Counter = field(default_factory=Counter)  # ran / reused / redone (damaged or forced)
    notes: list[str] = field(default_factory=list)


def plan_jobs(plan: Plan, runs_dir: Path) -> list[Job]:
    """Every run of the plan; the splits are made once per (dataset, seed) and shared by all models."""
    jobs = []
    for data in plan.datasets:
        batches = data.adata.obs[data.batch_key].to_numpy() if data.batch_key else None
        for seed in plan.suite.seeds:
            for split in make_splits(data.labels, plan.split, seed, batches=batches):
                for model in plan.models:
                    config = model.config_for(seed)
                    chash = config_hash(model.name, config)
                    key = run_key(
                        task=plan.task.name,
                        dataset_hash=data.hash,
                        label_key=data.label_key,
                        model=model.name,
                        config_hash=chash,
                        seed=seed,
                        fold=split.fold,
                        split_hash=split.hash,
                    )
                    path = record_path(
                        runs_dir, dataset=data.name, model=model.name, seed=seed, fold=split.fold, key=key
                    )
                    jobs.append(Job(data, model, seed, split, config, chash, key, path))
    return jobs


# -- what a model is given -----------------------------------------------------------------------


def labelled_cells(adata, index: np.ndarray, label_key: str):
    """The training cells, labels included."""
    import pandas as pd

    train = adata[index].copy()
    column = train.obs[label_key]
    if isinstance(column.dtype, pd.CategoricalDtype):
        # unused categories would name the classes that only test cells have
        train.obs[label_key] = column.cat.remove_unused_categories()
    return train


def unlabelled_cells(adata, index: np.ndarray, label_columns: tuple[str, ...]):
    """The test cells without their labels: the label column and its copies are dropped."""
    test = adata[index].copy()
    test.obs = test.obs.drop(columns=[c for c in label_columns if c in test.obs.columns])
    for column in label_columns:
        test.uns.pop(f"{column}_colors", None)
    return test


def predicted_labels(prediction: Any, n_cells: int, classes: np.ndarray, model: str, allow_unseen: bool) -> np.ndarray:
    """The labels of a prediction, checked: one per test cell, each a training class."""
    labels = getattr(prediction, "labels", prediction)
    try:
        labels = np.asarray(labels)
    except Exception as exc:
        raise ProtocolError(f"model {model!r} returned {type(prediction).__name__}, not labels: {exc}") from exc
    if labels.ndim != 1 or labels.shape[0] != n_cells:
        got = labels.shape[0] if labels.ndim == 1 else f"an array of shape {labels.shape} as"
        raise ProtocolError(
            f"model {model!r} returned {got} predictions for {n_cells} test cells; predict() must return one "
            "label per cell, in the order of the cells it was given"
        )
    labels = labels.astype(str)
    if not allow_unseen:
        unknown = sorted({str(label) for label in labels} - {str(c) for c in classes})
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise ProtocolError(
                f"model {model!r} predicted label(s) {shown} that are not among the {len(classes)} classes of "
                f"its training cells; a model may only predict classes it was trained on"
            )
    return labels


def execute(job: Job, plan: Plan) -> dict[str, Any]:
    """Fit, then predict or rank markers, and score one run (in this process); returns its record's result fields."""
    from ..registry import create_model

    data, split, scoring = job.dataset, job.split, plan.task.scoring
    dispatch = dispatch_of(plan.task)
    y_train = data.labels[split.train]
    if data.images is not None:
        train = [data.images[i] for i in split.train]
    elif dispatch.takes_labels:
        train = labelled_cells(data.adata, split.train, data.label_key)
    else:
        train = unlabelled_cells(data.adata, split.train, data.label_columns)
    seed_everything(job.seed)  # models should seed themselves from config.seed; this covers those that do not
    model = create_model(job.model.name, **job.model.overrides_for(job.seed))
    missing = [m for m in plan.task.protocol if not callable(getattr(model, m, None))]
    if missing:
        raise ProtocolError(
            f"model {job.model.name!r} does not implement {', '.join(m + '()' for m in missing)}, which task "
            f"{plan.task.name!r} requires"
        )
    solves = capability(model, "requires_solution")

    start = time.perf_counter()
    dispatch.fit(model, train, data.label_key)
    fit_seconds = time.perf_counter() - start
    torch = sys.modules.get("torch")
    common = {"status": "ok", "fit_seconds": fit_seconds, "torch_threads": torch.get_num_threads() if torch else None}

    if scoring == "markers":
        start = time.perf_counter()
        ranked = checked_markers(
            dispatch.output(model, train, label_key=data.label_key, solution=data.markers), job.model.name
        )
        seconds = time.perf_counter() - start
        return {
            **common,
            "metrics": {spec.name: float(resolve(spec.function)(data.markers, ranked)) for spec in plan.metrics},
            "tables": {spec.name: resolve(spec.function)(data.markers, ranked) for spec in plan.tables},
            "predict_seconds": seconds,
            "markers": ranked,
        }

    if scoring == "generate":
        del train
        return {**common, **generated_run(job, dispatch, model, plan)}

    if scoring == "upscale":
        del train
        return {**common, **upscaled_run(job, dispatch, model, plan)}

    del train
    y_test = data.labels[split.test]
    test = unlabelled_cells(data.adata, split.test, data.label_columns)
    start = time.perf_counter()
    prediction = dispatch.output(model, test, solution=y_test.copy())
    predict_seconds = time.perf_counter() - start

    y_pred = predicted_labels(
        prediction,
        test.n_obs,
        np.unique(y_train),
        job.model.name,
        # cluster names of an unsupervised model are not training classes
        allow_unseen=solves or dispatch.allows_unseen,
    )
    metrics = {spec.name: float(resolve(spec.function)(y_test, prediction)) for spec in plan.metrics}
    tables = {spec.name: resolve(spec.function)(y_test, prediction) for spec in plan.tables}
    save_predictions(predictions_path(job.path), y_test, y_pred, split.test)
    return {
        **common,
        "metrics": metrics,
        "tables": tables,
        "predict_seconds": predict_seconds,
        "cells_per_second": test.n_obs / predict_seconds if predict_seconds > 0 else None,
    }


def generated_run(job: Job, dispatch: Any, model: Any, plan: Plan) -> dict[str, Any]:
    """Sample like a held-out half of the test cells and score against it; the other half is the ``real_cells`` control's."""
    data, split = job.dataset, job.split
    order = np.random.default_rng(job.seed).permutation(len(split.test))
    half = len(order) // 2
    if half < 2:
        raise ProtocolError(f"the test split has {len(split.test)} cells; scoring generated cells needs at least 4")
    rows_ref, rows_other = np.sort(split.test[order[:half]]), np.sort(split.test[order[half:]])
    labelled = data.label_key is not None
    from ..genmetrics import reference_cells

    reference = reference_cells(data.adata, rows_ref, data.labels[rows_ref] if labelled else None, split.train)
    other = reference_cells(data.adata, rows_other, data.labels[rows_other] if labelled else None)
    start = time.perf_counter()
    generated = dispatch.output(model, reference, label_key="cell_type" if labelled else None, solution=other,
                                seed=job.seed)  # fmt: skip
    seconds = time.perf_counter() - start
    if list(map(str, generated.var_names)) != list(map(str, reference.var_names)):
        raise ProtocolError(f"model {job.model.name!r} generated cells over other genes than its training cells")
    return {
        "metrics": {spec.name: float(resolve(spec.function)(reference, generated)) for spec in plan.metrics},
        "tables": {spec.name: resolve(spec.function)(reference, generated) for spec in plan.tables},
        "predict_seconds": seconds,
        "cells_per_second": generated.n_obs / seconds if seconds > 0 else None,
        "generated_cells": int(generated.n_obs),
        # classifier-guided sampling (ACTIVA) reports the share of draws kept, per type
        "acceptance_rate": generated.uns.get("cellzoo", {}).get("acceptance_rate"),
        # types it could not produce within its bound, with the reason (scored as missing)
        "types_not_generated": generated.uns.get("cellzoo", {}).get("types_not_generated"),
    }


def upscaled_run(job: Job, dispatch: Any, model: Any, plan: Plan) -> dict[str, Any]:
    """Up-scale the down-sampled test images by every scale the metrics score; score against the originals."""
    hr = [job.dataset.images[i] for i in job.split.test]
    scales = sorted({int(s) for spec in plan.metrics + plan.tables for s in _metric_scales(spec.name)}) or [2, 4]
    start = time.perf_counter()
    sr = dispatch.output(model, hr, scales=scales)
    seconds = time.perf_counter() - start
    pixels = sum(im.shape[0] * im.shape[1] for images in sr.values() for im in images)
    return {
        "metrics": {spec.name: float(resolve(spec.function)(hr, sr)) for spec in plan.metrics},
        "tables": {spec.name: resolve(spec.function)(hr, sr) for spec in plan.tables},
        "predict_seconds": seconds,
        # output megapixels per second over every scale (the images' throughput, as SR papers time it)
        "megapixels_per_second": pixels / 1e6 / seconds if seconds > 0 else None,
    }


def _metric_scales(name: str) -> list[int]:
    """The scale a metric named ``…_x<scale>`` scores (none for other names)."""
    head, _, tail = name.rpartition("_x")
    return [int(tail)] if head and tail.isdigit() else []


def checked_markers(ranked: Any, model: str) -> dict[str, list[str]]:
    """A ranker's markers as ``{class: [gene, ...]}`` (at most :data:`MARKERS_PER_CLASS` each), or a clear error.

    A ranking that names a gene twice for one class is refused: precision@k would count the
    repeat only once, and a ranking is an order of distinct genes.
    """
    if not isinstance(ranked, Mapping):
        raise ProtocolError(
            f"model {model!r} returned {type(ranked).__name__} from markers(); it must return {{class: [gene, ...]}}"
        )
    out = {}
    for cls, genes in ranked.items():
        if isinstance(genes, str) or not isinstance(genes, Iterable):
            raise ProtocolError(f"model {model!r}: markers()[{cls!r}] is {genes!r}, not a list of gene names")
        names = [str(g) for g in genes]
        first: dict[str, int] = {}
        for place, gene in enumerate(names, start=1):
            if gene in first:
                raise ProtocolError(
                    f"model {model!r}: markers()[{str(cls)!r}] lists gene {gene!r} twice (at ranks {first[gene]} "
                    f"and {place}); a ranking must name each gene once"
                )
            first[gene] = place
        out[str(cls)] = names[:MARKERS_PER_CLASS]
    return out


def failure(exc: BaseException) -> dict[str, Any]:
    """The record of a run that raised; one refused before it started (too large for memory) is skipped."""
    return {
        "status": "skipped" if isinstance(exc, ResourceError) else "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
    }


# -- isolation -----------------------------------------------------------------------------------


def _child(job: Job, plan: Plan, result_file: Path, log_file: Path) -> NoReturn:
    """The body of the forked run process; it never returns."""
    code = 0
    try:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # its own process group, so a time-out also stops what it started
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        # fresh stream objects: a lock held by one of the parent's threads at fork time stays held
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        try:
            result = execute(job, plan)
        except BaseException as exc:  # the record says what went wrong; the harness goes on
            result = failure(exc)
            sys.stderr.write(result["traceback"])
        write_json(result_file, result)
    except BaseException:
        code = 70
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait(pid: int, timeout: float | None) -> tuple[int, Any, bool]:
    """Wait for the child: ``(wait status, resource usage, timed out)``; kill it at the deadline."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(pid)
    try:
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done == pid:
                return status, usage, False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                _kill_group(pid)
                _, status, usage = os.wait4(pid, 0)
                return status, usage, True
            pause = 1.0 if remaining is None else min(remaining, 1.0)
            if pidfd is not None:
                select.select([pidfd], [], [], pause)  # wakes the moment the child exits
            else:
                time.sleep(min(pause, 0.05))
    except BaseException:  # Ctrl-C or anything else: leave no orphan behind
        _kill_group(pid)
        with contextlib.suppress(ChildProcessError):
            os.wait4(pid, 0)
        raise
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _log_tail(log_file: Path) -> str | None:
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    return "\n".join(lines[-LOG_TAIL_LINES:]) or None


def run_isolated(job: Job, plan: Plan, timeout: float | None, logs_dir: Path) -> dict[str, Any]:
    """Run ``job`` in a forked child and return its result fields (status ok, failed, skipped or timeout)."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_file = logs_dir / job.path.with_suffix(".log").name
    result_file = job.path.with_name(f".{job.path.stem}.result.json")
    result_file.unlink(missing_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # else the child would inherit, and write again, the parent's buffered output
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(job, plan, result_file, log_file)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also from this side, so a kill right away cannot miss the group
    status, usage, timed_out = _wait(pid, timeout)
    wall = time.perf_counter() - start

    result: dict[str, Any]
    if timed_out:
        result = {
            "status": "timeout",
            "error": f"the run took longer than the {timeout:g} s time limit and was stopped (raise timeout = ... "
            "in the suite or --timeout to give it longer)",
        }
    elif result_file.is_file():
        result, problem = _read_result(result_file)
        if problem:
            result = {"status": "failed", "error": problem}
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "unknown signal"
        oom = " (a SIGKILL often means the system ran out of memory)" if sig == signal.SIGKILL else ""
        result = {"status": "failed", "error": f"the run process was killed by signal {sig} ({name}){oom}"}
    else:
        code = os.WEXITSTATUS(status)
        result = {"status": "failed", "error": f"the run process exited with code {code} before reporting a result"}
    result_file.unlink(missing_ok=True)

    result["wall_seconds"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024.0  # kilobytes on Linux
    if result["status"] != "ok":
        predictions_path(job.path).unlink(missing_ok=True)
        if "traceback" not in result:
            result["log_tail"] = _log_tail(log_file)
    if log_file.is_file() and log_file.stat().st_size == 0:
        log_file.unlink()
    result["log"] = str(log_file.relative_to(logs_dir.parent)) if log_file.is_file() else None
    return result


def _read_result(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {}, f"the run's result could not be read ({exc})"
    return result, None


# -- records -------------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def make_record(
    job: Job, plan: Plan, result: dict[str, Any], environment: dict[str, Any], started: str
) -> dict[str, Any]:
    model = job.model
    config = dataclasses.asdict(job.config) if dataclasses.is_dataclass(job.config) else job.config
    record = {
        "schema": SCHEMA,
        "key": job.key,
        "suite": plan.suite.name,
        "task": plan.task.name,
        "dataset": job.dataset.to_json(),
        "model": {
            "name": model.name,
            "role": model.role,
            "config": config,
            "config_hash": job.config_hash,
            "plugin": model.plugin,
            "distribution": model.distribution,
            "version": model.version,
        },
        "seed": job.seed,
        "fold": job.split.fold,
        "split": {"rule": plan.split.to_json(), **job.split.to_json()},
        "status": result.get("status", "failed"),
        "error": result.get("error"),
        "metrics": result.get("metrics", {}),
        "tables": result.get("tables", {}),
        "fit_seconds": result.get("fit_seconds"),
        "predict_seconds": result.get("predict_seconds"),
        "wall_seconds": result.get("wall_seconds"),
        "cells_per_second": result.get("cells_per_second"),
        "peak_rss_mb": result.get("peak_rss_mb"),
        "predictions": predictions_path(job.path).name if predictions_path(job.path).is_file() else None,
        "log": result.get("log"),
        "started_at": started,
        "finished_at": _now(),
        "environment": {**environment, "torch_threads": result.get("torch_threads")},
    }
    for extra in (
        "traceback", "log_tail", "markers", "generated_cells", "acceptance_rate", "types_not_generated",
        "megapixels_per_second",
    ):  # fmt: skip
        if result.get(extra):
            record[extra] = result[extra]
    return record


def _complete_metrics(record: dict[str, Any], path: Path, plan: Plan) -> bool | None:
    """Add metrics a reused record lacks (the suite gained a metric) from its stored predictions or markers.

    Returns whether the record changed, or None when it cannot be completed (an unsupervised
    run stores names, not clusters; a generate run stores no cells) and must run again.
    """
    if record["status"] != "ok":
        return False
    missing = [s for s in plan.metrics if s.name not in record["metrics"]]
    if not missing:
        return False
    if plan.task.scoring == "markers":
        truth = next(d.markers for d in plan.datasets if d.name == record["dataset"]["name"])
        for spec in missing:
            record["metrics"][spec.name] = float(resolve(spec.function)(truth, record.get("markers") or {}))
        return True
    if plan.task.scoring in ("unsupervised", "generate", "upscale"):  # nothing stored to score again from
        return None
    y_true, y_pred = load_predictions(predictions_path(path))
    for spec in missing:
        record["metrics"][spec.name] = float(resolve(spec.function)(y_true, y_pred))
    return True


def _warm_up(plan: Plan) -> None:
    """Import model and metric code once here, so forked runs do not each pay (or time) the imports."""
    for spec in plan.metrics + plan.tables:
        with contextlib.suppress(Exception):
            # two cells are enough to trigger a metric's lazy imports (scikit-learn)
            resolve(spec.function)(np.array(["a", "b"]), np.array(["a", "b"]))
    for model in plan.models:
        with contextlib.suppress(Exception):  # an import error is recorded by the run itself
            resolve(model.spec.builder)


def run_plan(
    plan: Plan,
    out: Path,
    *,
    environment: dict[str, Any],
    force: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
    console=None,
) -> RunOutcome:
    """Run (or reuse) every job of ``plan``, writing one record per run under ``out/runs``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(plan, runs_dir)
    outcome = RunOutcome(records=[])
    warmed = False
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task("benchmark", total=len(jobs))
        for job in jobs:
            bar.update(task, description=job.label)
            redo = False
            if job.path.exists():
                record, problem = read_record(job.path)
                if record is not None and record.get("key") != job.key:
                    record, problem = None, f"it holds the record of another run (key {record.get('key')!r})"
                if problem:
                    note = f"record {job.path} is damaged ({problem}); running it again"
                    outcome.notes.append(note)
                    bar.console.print(f"[yellow]warning:[/] {note}")
                    redo = True
                elif force or (retry_failed and record["status"] != "ok"):
                    redo = True
                else:
                    completed = _complete_metrics(record, job.path, plan)
                    if completed is None:
                        redo = True
                    else:
                        if completed:
                            write_json(job.path, record)
                        outcome.records.append(record)
                        outcome.counts["reused"] += 1
                        bar.advance(task)
                        continue
            if not warmed:
                _warm_up(plan)
                warmed = True
            started = _now()
            result = run_isolated(job, plan, plan.suite.timeout, out / "logs")
            record = make_record(job, plan, result, environment, started)
            write_json(job.path, record)
            outcome.records.append(record)
            outcome.counts["redone" if redo else "ran"] += 1
            bar.advance(task)
        bar.update(task, description=f"{len(jobs)} runs")
    return outcome


def write_suite_json(path: Path, plan: Plan) -> None:
    """The resolved suite beside the records: what was asked, and what it resolved to."""
    write_json(
        path,
        {
            "suite": plan.suite.to_json(),
            "task": plan.task.name,
            "models": [{"name": m.name, "role": m.role, "overrides": m.overrides} for m in plan.models],
            "metrics": [m.name for m in plan.metrics],
            "split": plan.split.to_json(),
            "datasets": [d.to_json() for d in plan.datasets],
        },
    )
