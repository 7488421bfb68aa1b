"""Suites: TOML parsing, and every check that must fail before the first run starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cellzoo import Annotator, DatasetSpec, MetricSpec, ModelSpec, TaskSpec, hookimpl
from cellzoo.bench.plan import build_plan, label_columns
from cellzoo.bench.suite import DatasetEntry, SplitRule, load_suite, suite_from_dict
from cellzoo.errors import BenchmarkError
from cellzoo.testing import tiny_annotate_adata


@dataclass(frozen=True)
class CentroidConfig:
    seed: int = 0
    shrink: float = 0.0


class Centroid(Annotator):
    input_state = "any"
    min_gene_overlap = 0.0

    def _fit(self, X, y):
        self.centroids = np.stack([np.asarray(X[y == k].mean(axis=0)).ravel() for k in range(len(self.classes))])

    def _predict_proba(self, X):
        d = ((np.asarray(X)[:, None, :] - self.centroids[None]) ** 2).sum(-1)
        proba = np.zeros_like(d)
        proba[np.arange(d.shape[0]), d.argmin(1)] = 1.0
        return proba


def tiny_loader():
    return tiny_annotate_adata(60, 12, 3)


class SuitePlugin:
    @hookimpl
    def cellzoo_models(self):
        return [
            ModelSpec("centroid", task="annotate", builder=Centroid, config=CentroidConfig, summary="test"),
            ModelSpec("centroid_b", task="annotate", builder=Centroid, config=CentroidConfig, summary="test"),
            ModelSpec("painter", task="paint", builder=Centroid, config=CentroidConfig, summary="other task"),
        ]

    @hookimpl
    def cellzoo_tasks(self):
        return [TaskSpec("paint", protocol=("fit",), metrics=("brushiness",), controls=())]

    @hookimpl
    def cellzoo_metrics(self):
        return [MetricSpec("brushiness", task="paint", function=lambda y, p: 0.0)]

    @hookimpl
    def cellzoo_datasets(self):
        return [DatasetSpec("tinyset", tasks=("annotate",), loader=tiny_loader, label_key="cell_type")]


@pytest.fixture
def pm(zoo_pm):
    zoo_pm.register(SuitePlugin(), name="suite-test")
    return zoo_pm


@pytest.fixture
def h5ad(tmp_path) -> Path:
    adata = tiny_annotate_adata(60, 12, 3)
    adata.obs["label_copy"] = adata.obs["cell_type"].astype(str)
    adata.obs["label_code"] = adata.obs["cell_type"].cat.codes
    adata.obs["batch"] = np.where(np.arange(60) < 30, "b1", "b2")
    path = tmp_path / "tiny.h5ad"
    adata.write_h5ad(path)
    return path


def suite(**overrides):
    base = {"task": "annotate", "datasets": [{"name": "tinyset"}], "models": ["centroid"], "split": {"folds": 2}}
    base.update(overrides)
    return suite_from_dict(base)


SUITE_TOML = """
name = "demo"
task = "annotate"
models = ["centroid*"]
metrics = ["accuracy", "f1_macro"]
seeds = [0, 1]
timeout = 30

[split]
kind = "holdout"
test_fraction = 0.25

[[datasets]]
name = "data/tiny.h5ad"
label_key = "cell_type"

[[datasets]]
name = "tinyset"

[config.centroid]
shrink = 0.5
"""


def test_a_toml_suite_parses(tmp_path):
    path = tmp_path / "suites" / "demo.toml"
    path.parent.mkdir()
    path.write_text(SUITE_TOML)
    s = load_suite(path)
    assert s.name == "demo" and s.task == "annotate" and s.source == str(path)
    assert s.models == ("centroid*",)
    assert s.metrics == ("accuracy", "f1_macro")
    assert s.seeds == (0, 1) and s.timeout == 30
    assert s.split == SplitRule(kind="holdout", test_fraction=0.25)
    # a relative path is relative to the suite file, not to the working directory
    assert s.datasets[0] == DatasetEntry(str(tmp_path / "suites" / "data" / "tiny.h5ad"), label_key="cell_type")
    assert s.datasets[0].display_name == "tiny"
    assert s.datasets[1].display_name == "tinyset" and not s.datasets[1].is_path
    assert s.config == {"centroid": {"shrink": 0.5}}
    assert s.to_json()["split"] == {"kind": "holdout", "test_fraction": 0.25}


def test_models_may_be_a_table_of_overrides():
    s = suite_from_dict(
        {"task": "annotate", "datasets": ["tinyset"], "models": {"centroid": {"shrink": 0.1}, "centroid_b": {}}}
    )
    assert s.models == ("centroid", "centroid_b")
    assert s.config == {"centroid": {"shrink": 0.1}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"datasets": ["tinyset"]}, "needs task"),
        ({"task": "annotate"}, "at least one"),
        ({"task": "annotate", "datasets": ["x"], "model": ["a"]}, "unknown key 'model' \\(did you mean 'models'\\?\\)"),
        ({"task": "annotate", "datasets": [{"name": "x", "labels": "y"}]}, "did you mean 'label_key'"),
        ({"task": "annotate", "datasets": ["x"], "seeds": [0, 0]}, "repeat"),
        ({"task": "annotate", "datasets": ["x"], "seeds": ["a"]}, "seeds must be"),
        ({"task": "annotate", "datasets": ["x"], "timeout": -1}, "timeout must be a positive"),
        ({"task": "annotate", "datasets": ["x", "x"]}, "more than once"),
        ({"task": "annotate", "datasets": ["x"], "config": {"m": {"seed": 3}}}, "sets 'seed'"),
        (
            {"task": "annotate", "datasets": ["x"], "split": {"kind": "stratified_kfold", "fold": 3}},
            "did you mean 'folds'",
        ),
    ],
)
def test_malformed_suites_are_refused(data, message):
    with pytest.raises(BenchmarkError, match=message):
        suite_from_dict(data)


def test_bad_toml_is_a_benchmark_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("task = ")
    with pytest.raises(BenchmarkError, match="not valid TOML"):
        load_suite(path)
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_suite(tmp_path / "missing.toml")


def test_plan_resolves_globs_controls_metrics_and_configs(pm, h5ad):
    plan = build_plan(
        suite(
            models=["*"],
            datasets=[{"name": str(h5ad), "label_key": "cell_type"}, {"name": "tinyset"}],
            config={"centroid_b": {"shrink": 0.25}},
        )
    )
    # "*": every method of the task (not the other task's model), then the task's controls
    assert [m.name for m in plan.models] == ["centroid", "centroid_b", "majority", "random_labels", "true_labels"]
    assert plan.controls == ("majority", "random_labels", "true_labels")
    assert [m.name for m in plan.metrics] == ["accuracy", "f1_macro", "f1_weighted"]
    assert [t.name for t in plan.tables] == ["f1_per_class"]
    b = plan.models[1]
    assert b.config_for(3) == CentroidConfig(seed=3, shrink=0.25)  # the run's seed is set in the config
    assert b.distribution is None and b.plugin == "suite-test"
    assert [d.name for d in plan.datasets] == ["tiny", "tinyset"]
    assert plan.datasets[1].label_key == "cell_type"  # the dataset spec's default
    assert len(plan.datasets[0].hash) == 64
    assert plan.datasets[0].label_columns == ("cell_type", "label_copy", "label_code")


def test_explicit_controls_are_not_run_twice(pm):
    plan = build_plan(suite(models=["majority", "centroid", "centroid"]))
    assert [m.name for m in plan.models] == ["centroid", "majority", "random_labels", "true_labels"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "painting"}, "unknown task 'painting'. Did you mean paint"),
        (
            {"models": ["centriod"]},
            "unknown model 'centriod'. Did you mean centroid.*Installed annotate models: centroid, ",
        ),
        ({"models": ["painter"]}, "'painter' is a 'paint' model, not a 'annotate' one"),
        ({"models": ["xgb*"]}, "pattern 'xgb\\*' matches no installed annotate model"),
        ({"metrics": ["accuracy", "acc"]}, "unknown metric 'acc'.*Installed annotate metrics: accuracy, f1_macro"),
        ({"metrics": ["brushiness"]}, "'brushiness' is defined for task 'paint', not 'annotate'"),
        ({"metrics": ["f1_per_class"]}, "is a table, not a number"),
        ({"datasets": [{"name": "pbmc_giant"}]}, "unknown dataset 'pbmc_giant'.*Installed annotate datasets: tinyset"),
        ({"config": {"centroid": {"shrinkage": 1}}}, "no config key 'shrinkage' \\(did you mean 'shrink'\\?\\)"),
        ({"config": {"centroid_b": {"shrink": 1}}}, "overrides for \\['centroid_b'\\], which the suite does not run"),
        ({"split": {"kind": "by_batch"}}, "by_batch split needs a batch column"),
    ],
)
def test_suites_that_cannot_run_fail_before_any_run(pm, changes, message):
    with pytest.raises(BenchmarkError, match=message):
        build_plan(suite(**changes))


def test_a_dataset_without_the_label_key_is_refused(pm, h5ad):
    with pytest.raises(BenchmarkError, match=r"has no obs column 'celltype'.*obs columns: cell_type, label_copy"):
        build_plan(suite(datasets=[{"name": str(h5ad), "label_key": "celltype"}]))
    with pytest.raises(BenchmarkError, match="no default label key"):
        build_plan(suite(datasets=[{"name": str(h5ad)}]))
    with pytest.raises(BenchmarkError, match="has no obs column 'donor'"):
        build_plan(
            suite(
                datasets=[{"name": str(h5ad), "label_key": "cell_type"}],
                split={"kind": "by_batch", "batch_key": "donor"},
            )
        )


def test_label_columns_finds_copies_and_recodings_but_not_correlates():
    import pandas as pd

    labels = np.array(["a", "a", "b", "c"])
    obs = pd.DataFrame(
        {
            "y": labels,
            "copy": labels,
            "code": [7, 7, 1, 2],
            "cluster": ["x", "x", "x", "z"],  # merges two classes: not a copy
            "cell_id": ["1", "2", "3", "4"],  # unique per cell: not a copy
        }
    )
    assert label_columns(obs, "y", labels) == ("y", "copy", "code")
