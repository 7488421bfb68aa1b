"""A third-party package (tests/example_plugin) joins the zoo without any change to the core."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

import cellzoo
from cellzoo.errors import ConfigError
from cellzoo.plugins import ZooPluginManager, use_plugin_manager
from cellzoo.testing import check_model

EXAMPLE_PLUGIN_DIR = Path(__file__).parent / "example_plugin"
PYPROJECT = tomllib.loads((EXAMPLE_PLUGIN_DIR / "pyproject.toml").read_text())


def test_it_is_listed_with_its_distribution(example_pm):
    assert "example_centroid" in cellzoo.list_models(task="annotate")
    assert cellzoo.list_datasets("example_*") == ["example_blobs"]
    assert cellzoo.list_metrics("example_*", task="annotate") == ["example_balanced_accuracy"]
    contribution = example_pm.catalog()["model"]["example_centroid"]
    assert (contribution.plugin, contribution.distribution) == ("example", "cellzoo-example")
    info = {p.name: p for p in example_pm.plugins()}["example"]
    assert info.ok and info.contributions == {
        "model": ["example_centroid"],
        "dataset": ["example_blobs"],
        "metric": ["example_balanced_accuracy"],
    }


def test_its_dataset_model_and_metric_work_together(example_pm, tmp_path):
    adata = cellzoo.get_dataset("example_blobs")
    assert adata.shape == (90, 40) and adata.obs["cell_type"].nunique() == 3
    train, test = adata[::2].copy(), adata[1::2].copy()
    model = cellzoo.create_model("example_centroid").fit(train, "cell_type")
    prediction = model.predict(test)
    truth = test.obs["cell_type"].astype(str).to_numpy()
    balanced = cellzoo.get_metric("example_balanced_accuracy")(truth, prediction)
    accuracy = cellzoo.get_metric("accuracy")(truth, prediction)
    assert balanced >= 0.9 and accuracy >= 0.9  # marker genes make the blobs easy
    path = cellzoo.save(model, tmp_path / "centroid", metrics={"example_blobs": {"accuracy": accuracy}})
    loaded = cellzoo.load(f"local-dir:{path}")
    np.testing.assert_array_equal(loaded.predict(test).proba, prediction.proba)
    assert cellzoo.verify(path).passed
    assert "| example_blobs | accuracy |" in (path / "README.md").read_text()


def test_its_config_is_checked_by_the_core(example_pm):
    assert cellzoo.create_model("example_centroid", metric="euclidean").config.metric == "euclidean"
    with pytest.raises(ConfigError, match="metric must be one of"):
        cellzoo.create_model("example_centroid", metric="manhattan")
    with pytest.raises(ConfigError, match="did you mean 'temperature'"):
        cellzoo.create_model("example_centroid", temprature=1.0)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_it_keeps_the_model_contract(example_pm, tmp_path, metric):
    results = check_model("example_centroid", tmp_path, overrides={"metric": metric})
    assert results == {check: "passed" for check in results}  # every check ran, none skipped


def test_the_example_package_declares_the_entry_point_it_is_tested_with(example_plugin):
    assert PYPROJECT["project"]["name"] == "cellzoo-example"
    assert PYPROJECT["project"]["entry-points"]["cellzoo"] == {"example": "cellzoo_example"}
    assert example_plugin.__version__ == PYPROJECT["project"]["version"]


def test_discovery_through_an_installed_distribution(tmp_path, monkeypatch):
    """What ``pip install cellzoo-example`` leaves behind: a dist-info with the entry point."""
    version = PYPROJECT["project"]["version"]
    info = tmp_path / f"cellzoo_example-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: cellzoo-example\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[cellzoo]\nexample = cellzoo_example\n")
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    monkeypatch.syspath_prepend(str(tmp_path))

    pm = ZooPluginManager(discover=True)
    contribution = pm.catalog()["model"]["example_centroid"]
    assert (contribution.distribution, contribution.version) == ("cellzoo-example", version)
    assert {p.name: p for p in pm.plugins()}["example"].ok
    with use_plugin_manager(pm):
        assert "example_blobs" in cellzoo.list_datasets()
        assert cellzoo.create_model("example_centroid").spec.name == "example_centroid"


def test_its_hooks_import_neither_the_model_nor_heavy_libraries():
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(EXAMPLE_PLUGIN_DIR)!r})
        import cellzoo_example
        names = [s.name for hook in ("cellzoo_models", "cellzoo_datasets", "cellzoo_metrics")
                 for s in getattr(cellzoo_example, hook)()]
        loaded = [m for m in ("cellzoo_example.model", "cellzoo_example.data", "anndata", "torch", "scanpy")
                  if m in sys.modules]
        print(json.dumps({{"names": names, "loaded": loaded}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"names": ["example_centroid", "example_blobs", "example_balanced_accuracy"], "loaded": []}
