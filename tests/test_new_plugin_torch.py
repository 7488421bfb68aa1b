"""``cellzoo new-plugin --torch``: the torch template trains, saves, loads, exports and keeps the contract as generated.

The generated package is imported from its ``src/`` folder and registered with a plugin manager
whose discovery is blocked (``zoo_pm``), so nothing is installed; the pip-installed journey of the
plain template is ``tests/test_new_plugin.py``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cellzoo.cli import main
from cellzoo.cli.newplugin import plugin_files
from cellzoo.testing import check_model

NAME = "torchnet"
PACKAGE = "cellzoo_torchnet"
EXPECTED_FILES = {
    "README.md",
    "pyproject.toml",
    f"src/{PACKAGE}/__init__.py",
    f"src/{PACKAGE}/config.py",
    f"src/{PACKAGE}/model.py",
    f"src/{PACKAGE}/network.py",
    f"src/{PACKAGE}/plugin.py",
    "tests/test_contract.py",
    "tests/test_export.py",
}


def _exec_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def generated(tmp_path, monkeypatch, zoo_pm):
    """The package ``cellzoo new-plugin torchnet --torch`` writes, importable and registered in ``zoo_pm``."""
    plugin = tmp_path / "cellzoo-torchnet"
    result = CliRunner().invoke(main, ["new-plugin", NAME, "--torch", "-o", str(plugin)])
    assert result.exit_code == 0, result.output
    assert "torch model 'torchnet'" in result.stdout
    monkeypatch.syspath_prepend(str(plugin / "src"))
    importlib.invalidate_caches()
    hooks = importlib.import_module(f"{PACKAGE}.plugin")
    zoo_pm.register(hooks, name=NAME, distribution="cellzoo-torchnet", version="0.1.0")
    yield plugin
    for module in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
        del sys.modules[module]


def test_the_torch_template_keeps_the_contract_and_exports(generated, tmp_path):
    assert {str(p.relative_to(generated)) for p in generated.rglob("*.py") if "__pycache__" not in p.parts} | {
        "README.md",
        "pyproject.toml",
    } == EXPECTED_FILES

    import cellzoo
    from cellzoo.training import TorchAnnotator, TrainingConfig

    # the config inherits the shared training recipe, the model the public torch base
    spec = cellzoo.model_spec(NAME)
    assert issubclass(spec.config, TrainingConfig) and spec.exportable
    training = {f.name for f in dataclasses.fields(TrainingConfig)}
    assert training <= {f.name for f in dataclasses.fields(spec.config)}
    model = cellzoo.create_model(NAME)
    assert isinstance(model, TorchAnnotator)
    with pytest.raises(cellzoo.errors.ConfigError, match=r"invalid torchnet configuration: .*patience=0"):
        cellzoo.create_model(NAME, patience=0, dropout=0.5)
    with pytest.raises(cellzoo.errors.ConfigError, match=r"dropout=1\.0 must be in \[0, 1\)"):
        cellzoo.create_model(NAME, dropout=1.0)

    # every check of the contract suite passes as generated
    results = check_model(NAME, tmp_path / "contract")
    assert set(results.values()) == {"passed"}, results

    # its own tests, as generated: the contract suite over the model, and the ONNX round trip
    contract = _exec_module(generated / "tests" / "test_contract.py", "generated_torch_test_contract")
    ids = [p.id for mark in contract.test_contract.pytestmark for p in mark.args[1]]
    assert f"{NAME}-round_trip" in ids and f"{NAME}-verify" in ids
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    export = _exec_module(generated / "tests" / "test_export.py", "generated_torch_test_export")
    export.test_export_round_trip(tmp_path / "export")
    assert (tmp_path / "export" / "onnx" / "model.onnx").is_file()


def test_listing_the_torch_template_does_not_import_torch(generated):
    code = (
        f"import sys; sys.path.insert(0, {str(generated / 'src')!r}); "
        f"import {PACKAGE}.plugin as h; specs = h.cellzoo_models(); specs[0].config(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_torch_template_is_complete_and_clean(tmp_path):
    files = plugin_files(NAME, torch=True)
    assert set(files) == EXPECTED_FILES
    assert all("{{" not in text for text in files.values())
    pyproject = tomllib.loads(files["pyproject.toml"])
    assert pyproject["project"]["entry-points"]["cellzoo"] == {NAME: f"{PACKAGE}.plugin"}
    assert any(dep.startswith("torch") for dep in pyproject["project"]["dependencies"])
    assert "class Torchnet(TorchAnnotator)" in files[f"src/{PACKAGE}/model.py"]
    assert "class TorchnetConfig(TrainingConfig)" in files[f"src/{PACKAGE}/config.py"]
    light = files[f"src/{PACKAGE}/config.py"] + files[f"src/{PACKAGE}/plugin.py"]
    assert not re.search(r"^\s*(import|from) torch", light, re.MULTILINE)
    # the plain template is unchanged by the torch one
    assert "class Torchnet(Annotator)" in plugin_files(NAME)[f"src/{PACKAGE}/model.py"]
    if importlib.util.find_spec("ruff") is None:
        return
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    select = "E,F,W,I,B,UP"
    for args in (["check", "--isolated", "--select", select, "--line-length", "120", "."],
                 ["format", "--isolated", "--check", "--line-length", "120", "."]):  # fmt: skip
        check = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=tmp_path, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
