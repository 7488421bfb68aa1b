"""Runs: shared splits, isolation (exceptions, crashes, time-outs), no label leakage, records, resume."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import anndata
import numpy as np
import pytest

from cellzoo import Annotation, Annotator, ModelSpec, hookimpl
from cellzoo.bench import run_suite
from cellzoo.bench.environment import environment
from cellzoo.bench.plan import build_plan
from cellzoo.bench.records import SCHEMA, load_predictions, read_record
from cellzoo.bench.runner import run_plan, unlabelled_cells
from cellzoo.bench.suite import suite_from_dict
from cellzoo.errors import ResourceError
from cellzoo.testing import tiny_annotate_adata

LABEL = "cell_type"


@dataclass(frozen=True)
class SpyConfig:
    seed: int = 0
    log_dir: str = ""
    truth: str = ""  # the .h5ad with every label, to check that none reaches predict()
    shrink: float = 0.0


class Centroid(Annotator):
    """Nearest centroid on whatever X holds: a real, fast method."""

    input_state = "any"
    min_gene_overlap = 0.0

    def __init__(self, config=None):
        super().__init__(config or SpyConfig())

    def _fit(self, X, y):
        self.centroids = np.stack([np.asarray(X[y == k].mean(axis=0)).ravel() for k in range(len(self.classes))])

    def _predict_proba(self, X):
        d = ((np.asarray(X)[:, None, :] - self.centroids[None]) ** 2).sum(-1)
        proba = np.zeros_like(d)
        proba[np.arange(d.shape[0]), d.argmin(1)] = 1.0
        return proba


class Spy(Centroid):
    """Writes down what it is given, and fails if predict() could see a test label."""

    def _log(self, phase: str, adata) -> None:
        entry = {"seed": self.config.seed, "cells": list(map(str, adata.obs_names)), "columns": list(adata.obs.columns)}
        path = Path(self.config.log_dir) / f"{self.name}-{phase}-{os.getpid()}.json"
        path.write_text(json.dumps(entry))

    def fit(self, adata, label_key):
        self._label_key = label_key
        self._train_cells = set(adata.obs_names)
        self._log("fit", adata)
        return super().fit(adata, label_key)

    def predict(self, adata, solution=None):
        assert solution is None, "a method was handed the solution"
        assert self._label_key not in adata.obs.columns, "the label column reached predict()"
        truth = anndata.read_h5ad(self.config.truth).obs[self._label_key].astype(str)
        truth = truth.loc[adata.obs_names].to_numpy()
        for column in adata.obs.columns:
            values = adata.obs[column].astype(str).to_numpy()
            codes = {}
            one_to_one = all(codes.setdefault(v, t) == t for v, t in zip(values, truth))
            assert not one_to_one or len(set(values)) != len(set(truth)), f"obs[{column!r}] encodes the test labels"
        assert not self._train_cells & set(adata.obs_names), "test cells were in the training data"
        self._log("predict", adata)
        return super().predict(adata)


class Crash(Centroid):
    def _fit(self, X, y):
        raise RuntimeError("boom: this model cannot fit")


class TooLarge(Centroid):
    def _fit(self, X, y):
        raise ResourceError("training too_large on 20 genes needs about 45.3 GB; train on fewer genes")


class Sleepy(Centroid):
    def _fit(self, X, y):
        time.sleep(60)


class Killed(Centroid):
    def _fit(self, X, y):
        os.kill(os.getpid(), signal.SIGKILL)


class WrongCount(Centroid):
    def predict(self, adata, solution=None):
        a = super().predict(adata)
        return Annotation(a.labels[:-1], a.classes, None)


class Alien(Centroid):
    def predict(self, adata, solution=None):
        a = super().predict(adata)
        labels = a.labels.copy()
        labels[0] = "Martian"
        return Annotation(labels, a.classes, None)


class RunnerPlugin:
    @hookimpl
    def cellzoo_models(self):
        def spec(name, cls):
            return ModelSpec(name, task="annotate", builder=cls, config=SpyConfig, summary=f"test model {name}")

        return [
            spec("spy_a", Spy),
            spec("spy_b", Spy),
            spec("crash", Crash),
            spec("too_large", TooLarge),
            spec("sleepy", Sleepy),
            spec("killed", Killed),
            spec("wrong_count", WrongCount),
            spec("alien", Alien),
        ]


@pytest.fixture
def pm(zoo_pm):
    zoo_pm.register(RunnerPlugin(), name="runner-test", distribution=None, version="9.9")
    return zoo_pm


@pytest.fixture
def data(tmp_path) -> Path:
    """90 cells × 20 genes, 3 classes, with a copy and a recoding of the labels and two harmless columns."""
    adata = tiny_annotate_adata(90, 20, 3)
    adata.obs["label_copy"] = adata.obs[LABEL].astype(str)
    adata.obs["label_code"] = adata.obs[LABEL].cat.codes.astype(int)
    adata.obs["batch"] = np.where(np.arange(90) % 2 == 0, "b1", "b2")
    adata.obs["n_counts"] = np.asarray(adata.X.sum(axis=1)).ravel()
    adata.uns[f"{LABEL}_colors"] = ["#ff0000", "#00ff00", "#0000ff"]
    path = tmp_path / "tiny.h5ad"
    adata.write_h5ad(path)
    return path


def make_suite(data: Path, tmp_path: Path, models, **extra):
    log_dir = tmp_path / "spy"
    log_dir.mkdir(exist_ok=True)
    spy = {"log_dir": str(log_dir), "truth": str(data)}
    config = {m: spy for m in models if m.startswith("spy")}
    for model, overrides in extra.pop("config", {}).items():
        config[model] = {**config.get(model, {}), **overrides}
    return suite_from_dict(
        {
            "name": "t",
            "task": "annotate",
            "datasets": [{"name": str(data), "label_key": LABEL}],
            "models": list(models),
            "seeds": extra.pop("seeds", [0]),
            "split": extra.pop("split", {"kind": "stratified_kfold", "folds": 2}),
            "config": config,
            **extra,
        }
    )


def run(suite, out: Path, **kwargs):
    plan = build_plan(suite)
    return run_plan(plan, out, environment=environment(plan.plugins), progress=False, **kwargs)


def spy_logs(tmp_path: Path, model: str, phase: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "spy").glob(f"{model}-{phase}-*.json"))]


def test_splits_are_shared_and_no_label_reaches_a_model(pm, data, tmp_path):
    outcome = run(make_suite(data, tmp_path, ["spy_a", "spy_b"], seeds=[0, 1]), tmp_path / "out")
    records = outcome.records
    assert len(records) == 2 * 2 * 5  # seeds × folds × (2 spies + 3 controls)
    assert {r["status"] for r in records} == {"ok"}, [r["error"] for r in records if r["status"] != "ok"]

    # one split per (seed, fold), the same for every model
    by_fold = {}
    for r in records:
        by_fold.setdefault((r["seed"], r["fold"]), set()).add(r["split"]["hash"])
    assert all(len(hashes) == 1 for hashes in by_fold.values())
    assert len({h for hashes in by_fold.values() for h in hashes}) == 4

    a, b = spy_logs(tmp_path, "spy_a", "predict"), spy_logs(tmp_path, "spy_b", "predict")
    assert sorted(map(str, a)) == sorted(map(str, b))  # both spies saw exactly the same test cells
    fit = spy_logs(tmp_path, "spy_a", "fit")
    for seed in (0, 1):
        tests = [set(e["cells"]) for e in a if e["seed"] == seed]
        assert len(tests) == 2 and not tests[0] & tests[1] and len(tests[0] | tests[1]) == 90
        trains = [set(e["cells"]) for e in fit if e["seed"] == seed]
        assert sorted(map(sorted, trains)) == sorted(map(sorted, tests))  # 2 folds: train of one = test of other
    # the label column and its copies are gone from the test cells; other columns stay
    assert {tuple(e["columns"]) for e in a} == {("batch", "n_counts")}
    assert {tuple(e["columns"]) for e in fit} == {(LABEL, "label_copy", "label_code", "batch", "n_counts")}
    # the run's seed reached the model's config
    assert sorted({e["seed"] for e in a}) == [0, 1]
    assert {r["model"]["config"]["seed"] for r in records if r["seed"] == 1} == {1}


def test_the_spy_would_catch_a_leak(pm, data, tmp_path):
    from cellzoo import create_model

    adata = anndata.read_h5ad(data)
    spy = create_model("spy_a", log_dir=str(tmp_path), truth=str(data))
    spy.fit(adata[:60].copy(), LABEL)
    with pytest.raises(AssertionError, match="label column reached predict"):
        spy.predict(adata[60:].copy())
    query = adata[60:].copy()
    del query.obs[LABEL]
    with pytest.raises(AssertionError, match="obs\\['label_copy'\\] encodes the test labels"):
        spy.predict(query)
    blinded = unlabelled_cells(adata, np.arange(60, 90), ("cell_type", "label_copy", "label_code"))
    assert len(spy.predict(blinded).labels) == 30
    assert f"{LABEL}_colors" not in blinded.uns


def test_failures_are_recorded_and_the_rest_go_on(pm, data, tmp_path):
    models = ["crash", "sleepy", "killed", "wrong_count", "alien", "spy_a"]
    suite = make_suite(data, tmp_path, models, split={"kind": "holdout", "test_fraction": 0.5}, timeout=1.0)
    start = time.perf_counter()
    outcome = run(suite, tmp_path / "out")
    assert time.perf_counter() - start < 30
    by_model = {r["model"]["name"]: r for r in outcome.records}
    assert len(by_model) == 9
    for name in ("spy_a", "majority", "random_labels", "true_labels"):
        assert by_model[name]["status"] == "ok", by_model[name]["error"]

    crash = by_model["crash"]
    assert crash["status"] == "failed"
    assert crash["error"] == "RuntimeError: boom: this model cannot fit"
    assert "in _fit" in crash["traceback"]
    assert crash["predictions"] is None and crash["metrics"] == {}

    sleepy = by_model["sleepy"]
    assert sleepy["status"] == "timeout"
    assert "longer than the 1 s time limit" in sleepy["error"]
    assert 1.0 <= sleepy["wall_seconds"] < 10

    killed = by_model["killed"]
    assert killed["status"] == "failed"
    assert "killed by signal 9 (SIGKILL)" in killed["error"]

    assert by_model["wrong_count"]["status"] == "failed"
    assert "returned 44 predictions for 45 test cells" in by_model["wrong_count"]["error"]
    assert by_model["alien"]["status"] == "failed"
    assert "predicted label(s) 'Martian' that are not among the 3 classes" in by_model["alien"]["error"]
    # the positive control predicts from the solution and is exempt from the training-class check
    assert by_model["true_labels"]["metrics"]["accuracy"] == 1.0

    # retry_failed redoes exactly the 5 failed runs
    again = run(suite, tmp_path / "out", retry_failed=True)
    assert again.counts == {"reused": 4, "redone": 5}


def test_a_run_too_large_for_memory_is_skipped_with_its_reason(pm, data, tmp_path):
    from rich.console import Console

    console = Console(file=open(os.devnull, "w"), width=120)  # noqa: SIM115
    result = run_suite(make_suite(data, tmp_path, ["too_large", "spy_a"]), tmp_path / "out", console=console)
    records = [r for r in result.records if r["model"]["name"] == "too_large"]
    assert len(records) == 2 and {r["status"] for r in records} == {"skipped"}
    assert records[0]["error"].startswith("ResourceError: training too_large on 20 genes needs about 45.3 GB")
    row = result.leaderboard.model("too_large")
    assert (row["skipped"], row["failed"], row["score"]) == (2, 0, 0.0)
    markdown = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "0 ok, 2 skipped" in markdown and "| tiny | too_large | 0 | 0 | skipped | ResourceError" in markdown
    assert "skipped" in (tmp_path / "out" / "leaderboard.csv").read_text().splitlines()[0]


def test_a_record_holds_what_the_issue_asks_for(pm, data, tmp_path):
    outcome = run(make_suite(data, tmp_path, ["spy_a"]), tmp_path / "out")
    record = next(r for r in outcome.records if r["model"]["name"] == "spy_a" and r["fold"] == 1)
    assert record["schema"] == SCHEMA and len(record["key"]) == 24
    assert record["task"] == "annotate"
    assert record["dataset"]["name"] == "tiny" and len(record["dataset"]["hash"]) == 64
    assert record["dataset"]["label_key"] == LABEL
    assert record["model"]["name"] == "spy_a" and len(record["model"]["config_hash"]) == 64
    assert (record["model"]["plugin"], record["model"]["version"]) == ("runner-test", "9.9")
    assert (record["seed"], record["fold"]) == (0, 1)
    assert record["split"]["rule"] == {"kind": "stratified_kfold", "folds": 2}
    assert record["split"]["n_train"] + record["split"]["n_test"] == 90
    assert set(record["metrics"]) == {"accuracy", "f1_macro", "f1_weighted"}
    assert 0.5 < record["metrics"]["accuracy"] <= 1.0  # the centroid model learns the marker genes
    assert set(record["tables"]["f1_per_class"]) == {"B cell", "CD4+ T cell", "CD14+ Monocyte"}
    assert record["fit_seconds"] > 0 and record["predict_seconds"] > 0
    assert record["peak_rss_mb"] > 10
    assert record["status"] == "ok" and record["error"] is None
    env = record["environment"]
    assert env["cellzoo"] and env["python"] and env["packages"]["numpy"] == np.__version__
    assert "runner-test" in env["plugins"] and env["cpu"] and env["threads"]["cpu_count"] >= 1
    assert "git" in env and "gpu" in env

    # predictions beside the record, as labels, in test-cell order
    files = sorted((tmp_path / "out" / "runs").glob("tiny__spy_a__s0f1__*"))
    assert [f.suffix for f in files] == [".json", ".npz"]
    true, pred = load_predictions(files[1])
    assert len(true) == record["split"]["n_test"]
    assert np.mean(true == pred) == pytest.approx(record["metrics"]["accuracy"])
    assert read_record(files[0]) == (record, None)


def test_rerunning_resumes_redoes_damaged_records_and_honours_force(pm, data, tmp_path):
    out = tmp_path / "out"
    suite = make_suite(data, tmp_path, ["spy_a"])
    first = run(suite, out)
    assert first.counts == {"ran": 8}
    files = sorted((out / "runs").glob("*.json"))
    assert len(files) == 8
    stamps = {f: f.stat().st_mtime_ns for f in files}

    # nothing changed: every record is reused, none rewritten
    second = run(suite, out)
    assert second.counts == {"reused": 8}
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    assert [r["key"] for r in second.records] == [r["key"] for r in first.records]

    # an interrupted benchmark: the missing record is made, the rest reused
    files[0].unlink()
    assert run(suite, out).counts == {"ran": 1, "reused": 7}

    # a damaged record is reported and redone
    files[1].write_text('{"schema": "cellzoo.bench.run/1", "status": "ok", ')
    damaged = run(suite, out)
    assert damaged.counts == {"redone": 1, "reused": 7}
    assert len(damaged.notes) == 1 and files[1].name in damaged.notes[0] and "not readable JSON" in damaged.notes[0]
    assert read_record(files[1])[1] is None

    # a changed config is another run; the other models' records still count
    changed = make_suite(data, tmp_path, ["spy_a"], config={"spy_a": {"shrink": 0.5}})
    assert run(changed, out).counts == {"ran": 2, "reused": 6}

    assert run(suite, out, force=True).counts == {"redone": 8}


def test_a_metric_added_to_the_suite_is_computed_from_stored_predictions(pm, data, tmp_path):
    out = tmp_path / "out"
    run(make_suite(data, tmp_path, ["spy_a"], metrics=["accuracy"]), out)
    fresh = run(make_suite(data, tmp_path, ["spy_a"], metrics=["accuracy", "f1_macro"]), tmp_path / "fresh")
    reused = run(make_suite(data, tmp_path, ["spy_a"], metrics=["accuracy", "f1_macro"]), out)
    assert reused.counts == {"reused": 8}
    assert [r["metrics"] for r in reused.records] == [r["metrics"] for r in fresh.records]
    on_disk, _ = read_record(next((out / "runs").glob("tiny__spy_a__s0f0__*.json")))
    assert set(on_disk["metrics"]) == {"accuracy", "f1_macro"}


def test_run_suite_writes_the_leaderboard(pm, data, tmp_path):
    from rich.console import Console

    console = Console(file=open(os.devnull, "w"), width=120)  # noqa: SIM115
    result = run_suite(make_suite(data, tmp_path, ["spy_a", "crash"]), tmp_path / "out", console=console)
    assert result.counts["ran"] == 10
    board = result.leaderboard
    assert board.best("tiny") == "spy_a"
    assert board.model("crash")["score"] == 0.0 and board.model("crash")["failed"] == 2
    assert board.model("true_labels")["score"] == 1.0
    assert 0.5 < board.model("spy_a")["score"] <= 1.0
    out = tmp_path / "out"
    names = {p.name for p in out.iterdir()}
    for expected in (
        "leaderboard.md",
        "leaderboard.csv",
        "leaderboard.json",
        "suite.json",
        "bar_accuracy.png",
        "bar_f1_macro.png",
        "bar_f1_weighted.png",
        "confusion_tiny.png",
        "time_vs_score.png",
        "runs",
    ):
        assert expected in names
    assert (out / "confusion_tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "leaderboard.md").read_text()
    # the centroid model is perfect on these data: it ties with the positive control, listed first
    assert markdown.index("| 1 | spy_a | 1.000 |") < markdown.index("| 1 | true_labels (control) | 1.000 |")
    assert "model 'crash' failed 2 of 2 runs on 'tiny' (first error: RuntimeError: boom" in markdown
    assert "## Environment" in markdown and "![confusion matrix of spy_a on tiny](confusion_tiny.png)" in markdown
    document = json.loads((out / "leaderboard.json").read_text())
    assert [(o["model"], o["rank"]) for o in document["overall"]][:2] == [("spy_a", 1), ("true_labels", 1)]
    assert len(document["runs"]) == 10 and document["suite"]["name"] == "t"
    assert (out / "logs").is_dir() and any((out / "logs").iterdir())  # the crash's traceback
