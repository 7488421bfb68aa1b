"""The harness beyond annotate: unsupervised tasks (fit sees no labels), the markers task, 'all' splits, aliases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cellzoo import Annotator, MetricSpec, ModelSpec, TaskSpec, ZooModel, hookimpl
from cellzoo.bench import run_suite
from cellzoo.bench.environment import environment
from cellzoo.bench.plan import build_plan
from cellzoo.bench.runner import run_plan
from cellzoo.bench.suite import SplitRule, suite_from_dict
from cellzoo.data.splits import make_splits
from cellzoo.errors import BenchmarkError
from cellzoo.testing import tiny_annotate_adata

LABEL = "cell_type"


@dataclass(frozen=True)
class Cfg:
    seed: int = 0


class Clusters(ZooModel):
    """k-means-like: one cluster per distinct nearest centre of the first cells; names clusters 'c<k>'."""

    task = "cluster_test"

    def __init__(self, config=None):
        super().__init__(config or Cfg())
        self.centres = None

    @property
    def is_fitted(self):
        return self.centres is not None

    def fit(self, adata):
        assert LABEL not in adata.obs.columns, "an unsupervised model was given the labels"
        assert "label_copy" not in adata.obs.columns, "a copy of the labels reached an unsupervised fit"
        X = np.asarray(adata.X.todense() if hasattr(adata.X, "todense") else adata.X)
        self.n_fit = adata.n_obs
        # three rough centres: the means of the cells by their argmax gene block (no labels needed)
        self.centres = np.stack([X[i::3].mean(0) for i in range(3)])
        return self

    def predict(self, adata):
        X = np.asarray(adata.X.todense() if hasattr(adata.X, "todense") else adata.X)
        k = ((X[:, None, :] - self.centres[None]) ** 2).sum(-1).argmin(1)
        return np.array([f"cluster {i}" for i in k], dtype=object)


class Ranker(Annotator):
    """Ranks genes by class-mean minus overall mean (a real, if crude, marker ranker)."""

    input_state = "any"
    min_gene_overlap = 0.0

    def __init__(self, config=None):
        super().__init__(config or Cfg())

    def _fit(self, X, y):
        X = np.asarray(X.todense() if hasattr(X, "todense") else X)
        self.diff = np.stack([X[y == k].mean(0) - X.mean(0) for k in range(len(self.classes))])

    def _predict_proba(self, X):
        return np.full((X.shape[0], len(self.classes)), 1 / len(self.classes))

    def markers(self, adata, label_key, n=25):
        genes = np.asarray(self.manifest.genes)
        return {c: list(genes[np.argsort(-d)[:n]]) for c, d in zip(self.classes, self.diff)}


def _agreement(y_true, prediction) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.asarray(y_true).astype(str), np.asarray(prediction).astype(str)))


class TasksPlugin:
    @hookimpl
    def cellzoo_tasks(self):
        return [TaskSpec("cluster_test", ("fit", "predict"), ("ari_test",), split="all", scoring="unsupervised")]

    @hookimpl
    def cellzoo_metrics(self):
        return [MetricSpec("ari_test", "cluster_test", _agreement, range=(-0.5, 1.0))]

    @hookimpl
    def cellzoo_models(self):
        return [
            ModelSpec("clusters", task="cluster_test", builder=Clusters, config=Cfg, summary="test clusters"),
            ModelSpec("ranker", task="markers", builder=Ranker, config=Cfg, summary="test ranker"),
        ]


@pytest.fixture
def pm(zoo_pm):
    zoo_pm.register(TasksPlugin(), name="tasks-test", distribution=None, version="0.0")
    return zoo_pm


def _data(tmp_path: Path, markers: bool = True) -> Path:
    adata = tiny_annotate_adata(60, 30, 3)
    adata.obs["label_copy"] = adata.obs[LABEL].astype(str)
    if not markers:
        del adata.uns["cellzoo"]["markers"]  # tiny_annotate_adata declares its planted markers
    path = tmp_path / ("tiny.h5ad" if markers else "plain.h5ad")
    adata.write_h5ad(path)
    return path


def _run(suite, out):
    plan = build_plan(suite)
    return run_plan(plan, out, environment=environment(plan.plugins), progress=False)


def test_all_split_is_one_fold_of_every_cell():
    (split,) = make_splits(np.array(list("aabbbc")), SplitRule(kind="all"), seed=3)
    assert split.train.tolist() == split.test.tolist() == list(range(6))
    assert split.n_folds == 1 and not split.train_only_classes and not split.test_only_classes


def test_all_split_is_refused_for_a_supervised_task(pm, tmp_path):
    suite = suite_from_dict(
        {"task": "annotate", "datasets": [{"name": str(_data(tmp_path)), "label_key": LABEL}], "split": {"kind": "all"}}
    )
    with pytest.raises(BenchmarkError, match="trained on"):
        build_plan(suite)


def test_unsupervised_fit_sees_no_labels_and_names_are_free(pm, tmp_path):
    suite = suite_from_dict(
        {
            "task": "cluster_test",
            "models": ["clusters"],
            "datasets": [{"name": str(_data(tmp_path)), "label_key": LABEL}],
        }
    )
    outcome = _run(suite, tmp_path / "out")
    (record,) = outcome.records
    assert record["status"] == "ok", record.get("traceback")
    assert record["split"]["n_train"] == record["split"]["n_test"] == 60
    assert -0.5 <= record["metrics"]["ari_test"] <= 1.0
    again = _run(suite, tmp_path / "out")
    assert again.counts["reused"] == 1


def test_markers_task_scores_rankings_against_declared_markers(pm, tmp_path):
    suite = suite_from_dict(
        {"task": "markers", "models": ["ranker"], "datasets": [{"name": str(_data(tmp_path)), "label_key": LABEL}]}
    )
    outcome = _run(suite, tmp_path / "out")
    by_model = {r["model"]["name"]: r for r in outcome.records}
    assert set(by_model) == {"ranker", "random_genes", "true_markers"}
    assert all(r["status"] == "ok" for r in by_model.values()), [r.get("traceback") for r in by_model.values()]
    # the ranker computes the truth's own definition: perfect at 5 of 10
    assert by_model["ranker"]["metrics"]["marker_precision_at_10"] == pytest.approx(0.5)
    assert by_model["true_markers"]["metrics"]["marker_precision_at_10"] == pytest.approx(0.5)
    assert by_model["random_genes"]["metrics"]["marker_precision_at_10"] < 0.5
    assert {len(g) for g in by_model["ranker"]["markers"].values()} == {30}  # all 30 genes, kept in the record
    assert by_model["ranker"]["predictions"] is None


def test_markers_suite_needs_declared_markers(pm, tmp_path):
    suite = suite_from_dict(
        {"task": "markers", "datasets": [{"name": str(_data(tmp_path, markers=False)), "label_key": LABEL}]}
    )
    with pytest.raises(BenchmarkError, match=r'uns\["cellzoo"\]'):
        build_plan(suite)


def test_aliases_name_one_dataset_at_several_settings(pm, tmp_path):
    path = str(_data(tmp_path))
    entries = [{"name": path, "label_key": LABEL, "alias": "one"}, {"name": path, "label_key": LABEL, "alias": "two"}]
    suite = suite_from_dict({"task": "markers", "models": ["ranker"], "datasets": entries})
    board = run_suite(suite, tmp_path / "out", progress=False).leaderboard
    assert board.datasets == ["one", "two"]
    with pytest.raises(BenchmarkError, match="alias"):
        suite_from_dict({"task": "markers", "datasets": [{"name": path}, {"name": path}]})


def test_cli_without_a_suite_uses_the_task_s_split(pm, tmp_path):
    import json

    from click.testing import CliRunner

    from cellzoo.cli import main

    data = _data(tmp_path)
    args = ["bench", "--task", "markers", "--dataset", str(data), "--label-key", LABEL, "--models", "ranker"]
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out"), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "suite.json").read_text())["split"] == {"kind": "all"}
