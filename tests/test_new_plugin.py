"""``cellzoo new-plugin``: the bring-your-own-method journey, from an empty folder to a leaderboard.

create the package → pip install it (editable, into a throw-away prefix) → cellzoo discovers it
through its entry point → it passes the model contract → ``cellzoo bench --models mymethod,majority``
ranks it against the controls. No change to the core, no suite file.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import site
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import cellzoo
from cellzoo.cli import main
from cellzoo.cli.newplugin import plugin_files, template_values
from cellzoo.plugins import ZooPluginManager, use_plugin_manager
from cellzoo.testing import check_model, tiny_annotate_adata

EXPECTED_FILES = {
    "README.md",
    "pyproject.toml",
    "src/cellzoo_mymethod/__init__.py",
    "src/cellzoo_mymethod/config.py",
    "src/cellzoo_mymethod/model.py",
    "src/cellzoo_mymethod/plugin.py",
    "tests/test_contract.py",
}


def pip_install_editable(plugin: Path, prefix: Path) -> Path:
    """``pip install -e`` without network (no dependencies, no build isolation); returns its site-packages."""
    for needed in ("pip", "setuptools"):  # found, not imported: setuptools patches distutils on import
        if importlib.util.find_spec(needed) is None:
            pytest.skip(f"{needed} is not installed, so the plugin cannot be pip-installed here")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--prefix",
            str(prefix),
            "-e",
            str(plugin),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The plugin made by ``cellzoo new-plugin mymethod``, pip-installed and importable in this process."""
    plugin = tmp_path / "cellzoo-mymethod"
    result = CliRunner().invoke(main, ["new-plugin", "mymethod", "-o", str(plugin)])
    assert result.exit_code == 0, result.output
    assert "pip install -e" in result.stdout
    site_dir = pip_install_editable(plugin, tmp_path / "prefix")
    for name in ("path", "meta_path", "path_hooks"):
        monkeypatch.setattr(sys, name, list(getattr(sys, name)))  # undone after the test
    site.addsitedir(str(site_dir))  # runs the editable install's .pth, as a new interpreter would
    importlib.invalidate_caches()
    yield plugin
    for module in [m for m in sys.modules if m.split(".")[0] == "cellzoo_mymethod"]:
        del sys.modules[module]


def test_the_journey_from_new_plugin_to_leaderboard(installed, tmp_path):
    assert {str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file()} >= EXPECTED_FILES

    with use_plugin_manager(ZooPluginManager(discover=True)) as pm:
        # discovered through the entry point its pyproject declares
        assert "mymethod" in cellzoo.list_models(task="annotate")
        info = next(p for p in pm.plugins() if p.name == "mymethod")
        assert (info.distribution, info.version, info.errors) == ("cellzoo-mymethod", "0.1.0", [])
        assert cellzoo.model_spec("mymethod").role == "method"

        # the contract its tests/test_contract.py runs: every check passes
        assert set(check_model("mymethod", tmp_path / "contract").values()) == {"passed"}
        spec = importlib.util.spec_from_file_location(
            "generated_test_contract", installed / "tests" / "test_contract.py"
        )
        generated = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(generated)
        ids = [p.id for mark in generated.test_contract.pytestmark for p in mark.args[1]]
        assert "mymethod-round_trip" in ids and "mymethod-learns" in ids

        # the benchmark, with no suite file and no edit to the core
        data = tmp_path / "cells.h5ad"
        tiny_annotate_adata(90, 20, 3).write_h5ad(data)
        out = tmp_path / "bench"
        args = ["bench", "--task", "annotate", "--dataset", str(data), "--label-key", "cell_type"]
        result = CliRunner().invoke(
            main, [*args, "--models", "mymethod,majority", "--folds", "2", "-o", str(out), "--no-progress"]
        )
        assert result.exit_code == 0, result.output

    board = json.loads((out / "leaderboard.json").read_text())
    mine = next(o for o in board["overall"] if o["model"] == "mymethod")
    assert (mine["role"], mine["ok"], mine["failed"]) == ("method", 2, 0)
    assert mine["score"] > 0.5  # nearest centroid finds the marker genes; the controls set 0 and 1
    assert {o["model"] for o in board["overall"]} == {"mymethod", "majority", "random_labels", "true_labels"}
    assert "| mymethod |" in (out / "leaderboard.md").read_text()
    record = json.loads(next((out / "runs").glob("cells__mymethod__s0f0__*.json")).read_text())
    assert record["model"]["distribution"] == "cellzoo-mymethod" and record["model"]["version"] == "0.1.0"
    assert record["environment"]["plugins"]["cellzoo-mymethod"] == "0.1.0"


def test_the_generated_package_is_complete_and_clean(tmp_path):
    files = plugin_files("mymethod")
    assert set(files) == EXPECTED_FILES
    assert all("{{" not in text for text in files.values())
    pyproject = tomllib.loads(files["pyproject.toml"])
    assert pyproject["project"]["name"] == "cellzoo-mymethod"
    assert pyproject["project"]["entry-points"]["cellzoo"] == {"mymethod": "cellzoo_mymethod.plugin"}
    assert any(dep.startswith("cellzoo>=") for dep in pyproject["project"]["dependencies"])
    assert (
        "cellzoo bench --task annotate --dataset pbmc68k_reduced --models mymethod,logreg,linear_svm"
        in files["README.md"]
    )
    assert 'contract_suite(["mymethod"])' in files["tests/test_contract.py"]
    assert "class Mymethod(Annotator)" in files["src/cellzoo_mymethod/model.py"]
    for relative, text in files.items():
        if relative.endswith(".py"):
            compile(text, relative, "exec")
    ruff = importlib.util.find_spec("ruff")
    if ruff is not None:
        for relative, text in files.items():
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        check = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--isolated",
                "--select",
                "E,F,W,I,B,UP",
                "--line-length",
                "120",
                ".",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout


def test_names_become_package_distribution_and_class():
    assert template_values("my-method") | {"cellzoo_version": "x"} == {
        "name": "my-method",
        "package": "cellzoo_my_method",
        "distribution": "cellzoo-my-method",
        "class_name": "MyMethod",
        "cellzoo_version": "x",
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("MyMethod", "must start with a lowercase letter"),
        ("2fast", "must start with a lowercase letter"),
        ("my.method", "must start with a lowercase letter"),
        ("majority", "a model named 'majority' is already installed"),
    ],
)
def test_bad_names_are_refused(zoo_pm, tmp_path, name, message):
    result = CliRunner().invoke(main, ["new-plugin", name, "-o", str(tmp_path / "p")])
    assert result.exit_code != 0 and message in result.stderr
    assert not (tmp_path / "p").exists()


def test_an_existing_folder_is_not_overwritten(zoo_pm, tmp_path):
    target = tmp_path / "p"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    result = CliRunner().invoke(main, ["new-plugin", "mymethod", "-o", str(target)])
    assert result.exit_code != 0 and "not empty" in result.stderr
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
