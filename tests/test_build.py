"""Building a checkpoint from its registry recipe: determinism, splits, recorded metrics, reuse."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import cellzoo.build as build_module
from cellzoo import Annotator, ModelSpec, check_state_keys, hookimpl
from cellzoo.artifacts import load_artifact, read_config
from cellzoo.build import build, recipe_config, split_indices
from cellzoo.cache import read_origin
from cellzoo.errors import ConfigError
from cellzoo.pretrained import Split, pretrained_entry

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("hub_server")  # test helpers and fixtures, loaded as a plugin below
from hub_server import write_registry_entry  # noqa: E402

pytest_plugins = ["hub_server"]  # the loopback Hub and the isolated-zoo fixtures


@dataclass(frozen=True)
class ProjectionConfig:
    seed: int = 0
    n_components: int = 4
    epochs: int = 1
    widths: tuple[int, ...] = (4,)


class ProjectionCentroids(Annotator):
    """Nearest centroid in a random projection: its tensors depend on the seed, as a network's do."""

    input_state = "any"
    min_gene_overlap = 0.0

    def _fit(self, X, y):
        X = np.asarray(X.todense() if hasattr(X, "todense") else X, dtype=np.float32)
        rng = np.random.default_rng(self.config.seed)
        self.W = rng.normal(size=(X.shape[1], self.config.n_components)).astype(np.float32)
        Z = X @ self.W
        # jitter from numpy's global generator: only reproducible because the build seeds it
        jitter = np.random.normal(scale=1e-3, size=(len(self.classes), self.config.n_components))
        self.centroids = (np.stack([Z[y == c].mean(0) for c in range(len(self.classes))]) + jitter).astype(np.float32)

    def _predict_proba(self, X):
        X = np.asarray(X.todense() if hasattr(X, "todense") else X, dtype=np.float32)
        d = ((X @ self.W)[:, None, :] - self.centroids[None]) ** 2
        logits = -d.sum(-1)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def state_tensors(self):
        return {"W": self.W, "centroids": self.centroids}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]):
        n_genes = len(self.manifest.genes)
        expected = {
            "W": np.zeros((n_genes, self.config.n_components)),
            "centroids": np.zeros((len(self.classes), self.config.n_components)),
        }
        check_state_keys(expected, tensors, self.name)
        self.W, self.centroids = np.asarray(tensors["W"]), np.asarray(tensors["centroids"])


class ProjectionPlugin:
    @hookimpl
    def cellzoo_models(self):
        return [ModelSpec("projection", task="annotate", builder=ProjectionCentroids, config=ProjectionConfig)]


@pytest.fixture
def projection(zoo):
    zoo.pm.register(ProjectionPlugin(), name="test-projection")
    write_registry_entry(zoo.registry, "projection.test", dataset=str(zoo.data), epochs=2)
    return zoo


def contents(path: Path) -> dict[str, object]:
    """The tensors of the weights and the golden set, and config.json without its file hashes.

    (Not the raw bytes: safetensors writes a header's metadata keys in hash-map order.)
    """
    from safetensors.numpy import load_file

    config = json.loads((path / "config.json").read_text())
    config.pop("files")
    out: dict[str, object] = {"config.json": config}
    for rel in ("model.safetensors", "test/io.safetensors"):
        out |= {f"{rel}:{k}": v.tolist() for k, v in sorted(load_file(path / rel).items())}
    return out


# -- determinism ----------------------------------------------------------------------------------


def test_same_recipe_same_seed_gives_identical_files(projection):
    first = contents(build("projection.test", progress=False))
    again = contents(build("projection.test", force=True, progress=False))
    assert again == first  # every tensor, golden output and config value

    write_registry_entry(projection.registry, "projection.test", dataset=str(projection.data), epochs=2, seed=1)
    other = build("projection.test", progress=False)
    assert contents(other)["model.safetensors:W"] != first["model.safetensors:W"]
    model = load_artifact(other)
    assert model.config.seed == 1 and model.config.epochs == 2  # recipe.seed / epochs reach the config


# -- the split ----------------------------------------------------------------------------------------


def test_holdout_split_is_stratified_seeded_and_keeps_every_class_in_training():
    labels = np.array(["a"] * 20 + ["b"] * 7 + ["c"] * 1)
    split = Split("holdout", 0.25, seed=3)
    train, test = split_indices(labels, split)
    assert np.intersect1d(train, test).size == 0 and np.union1d(train, test).tolist() == list(range(28))
    assert (labels[test] == "a").sum() == 5 and (labels[test] == "b").sum() == 2
    assert "c" in labels[train] and "c" not in labels[test]  # a singleton class is never held out
    again = split_indices(labels, split)
    assert all(np.array_equal(x, y) for x, y in zip(again, (train, test)))
    assert not np.array_equal(split_indices(labels, Split("holdout", 0.25, seed=4))[1], test)
    everything, none = split_indices(labels, Split())
    assert everything.size == 28 and none.size == 0


# -- what a build records ----------------------------------------------------------------------------


def test_build_records_the_recipe_and_measures_the_held_out_cells(zoo):
    import anndata as ad

    path = build("majority.test", progress=False)
    config = read_config(path)
    recipe = config["recipe"]
    assert recipe["name"] == "majority.test" and recipe["command"] == "cellzoo build majority.test"
    assert recipe["n_train"] + recipe["n_test"] == 60 and recipe["n_test"] > 0
    assert recipe["split"] == {"kind": "holdout", "seed": 0, "test_fraction": 0.25}
    assert len(recipe["dataset_sha256"]) == 64
    assert read_origin(path)["source"] == "build"

    # the stored accuracy is what the saved model scores on the cells it never saw
    data = ad.read_h5ad(zoo.data)
    labels = data.obs["cell_type"].astype(str).to_numpy()
    _, test = split_indices(labels, pretrained_entry("majority.test").recipe.split)
    assert test.size == recipe["n_test"]
    predicted = load_artifact(path).predict(data[test].copy()).labels
    measured = config["metrics"][str(zoo.data)]
    assert measured["accuracy"] == pytest.approx(float(np.mean(predicted == labels[test])))
    assert set(measured) == {"accuracy", "f1_macro", "f1_weighted"}


def test_a_cached_build_is_reused_until_forced_or_the_recipe_changes(zoo, monkeypatch):
    calls = []
    real = build_module.train_from_recipe
    monkeypatch.setattr(build_module, "train_from_recipe", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = build("majority.test", progress=False)
    assert build("majority.test", progress=False) == path and len(calls) == 1
    build("majority.test", force=True, progress=False)
    assert len(calls) == 2
    write_registry_entry(zoo.registry, "majority.test", dataset=str(zoo.data), seed=7)
    build("majority.test", progress=False)
    assert len(calls) == 3


def test_recipe_errors_are_clear(zoo):
    write_registry_entry(zoo.registry, "majority.test", dataset=str(zoo.data), epochs=5)
    with pytest.raises(ConfigError, match="has no 'epochs' config field"):
        build("majority.test", progress=False)
    write_registry_entry(zoo.registry, "majority.test", dataset=str(zoo.data), config="depth = 3")
    with pytest.raises(ConfigError, match="has no config key 'depth'"):
        build("majority.test", progress=False)
    write_registry_entry(zoo.registry, "majority.test", dataset=str(zoo.data), task="generate")
    with pytest.raises(ConfigError, match="is a 'annotate' model"):
        build("majority.test", progress=False)
    assert not (zoo.models / "majority.test").exists()


def test_toml_arrays_become_tuples_for_tuple_fields(projection):
    write_registry_entry(projection.registry, "projection.test", dataset=str(projection.data), config="widths = [8, 2]")
    entry = pretrained_entry("projection.test")
    from cellzoo.registry import model_spec

    assert recipe_config(entry, model_spec("projection"))["widths"] == (8, 2)


def test_cli_build(zoo):
    from click.testing import CliRunner

    from cellzoo.cli import main

    runner = CliRunner()
    first = runner.invoke(main, ["build", "majority.test", "--json"])
    assert first.exit_code == 0, first.output
    record = json.loads(first.output)
    assert record["path"] == str(zoo.models / "majority.test") and record["reused"] is False
    assert 0.0 <= record["metrics"][str(zoo.data)]["accuracy"] <= 1.0
    second = json.loads(runner.invoke(main, ["build", "majority.test", "--json"]).output)
    assert second["reused"] is True
    unknown = runner.invoke(main, ["build", "nope.tag"])
    assert unknown.exit_code == 1 and "unknown pretrained checkpoint 'nope.tag'" in unknown.output


@pytest.mark.slow
@pytest.mark.parametrize("name", ["scanna.pbmc68k_reduced", "logreg.pbmc68k_reduced"])
def test_shipped_checkpoints_build_deterministically(name, tmp_path, monkeypatch):
    """The real recipes: two builds in two fresh caches give the same tensors (minutes for scANNA)."""
    from cellzoo.plugins import ZooPluginManager, use_plugin_manager

    monkeypatch.delenv("CELLZOO_REGISTRY_PATH", raising=False)
    with use_plugin_manager(ZooPluginManager(discover=True)) as pm:
        if name.split(".")[0] not in pm.catalog()["model"]:
            pytest.skip(f"the plugin for {name} is not installed")
        outputs = []
        for run in ("a", "b"):
            monkeypatch.setenv("CELLZOO_HOME", str(tmp_path / run))
            outputs.append(contents(build(name, progress=False)))
    for out in outputs:  # a plugin may record how long training took; that is allowed to differ
        out["config.json"] = {k: out["config.json"][k] for k in ("config", "recipe", "golden")}
    assert outputs[0] == outputs[1]


def test_a_generator_builds_from_its_recipe_and_is_scored_against_held_out_cells(zoo):
    """A generate recipe trains on the training cells and records the task's metrics on the held-out ones."""
    import json

    import cellzoo

    write_registry_entry(zoo.registry, "independent_genes.test", dataset=str(zoo.data), task="generate")
    path = build("independent_genes.test", progress=False)
    measured = json.loads((path / "config.json").read_text())["metrics"]
    (scores,) = measured.values()
    assert set(scores) == set(cellzoo.task_spec("generate").metrics)
    assert 0.0 <= scores["classifier_auc"] <= 1.0 and -1.0 <= scores["gene_mean_corr"] <= 1.0
    model = cellzoo.load("independent_genes.test")
    cells = model.sample(20, cell_type=model.classes[0], seed=0)
    assert cells.n_obs == 20 and set(cells.obs["cell_type"].astype(str)) == {model.classes[0]}
