"""``cellzoo bench`` on a label column with one class is refused before any run; too-small classes are warned of."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cellzoo import TaskSpec
from cellzoo.bench.plan import SmallClassWarning, _check_classes, build_plan
from cellzoo.bench.suite import SplitRule, suite_from_dict
from cellzoo.cli import main
from cellzoo.errors import BenchmarkError
from cellzoo.testing import tiny_annotate_adata


def _write(tmp_path: Path, name: str, adata) -> Path:
    path = tmp_path / name
    adata.write_h5ad(path)
    return path


@pytest.fixture
def one_class(tmp_path) -> Path:
    adata = tiny_annotate_adata(30, 12, 3)
    adata.obs["tissue"] = "blood"  # a column with a single value
    return _write(tmp_path, "one.h5ad", adata)


def test_bench_refuses_a_label_column_with_one_class_before_any_run(zoo_pm, one_class, tmp_path):
    out = tmp_path / "out"
    args = ["bench", "--task", "annotate", "--dataset", str(one_class), "--label-key", "tissue", "--folds", "2"]
    result = CliRunner().invoke(main, [*args, "--models", "majority", "-o", str(out), "--no-progress"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "dataset 'one'" in lines[0] and "obs['tissue']" in lines[0] and "'blood' (all 30 cells)" in lines[0]
    assert "at least two classes" in lines[0] and "--label-key" in lines[0]
    assert not out.exists()  # no run, no leaderboard


def test_a_suite_file_with_a_one_class_dataset_is_refused(zoo_pm, one_class):
    suite = suite_from_dict(
        {"task": "annotate", "models": ["majority"], "datasets": [{"name": str(one_class), "label_key": "tissue"}]}
    )
    with pytest.raises(BenchmarkError, match=r"obs\['tissue'\] holds one class only, 'blood'"):
        build_plan(suite)


def test_tasks_not_scored_against_the_labels_take_one_class():
    labels = tiny_annotate_adata(12, 6, 1).obs["cell_type"].astype(str).to_numpy()
    generate = TaskSpec("gen_test", ("fit", "sample"), ("m",), scoring="generate")
    _check_classes("one", "cell_type", labels, SplitRule(kind="holdout"), generate)  # one cell type to generate: fine
    with pytest.raises(BenchmarkError, match="holds one class only"):
        _check_classes(
            "one",
            "cell_type",
            labels,
            SplitRule(kind="all"),
            TaskSpec("markers_test", ("fit",), ("m",), scoring="markers"),
        )


def test_a_class_with_fewer_cells_than_folds_is_named_in_a_warning(zoo_pm, tmp_path):
    adata = tiny_annotate_adata(40, 12, 2)
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(str)
    adata.obs.iloc[:2, adata.obs.columns.get_loc("cell_type")] = "rare"
    path = _write(tmp_path, "rare.h5ad", adata)
    suite = suite_from_dict(
        {
            "task": "annotate",
            "models": ["majority"],
            "datasets": [{"name": str(path), "label_key": "cell_type"}],
            "split": {"kind": "stratified_kfold", "folds": 3},
        }
    )
    with pytest.warns(SmallClassWarning, match=r"dataset 'rare'.*fewer cells than the 3 folds: 'rare' \(2 cells\)"):
        plan = build_plan(suite)
    assert plan.datasets[0].name == "rare"
