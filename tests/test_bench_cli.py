"""``cellzoo bench``: from a suite file, from options alone, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cellzoo.cli import main
from cellzoo.cli.bench import suite_from_options
from cellzoo.testing import tiny_annotate_adata


@pytest.fixture
def h5ad(tmp_path) -> Path:
    path = tmp_path / "tiny.h5ad"
    tiny_annotate_adata(60, 12, 3).write_h5ad(path)
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_bench_runs_a_suite_file_and_resumes(zoo_pm, h5ad, tmp_path):
    suite = tmp_path / "controls.toml"
    suite.write_text(
        'task = "annotate"\nmodels = ["majority"]\nmetrics = ["accuracy"]\n[split]\nfolds = 2\n'
        '[[datasets]]\nname = "tiny.h5ad"\nlabel_key = "cell_type"\n'
    )
    out = tmp_path / "out"
    result = invoke("bench", str(suite), "-o", str(out), "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert "6 runs (6 run, 0 reused)" in result.stdout
    # the progress bar and the summary table go to stderr
    assert "controls — annotate" in result.stderr and "true_labels (control)" in result.stderr
    board = json.loads((out / "leaderboard.json").read_text())
    assert [m["name"] for m in board["metrics"]] == ["accuracy"]
    assert board["suite"]["timeout"] == 60
    assert {o["model"] for o in board["overall"]} == {"majority", "random_labels", "true_labels"}

    again = invoke("bench", str(suite), "-o", str(out), "--no-progress")
    assert again.exit_code == 0 and "6 runs (0 run, 6 reused)" in again.stdout and again.stderr == ""
    forced = invoke("bench", str(suite), "-o", str(out), "--no-progress", "--force")
    assert "6 runs (6 run, 0 reused)" in forced.stdout


def test_bench_without_a_suite_file_writes_to_bench_out(zoo_pm, h5ad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(
        "bench",
        "--task",
        "annotate",
        "--dataset",
        str(h5ad),
        "--label-key",
        "cell_type",
        "--models",
        "*",
        "--seeds",
        "0,1",
        "--folds",
        "2",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "bench-out" / "annotate-tiny"
    assert "12 runs" in result.stdout and str(Path("bench-out") / "annotate-tiny" / "leaderboard.md") in result.stdout
    suite = json.loads((out / "suite.json").read_text())
    assert suite["suite"]["seeds"] == [0, 1] and suite["split"] == {"kind": "stratified_kfold", "folds": 2}
    assert len(list((out / "runs").glob("*.json"))) == 12


def test_options_describe_the_same_suite_a_file_would():
    suite = suite_from_options(
        "annotate", ("pbmc68k_reduced", "x/data.h5ad"), None, "a, b*", "accuracy", "0,2", "holdout", 5, 0.3, None
    )
    assert suite == {
        "name": "annotate-pbmc68k_reduced-data",
        "task": "annotate",
        "datasets": [{"name": "pbmc68k_reduced"}, {"name": "x/data.h5ad"}],
        "models": ["a", "b*"],
        "seeds": [0, 2],
        "split": {"kind": "holdout", "test_fraction": 0.3},
        "metrics": ["accuracy"],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a suite file (cellzoo bench SUITE.toml) or --task and --dataset"),
        (["--task", "annotate"], "give a suite file"),
        (["SUITE", "--models", "x"], "--models describe a suite, but a suite file was given too"),
        (["--task", "annotate", "--dataset", "DATA", "--models", "nosuchmodel"], "unknown model 'nosuchmodel'"),
        (["--task", "annotate", "--dataset", "DATA", "--seeds", "0,x"], "--seeds must be comma-separated integers"),
        (["--task", "annotate", "--dataset", "DATA", "--label-key", "kind"], "has no obs column 'kind'"),
    ],
)
def test_bench_errors_are_one_line_and_nothing_runs(zoo_pm, h5ad, tmp_path, args, message):
    suite = tmp_path / "s.toml"
    suite.write_text('task = "annotate"\n[[datasets]]\nname = "tiny.h5ad"\n')
    args = [{"SUITE": str(suite), "DATA": str(h5ad)}.get(a, a) for a in args]
    if "--dataset" in args and "--label-key" not in args:
        args += ["--label-key", "cell_type"]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["bench", *args, "-o", str(out)])
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (out / "runs").exists()
