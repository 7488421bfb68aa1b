"""The ``cellzoo`` command line and ``python -m cellzoo.demo``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cellzoo
from cellzoo import demo
from cellzoo.cli import main
from cellzoo.cli.models import parse_settings
from cellzoo.errors import UnknownNameError
from cellzoo.hookspecs import hookimpl
from cellzoo.plugins import ZooPluginManager, use_plugin_manager
from cellzoo.specs import DatasetSpec, ModelSpec

# -- helpers -------------------------------------------------------------------------------------


def write_counts_h5ad(path: Path, n_cells: int = 40, n_genes: int = 12, seed: int = 0) -> Path:
    """Sparse raw counts with obs["cell_type"]; "T cell" is the most frequent type (half the cells)."""
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    labels = np.array(["T cell"] * (n_cells // 2) + ["B cell"] * (n_cells // 4) + ["NK"] * (n_cells - 3 * n_cells // 4))
    rng.shuffle(labels)
    counts = rng.poisson(2.0, size=(n_cells, n_genes)).astype(np.float32)
    counts[:, 0] += 1
    adata = anndata.AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame({"cell_type": pd.Categorical(labels)}, index=[f"c{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=[f"GENE{j}" for j in range(n_genes)]),
    )
    adata.write_h5ad(path)
    return path


def toy_dataset():
    import anndata

    return anndata.read_h5ad(write_counts_h5ad(Path(os.environ["CELLZOO_TEST_TMP"]) / "toyset.h5ad"))


def broken_loader():
    raise RuntimeError("the toy loader exploded")


@dataclass(frozen=True)
class ToyConfig:
    hidden: int = 128
    lr: float = 1e-3
    layers: tuple[int, ...] = (64, 32)
    tags: list[str] = field(default_factory=lambda: ["a", "b"])
    mode: str = field(default="fast", metadata={"help": "how hard to try"})


class ToyPlugin:
    """A third-party-like plugin: a model with a rich config, a dataset, and a dataset that fails."""

    @hookimpl
    def cellzoo_models(self):
        return [
            ModelSpec(
                "toy",
                task="annotate",
                builder="cellzoo.controls:Majority",
                config=ToyConfig,
                summary="A toy model for CLI tests.",
                role="method",
                paper="https://example.org/toy",
                authors=("Doe J",),
                citation="Doe J. Toy models for command lines. J Tests 1 (2024).",
            )
        ]

    @hookimpl
    def cellzoo_datasets(self):
        return [
            DatasetSpec("toyset", tasks=("annotate",), loader=toy_dataset, label_key="cell_type", summary="Toy."),
            DatasetSpec("broken_set", tasks=("annotate",), loader=broken_loader, summary="Always fails."),
        ]


class BrokenPlugin:
    @hookimpl
    def cellzoo_models(self):
        raise RuntimeError("boom: cannot declare models\nsecond line of the story")


class ClashingPlugin:
    @hookimpl
    def cellzoo_models(self):
        return [ModelSpec("majority", task="annotate", builder="cellzoo.controls:Majority", role="control")]


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """Only the built-in plugin, an empty cellzoo home and no extra registry folders."""
    monkeypatch.setenv("CELLZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CELLZOO_TEST_TMP", str(tmp_path))
    monkeypatch.delenv("CELLZOO_REGISTRY_PATH", raising=False)
    monkeypatch.delenv("CELLZOO_DEBUG", raising=False)
    pm = ZooPluginManager(discover=False)
    with use_plugin_manager(pm):
        yield pm


@pytest.fixture
def toy_zoo(zoo):
    zoo.register(ToyPlugin(), name="toy", distribution="cellzoo-toy", version="9.9.1")
    return zoo


def cli(*args: str, columns: int = 250):
    # wide enough that no table cell wraps, so the tests can search the text
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": str(columns)})


def one_error_line(result) -> str:
    """The single ``error: ...`` line the CLI prints for a failure (and no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def data(tmp_path) -> Path:
    return write_counts_h5ad(tmp_path / "data.h5ad")


@pytest.fixture
def trained(zoo, data, tmp_path) -> Path:
    out = tmp_path / "model"
    result = cli("train", "majority", "--dataset", data, "--label-key", "cell_type", "-o", out)
    assert result.exit_code == 0, result.output
    return out


# -- the group: help, version, errors ------------------------------------------------------------


def test_help_lists_every_command(zoo):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("list", "info", "plugins", "train", "predict", "verify"):
        assert f"  {command} " in result.output


def test_version_names_cellzoo_and_plugin_distributions(zoo, monkeypatch):
    from cellzoo.cli import _app

    monkeypatch.setattr(_app, "installed_plugin_distributions", lambda: [("scanna", "cellzoo-scanna", "1.2.3")])
    result = cli("--version")
    assert result.exit_code == 0
    assert result.output.startswith(f"cellzoo {cellzoo.__version__} ")
    assert "cellzoo-scanna  1.2.3" in result.output


def test_version_reads_real_entry_points():
    import importlib.metadata as md

    from cellzoo.cli._app import installed_plugin_distributions

    expected = {(ep.name, ep.dist.name) for ep in md.entry_points(group="cellzoo") if ep.dist is not None}
    assert {(name, dist) for name, dist, _ in installed_plugin_distributions()} == expected


def test_python_dash_m_cellzoo_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "cellzoo", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"cellzoo {cellzoo.__version__}")


def test_fast_commands_import_neither_torch_nor_scanpy():
    # runs against the real installation (every discovered plugin): listing must stay declarative
    script = textwrap.dedent(
        """
        import json, sys
        from cellzoo.cli import main
        report = []
        for args in (["--help"], ["list"], ["list", "--kind", "datasets"], ["list", "--pretrained"],
                     ["info", "majority"], ["info", "annotate"], ["plugins"], ["--version"]):
            try:
                main(args, prog_name="cellzoo")
            except SystemExit as exc:
                code = exc.code
            report.append({"args": args, "code": code,
                           "torch": "torch" in sys.modules, "scanpy": "scanpy" in sys.modules})
        print("REPORT " + json.dumps(report))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "CELLZOO_DEBUG"}
    env["COLUMNS"] = "200"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1].removeprefix("REPORT "))
    assert [r["code"] for r in report] == [0] * len(report), report
    offenders = [(r["args"], r["torch"], r["scanpy"]) for r in report if r["torch"] or r["scanpy"]]
    assert offenders == [], f"these commands imported torch or scanpy: {offenders}"


def test_cellzoo_error_is_one_red_line_and_exit_1(zoo):
    result = cli("info", "majorty")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "unknown model, dataset, metric or task 'majorty'" in line
    assert "Did you mean: majority?" in line


def test_unexpected_exception_names_its_type_and_suggests_debug(toy_zoo, tmp_path):
    result = cli("train", "majority", "--dataset", "broken_set", "--label-key", "x", "-o", tmp_path / "m")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line == "error: RuntimeError: the toy loader exploded (run with --debug for the traceback)"


def test_debug_flag_lets_the_traceback_through(toy_zoo, tmp_path):
    result = cli("--debug", "train", "majority", "--dataset", "broken_set", "--label-key", "x", "-o", tmp_path / "m")
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)
    result = cli("--debug", "info", "majorty")
    assert isinstance(result.exception, UnknownNameError)


def test_usage_errors_exit_2(zoo):
    assert cli("list", "--kind", "planets").exit_code == 2
    assert cli("no-such-command").exit_code == 2
    assert cli("list", "--pretrained", "--kind", "metrics").exit_code == 2


# -- list ----------------------------------------------------------------------------------------


def test_list_models_as_json(zoo):
    result = cli("list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == [
        "bicubic",
        "independent_genes",
        "majority",
        "nearest",
        "random_genes",
        "random_labels",
        "real_cells",
        "shuffled_genes",
        "true_labels",
        "true_markers",
    ]
    assert {r["role"] for r in rows} == {"control"}
    assert {r["plugin"] for r in rows} == {"cellzoo.builtin"}
    assert {r["task"] for r in rows} == {"annotate", "generate", "markers", "upscale"}


def test_list_table_shows_name_role_and_plugin(toy_zoo):
    result = cli("list")
    assert result.exit_code == 0
    toy_line = next(line for line in result.stdout.splitlines() if " toy " in line)
    assert "method" in toy_line and "annotate" in toy_line and "toy" in toy_line
    assert "A toy model for CLI tests." in result.stdout


def test_list_on_a_narrow_terminal_keeps_the_summaries(toy_zoo):
    result = cli("list", columns=80)
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "plugin" not in result.stdout.splitlines()[2]  # the header row: plugin column left out
    assert "A toy model for" in result.stdout


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["maj"], ["majority"]),
        (["*_labels"], ["random_labels", "true_labels"]),
        (["--task", "annotate", "true*"], ["true_labels"]),
        (["zzz"], []),
    ],
)
def test_list_pattern_and_task_filter(zoo, args, names):
    result = cli("list", *args, "--json")
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)] == names


def test_list_unknown_task_suggests_the_closest(zoo):
    result = cli("list", "--task", "anotate")
    assert result.exit_code == 1
    assert "Did you mean: annotate" in one_error_line(result)


@pytest.mark.parametrize(
    ("kind", "name", "field_name", "value"),
    [
        ("datasets", "h5ad", "input_state", "auto"),
        ("metrics", "accuracy", "higher_is_better", True),
        ("tasks", "annotate", "controls", ["majority", "random_labels", "true_labels"]),
    ],
)
def test_list_other_kinds(zoo, kind, name, field_name, value):
    by_option = json.loads(cli("list", "--kind", kind, "--json").stdout)
    by_word = json.loads(cli("list", kind, "--json").stdout)  # `cellzoo list datasets`
    assert by_option == by_word
    row = next(r for r in by_option if r["name"] == name)
    assert row[field_name] == value


def test_list_empty_result_says_so(zoo):
    result = cli("list", "nothing-like-this")
    assert result.exit_code == 0
    assert "No models matching 'nothing-like-this'" in result.stdout


# -- info ----------------------------------------------------------------------------------------


def test_info_model_json_has_spec_config_and_plugin(toy_zoo):
    result = cli("info", "toy", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["kind"] == "model"
    assert (info["plugin"], info["distribution"], info["version"]) == ("toy", "cellzoo-toy", "9.9.1")
    assert info["spec"]["builder"] == "cellzoo.controls:Majority"
    assert info["spec"]["config"].endswith(":ToyConfig")
    assert info["spec"]["citation"].startswith("Doe J.")
    config = {row["name"]: row for row in info["config"]}
    assert list(config) == ["hidden", "lr", "layers", "tags", "mode"]
    assert config["hidden"] == {"name": "hidden", "type": "int", "default": 128, "required": False}
    assert config["layers"]["default"] == [64, 32]
    assert config["tags"]["default"] == ["a", "b"]  # from the default factory
    assert config["mode"]["help"] == "how hard to try"
    assert info["pretrained"] == []


def test_info_model_table_shows_config_and_citation(toy_zoo):
    result = cli("info", "toy")
    assert result.exit_code == 0
    out = result.stdout
    for text in (
        "model toy",
        "hidden",
        "128",
        "[64, 32]",
        '"fast"',
        "how hard to try",
        "Doe J. Toy models",
        "cellzoo-toy 9.9.1",
    ):
        assert text in out, text


@pytest.mark.parametrize(("name", "kind"), [("annotate", "task"), ("accuracy", "metric"), ("h5ad", "dataset")])
def test_info_other_kinds(zoo, name, kind):
    info = json.loads(cli("info", name, "--json").stdout)
    assert info["kind"] == kind
    assert info["name"] == name
    if kind == "task":
        assert info["models"] == ["majority", "random_labels", "true_labels"]
    if kind == "metric":
        assert info["spec"]["function"] == "cellzoo.metrics:accuracy"


def test_info_kind_option_restricts_the_lookup(zoo):
    result = cli("info", "accuracy", "--kind", "model")
    assert result.exit_code == 1
    assert "unknown model 'accuracy'" in one_error_line(result)


# -- pretrained entries --------------------------------------------------------------------------

REGISTRY_ENTRY = """
schema_version = 1
name = "majority.tiny"
architecture = "majority"
task = "annotate"
summary = "The majority control fitted on a tiny file."
license = "mit"
citation = "none"
training_data = "40 synthetic cells"

[recipe]
dataset = "toyset"
label_key = "cell_type"

[hub]
repo_id = "cellzoo-test/majority.tiny"
"""


@pytest.fixture
def registry(zoo, tmp_path, monkeypatch):
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "majority.tiny.toml").write_text(REGISTRY_ENTRY)
    monkeypatch.setenv("CELLZOO_REGISTRY_PATH", str(folder))
    return folder


def test_list_pretrained_shows_registry_entries_and_cache_state(registry, trained, tmp_path):
    rows = {r["name"]: r for r in json.loads(cli("list", "--pretrained", "--json").stdout)}
    entry = rows["majority.tiny"]
    assert (entry["architecture"], entry["published"], entry["cached"]) == ("majority", False, False)
    import shutil

    shutil.copytree(trained, tmp_path / "home" / "models" / "majority.tiny")
    rows = {r["name"]: r for r in json.loads(cli("list", "--pretrained", "--json", "tiny").stdout)}
    assert list(rows) == ["majority.tiny"]
    assert rows["majority.tiny"]["cached"] is True


def test_info_pretrained_and_its_architecture(registry):
    info = json.loads(cli("info", "majority.tiny", "--json").stdout)
    assert info["kind"] == "pretrained"
    assert info["entry"]["recipe"]["dataset"] == "toyset"
    assert info["architecture_installed"] is True
    assert [row["name"] for row in info["config"]] == ["seed"]
    assert json.loads(cli("info", "majority", "--json").stdout)["pretrained"] == ["majority.tiny"]
    text = cli("info", "majority.tiny").stdout
    assert "cellzoo-test/majority.tiny (not published yet)" in text
    result = cli("info", "majority.small")
    assert result.exit_code == 1
    assert "majority.tiny" in one_error_line(result)


# -- plugins -------------------------------------------------------------------------------------


def test_plugins_lists_contributions_and_first_error_lines(toy_zoo):
    toy_zoo.register(BrokenPlugin(), name="broken", distribution=None)
    result = cli("plugins", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert list(rows) == ["cellzoo.builtin", "broken", "toy"]  # built-in first
    assert rows["toy"]["contributions"] == {"dataset": ["broken_set", "toyset"], "model": ["toy"]}
    assert rows["toy"]["version"] == "9.9.1"
    assert rows["toy"]["status"] == "ok"
    assert rows["broken"]["status"] == "error"
    assert rows["broken"]["errors"] == ["RuntimeError: boom: cannot declare models"]

    table = cli("plugins").stdout
    assert "boom: cannot declare models" in table
    assert "second line of the story" not in table
    assert "cellzoo --debug plugins" in table
    full = cli("--debug", "plugins").stdout
    assert "second line of the story" in full


def test_plugins_still_lists_everything_when_two_plugins_clash(zoo):
    zoo.register(ClashingPlugin(), name="clash", distribution=None)
    result = cli("plugins", "--json")
    assert result.exit_code == 1
    assert [r["name"] for r in json.loads(result.stdout)["plugins"]] == ["cellzoo.builtin", "clash"]
    assert "model name 'majority' is provided twice" in one_error_line(result)


# -- train ---------------------------------------------------------------------------------------


def test_parse_settings_reads_json_values_else_text():
    settings = parse_settings(None, None, ("a=1", "b=true", "c=[1, 2]", "d=hello", "e=", "f=x=y", "g=1e-3"))
    assert settings == {"a": 1, "b": True, "c": [1, 2], "d": "hello", "e": "", "f": "x=y", "g": 0.001}


def test_train_writes_an_artifact_and_says_how_to_use_it(trained, data):
    assert sorted(p.name for p in trained.iterdir()) == ["README.md", "config.json", "model.safetensors", "test"]
    config = json.loads((trained / "config.json").read_text())
    assert config["architecture"] == "majority"
    assert config["state"]["classes"] == ["B cell", "NK", "T cell"]
    assert config["recipe"]["label_key"] == "cell_type"
    assert len(config["recipe"]["data_hash"]) == 64
    result = cli("train", "majority", "--dataset", data, "--label-key", "cell_type", "-o", trained, "--overwrite")
    assert result.exit_code == 0
    assert f"saved to {trained}" in result.stdout
    assert f"cellzoo predict local-dir:{trained} {data} -o annotated.h5ad" in result.stdout
    assert "trained majority on 40 cells × 12 genes, 3 classes" in result.stdout


def test_train_applies_set_overrides(zoo, data, tmp_path):
    out = tmp_path / "m"
    result = cli("train", "majority", "-d", data, "-l", "cell_type", "--set", "seed=7", "-o", out)
    assert result.exit_code == 0, result.output
    assert cellzoo.load(f"local-dir:{out}").config.seed == 7


def test_train_rejects_bad_settings(zoo, data, tmp_path):
    result = cli("train", "majority", "-d", data, "-l", "cell_type", "--set", "sed=7", "-o", tmp_path / "m")
    assert result.exit_code == 1
    assert "did you mean 'seed'?" in one_error_line(result)
    assert not (tmp_path / "m").exists()
    assert cli("train", "majority", "-d", data, "--set", "seed", "-o", tmp_path / "m").exit_code == 2


def test_train_refuses_a_non_empty_output_directory(zoo, data, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("train", "majority", "-d", data, "-l", "cell_type", "-o", out)
    assert result.exit_code == 1
    assert "exists and is not empty; pass --overwrite" in one_error_line(result)
    assert (out / "keep.txt").read_text() == "mine"


def test_train_default_directory_and_dataset_label_key(toy_zoo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("train", "majority", "--dataset", "toyset")  # label key from the dataset spec
    assert result.exit_code == 0, result.output
    assert (tmp_path / "majority-toyset" / "config.json").is_file()
    data = write_counts_h5ad(tmp_path / "cells.h5ad")
    assert cli("train", "majority", "--dataset", data.name, "-l", "cell_type").exit_code == 0
    assert (tmp_path / "majority-cells" / "config.json").is_file()


def test_train_needs_a_label_key_for_a_plain_file(zoo, data, tmp_path):
    result = cli("train", "majority", "--dataset", data, "-o", tmp_path / "m")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "--label-key" in line and "cell_type" in line  # names the obs columns


def test_train_unknown_architecture_or_checkpoint_name(zoo, data, tmp_path):
    result = cli("train", "majorty", "-d", data, "-l", "cell_type", "-o", tmp_path / "m")
    assert "Did you mean: majority?" in one_error_line(result)
    result = cli("train", "majority.tiny", "-d", data, "-l", "cell_type", "-o", tmp_path / "m")
    assert "names a pretrained checkpoint" in one_error_line(result)


# -- predict -------------------------------------------------------------------------------------


def test_predict_writes_labels_and_probabilities(trained, data, tmp_path):
    import anndata

    out = tmp_path / "annotated.h5ad"
    result = cli("predict", f"local-dir:{trained}", data, "-o", out)
    assert result.exit_code == 0, result.output
    annotated = anndata.read_h5ad(out)
    original = anndata.read_h5ad(data)
    assert list(annotated.obs["cell_type"]) == list(original.obs["cell_type"])  # user columns untouched
    assert set(annotated.obs["cellzoo_majority_label"]) == {"T cell"}
    proba = annotated.obsm["cellzoo_majority_proba"]
    assert proba.shape == (40, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert "matched 12/12 model genes" in result.stdout
    counts_line = next(line for line in result.stdout.splitlines() if "T cell" in line)
    assert "40" in counts_line and "100.0%" in counts_line
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".annotated.h5ad")]  # no temp file left


def test_predict_never_overwrites_silently(trained, data, tmp_path):
    out = tmp_path / "annotated.h5ad"
    assert cli("predict", f"local-dir:{trained}", data, "-o", out).exit_code == 0
    before = out.read_bytes()

    result = cli("predict", f"local-dir:{trained}", data, "-o", out)  # OUT exists
    assert result.exit_code == 1
    assert "pass --overwrite" in one_error_line(result)

    result = cli("predict", f"local-dir:{trained}", out, "-o", tmp_path / "again.h5ad")  # columns exist
    assert result.exit_code == 1
    assert "obs['cellzoo_majority_label']" in one_error_line(result)
    assert not (tmp_path / "again.h5ad").exists()

    result = cli("predict", f"local-dir:{trained}", data, "-o", data)  # OUT is DATA
    assert result.exit_code == 1
    assert "is the input file" in one_error_line(result)
    assert out.read_bytes() == before


def test_predict_overwrite_replaces_the_input_in_place(trained, data):
    import anndata

    result = cli("predict", f"local-dir:{trained}", data, "-o", data, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "cellzoo_majority_label" in anndata.read_h5ad(data).obs
    result = cli("predict", f"local-dir:{trained}", data, "-o", data, "--overwrite")  # existing columns replaced
    assert result.exit_code == 0, result.output


def test_predict_min_overlap(trained, tmp_path):
    import anndata

    other = write_counts_h5ad(tmp_path / "other.h5ad")
    adata = anndata.read_h5ad(other)
    adata.var_names = [f"GENE{j}" if j < 3 else f"OTHER{j}" for j in range(adata.n_vars)]  # 3 of 12 genes shared
    adata.write_h5ad(other)
    # the majority control accepts any overlap by default
    assert cli("predict", f"local-dir:{trained}", other, "-o", tmp_path / "a.h5ad").exit_code == 0
    result = cli("predict", f"local-dir:{trained}", other, "-o", tmp_path / "b.h5ad", "--min-overlap", "0.5")
    assert result.exit_code == 1
    assert "3/12" in one_error_line(result) or "25" in one_error_line(result)
    assert not (tmp_path / "b.h5ad").exists()
    assert (
        cli("predict", f"local-dir:{trained}", other, "-o", tmp_path / "c.h5ad", "--min-overlap", "1.5").exit_code == 2
    )


def test_predict_model_name_must_be_a_source(trained, data, tmp_path):
    result = cli("predict", str(trained), data, "-o", tmp_path / "x.h5ad")
    assert result.exit_code == 1
    assert "local-dir:" in one_error_line(result)


def test_predict_a_cached_pretrained_name(registry, trained, data, tmp_path):
    import shutil

    shutil.copytree(trained, tmp_path / "home" / "models" / "majority.tiny")
    result = cli("predict", "majority.tiny", data, "-o", tmp_path / "x.h5ad")
    assert result.exit_code == 0, result.output


# -- verify --------------------------------------------------------------------------------------


def test_verify_passes_on_a_fresh_artifact(trained):
    result = cli("verify", f"local-dir:{trained}")
    assert result.exit_code == 0, result.output
    assert "proba" in result.stdout
    assert "PASS" in result.stdout
    report = json.loads(cli("verify", f"local-dir:{trained}", "--json").stdout)
    assert report["passed"] is True
    assert report["checks"][0]["name"] == "proba"
    assert report["checks"][0]["max_abs_diff"] == 0.0


def test_verify_fails_when_the_weights_no_longer_give_the_golden_outputs(trained):
    from safetensors.numpy import load_file, save_file

    from cellzoo.artifacts import sha256_file

    # a plausible but different model: same tensor names and shapes, another majority class
    weights = trained / "model.safetensors"
    tensors = load_file(weights)
    tensors["class_frequency"] = tensors["class_frequency"][::-1].copy()
    save_file(tensors, weights)
    config_path = trained / "config.json"
    config = json.loads(config_path.read_text())
    config["files"]["model.safetensors"] = {"sha256": sha256_file(weights), "size": weights.stat().st_size}
    config_path.write_text(json.dumps(config))

    result = cli("verify", f"local-dir:{trained}")
    assert result.exit_code == 1
    assert "FAIL" in result.stdout
    assert "does not reproduce its golden outputs (proba" in one_error_line(result)


def test_verify_reports_a_tampered_file_as_one_line(trained):
    weights = trained / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    result = cli("verify", f"local-dir:{trained}")
    assert result.exit_code == 1
    assert "model.safetensors" in one_error_line(result)


# -- demo ----------------------------------------------------------------------------------------


def test_demo_zoo_step_lists_the_installed_zoo(zoo, tmp_path, capsys):
    assert demo.main(["--steps", "zoo", "--report", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "The installed zoo" in out and "majority" in out


@pytest.mark.slow
def test_demo_runs_every_step(tmp_path, capsys):
    # the main job end to end: builds real checkpoints, benchmarks, exports (minutes)
    assert demo.main(["--report", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    for step in demo.STEPS:
        assert step.title in out
    for name in ("README.md", "bench/leaderboard.md", "onnx/model.onnx", "markers_heatmap.png", "throughput.md"):
        assert (tmp_path / "report" / name).is_file(), name


def test_demo_plan_adds_needed_steps_and_rejects_unknown_ones():
    assert [s.name for s in demo.plan(["run"])] == ["pull", "bench", "export", "run"]
    assert [s.name for s in demo.plan(["zoo"])] == ["zoo"]
    with pytest.raises(UnknownNameError, match="Did you mean: run"):
        demo.plan(["rnu"])


def test_demo_stops_at_a_failing_step(zoo, tmp_path):
    from rich.console import Console

    ran = []

    def ok(ctx):
        ran.append("ok")
        return "fine"

    def fail(ctx):
        raise ValueError("no good")

    def never(ctx):
        ran.append("never")
        return "unreachable"

    steps = [demo.Step("a", "A", ok), demo.Step("b", "B", fail), demo.Step("c", "C", never)]
    console = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    results = demo.run(steps=steps, report=tmp_path, console=console)
    console.file.close()
    assert [(r.name, r.ok) for r in results] == [("a", True), ("b", False)]
    assert results[1].summary == "ValueError: no good"
    assert ran == ["ok"]


def test_tables_print_brackets_in_data_literally():
    from rich.console import Console

    from cellzoo.cli.tables import label_counts_table, rows_table

    console = Console(record=True, width=120, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(
        rows_table([("name", "name"), ("summary", "summary")], [{"name": "x", "summary": "[bold]raw[/bold]"}])
    )
    console.print(label_counts_table(["[b]T[/b]", "[b]T[/b]", "NK"]))
    console.file.close()
    text = console.export_text()
    assert "[bold]raw[/bold]" in text
    assert "[b]T[/b]" in text
