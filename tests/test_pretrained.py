"""The registry of pretrained checkpoints: schema, discovery, and pinning a published commit."""

from __future__ import annotations

import importlib.resources
import sys
import tomllib
from pathlib import Path

import pytest

from cellzoo import pretrained as catalogue
from cellzoo.errors import ConfigError, UnknownNameError
from cellzoo.pretrained import (
    hub_toml,
    parse_entry,
    pretrained_entries,
    pretrained_entry,
    read_entry,
    update_hub_record,
    with_hub_block,
)

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("hub_server")  # test helpers and fixtures, loaded as a plugin below
from hub_server import registry_toml, write_registry_entry  # noqa: E402

SHIPPED_DIR = Path(str(importlib.resources.files("cellzoo._registry")))
SHIPPED = sorted(SHIPPED_DIR.glob("*.toml"))
EXPECTED = {
    "scanna.pbmc68k_reduced",
    "actinn.pbmc68k_reduced",
    "logreg.pbmc68k_reduced",
    "linear_svm.pbmc68k_reduced",
    "knn.pbmc68k_reduced",
}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA = "ab" * 32


@pytest.fixture
def registry(tmp_path, monkeypatch):
    folder = tmp_path / "registry"
    folder.mkdir()
    monkeypatch.setenv("CELLZOO_REGISTRY_PATH", str(folder))
    return folder


def doc(**changes) -> dict:
    """A valid registry document (as parsed TOML) with top-level or dotted-key changes."""
    data = tomllib.loads(registry_toml("majority.test"))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        target = data
        for p in parents:
            target = target.setdefault(p, {})
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return data


# -- the shipped registry ------------------------------------------------------------------------


def test_the_shipped_registry_has_an_entry_per_pretrained_checkpoint():
    assert {p.stem for p in SHIPPED} >= EXPECTED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_registry_file_validates(path):
    entry = read_entry(path)
    assert entry.name == path.stem
    assert entry.hub.repo_id == f"cellzoo/{entry.name}"
    assert entry.license in catalogue.HUB_LICENSES and entry.citation and entry.training_data
    assert entry.recipe.dataset
    # supervised tasks train on a label column, unsupervised ones (discover) must not name one;
    # a generator may (to sample cell types)
    if entry.task in ("annotate", "discover"):
        assert bool(entry.recipe.label_key) == (entry.task == "annotate")
    if entry.recipe.split.kind == "holdout":
        assert 0 < entry.recipe.split.test_fraction < 1
    if entry.published:  # a pinned commit lists every file it needs
        assert {"config.json", "model.safetensors"} <= set(entry.hub.files)
    # metrics are measured, never typed in: each one says what produced it
    assert all(m.source for m in entry.metrics)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_recipes_fit_the_installed_architecture(path):
    from cellzoo.build import recipe_config
    from cellzoo.plugins import ZooPluginManager, use_plugin_manager
    from cellzoo.registry import contribution, list_datasets, make_config

    entry = read_entry(path)
    with use_plugin_manager(ZooPluginManager(discover=True)):
        from cellzoo.registry import list_models

        if entry.architecture not in list_models():
            pytest.skip(f"the plugin providing {entry.architecture!r} is not installed")
        spec = contribution("model", entry.architecture).spec
        assert spec.task == entry.task
        config = make_config(spec, recipe_config(entry, spec))  # unknown keys would raise
        assert getattr(config, "seed", entry.recipe.seed) == entry.recipe.seed
        if entry.recipe.epochs is not None:
            assert config.epochs == entry.recipe.epochs
        if not entry.recipe.dataset.endswith(".h5ad") and entry.recipe.dataset not in list_datasets():
            pytest.skip(f"the plugin providing dataset {entry.recipe.dataset!r} is not installed")
        from cellzoo.registry import dataset_spec

        if entry.recipe.label_key is not None:
            assert entry.recipe.label_key == dataset_spec(entry.recipe.dataset).label_key


def test_list_models_pretrained_reads_the_registry(registry):
    from cellzoo.registry import list_models

    write_registry_entry(registry, "majority.test")
    names = list_models(pretrained=True)
    assert set(names) >= EXPECTED | {"majority.test"}
    assert list_models("majority.*", pretrained=True) == ["majority.test"]
    assert list_models(pretrained=True, task="generate") == [
        "activa.pbmc68k_reduced",
        "cscgan.pbmc68k_reduced",
        "scgan.pbmc68k_reduced",
    ]
    assert list_models(pretrained=True, task="upscale") == ["srcnn.sr_images", "srvae.sr_images"]


# -- schema errors ---------------------------------------------------------------------------------


def test_a_valid_document_parses_into_an_entry():
    entry = parse_entry(doc(), "x.toml", expect_name="majority.test")
    assert (entry.name, entry.architecture, entry.tag, entry.task) == ("majority.test", "majority", "test", "annotate")
    assert entry.recipe.split.kind == "holdout" and entry.recipe.split.test_fraction == 0.25
    assert not entry.published and entry.hub.repo_id == "testorg/majority.test"
    assert entry.recipe.config_overrides() == {"seed": 0}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"surprise": 1}, "unknown key(s) 'surprise' in the top level"),
        ({"recipe__lr": 0.1}, "unknown key(s) 'lr' in table 'recipe'"),
        ({"schema_version": 2}, "reads version 1"),
        ({"name": None}, "'name' is missing"),
        ({"name": "majority"}, "must be 'arch.tag'"),
        ({"architecture": "minority"}, "the name 'majority.test' says 'majority'"),
        ({"license": "MIT"}, "not a Hugging Face Hub licence id"),
        ({"license": "other"}, "'license_name' is missing"),
        ({"summary": ""}, "'summary' must not be empty"),
        ({"tags": ["ok", 3]}, "must be a list of non-empty strings"),
        ({"recipe__seed": "0"}, "'recipe.seed' must be int, got str"),
        ({"recipe__seed": True}, "'recipe.seed' must be int, got bool"),
        ({"recipe__epochs": 0}, "must be a positive integer"),
        ({"recipe__config": {"seed": 3}}, "write them as recipe.seed"),
        ({"recipe__split__kind": "kfold"}, "must be one of all, holdout, fixed; got 'kfold'"),
        ({"recipe__split__test_fraction": None}, "'recipe.split.test_fraction' is missing"),
        ({"recipe__split__test_fraction": 1.5}, "strictly between 0 and 1"),
        ({"hub__repo_id": "no-slash"}, "must look like 'org/name'"),
        ({"hub__revision": "main"}, "full 40-character commit hash"),
        ({"hub__revision": COMMIT}, "and hub.files go together"),
        ({"hub__files": {"model.safetensors": {"sha256": SHA, "size": 1}}}, "and hub.files go together"),
        ({"metrics": [{"dataset": "d", "split": "holdout", "metric": "accuracy", "value": 0.5}]}, "got 'holdout'"),
        (
            {"metrics": [{"dataset": "d", "split": "test", "metric": "accuracy", "value": "high"}]},
            "must be int or float",
        ),
    ],
)
def test_schema_errors_name_the_file_and_key(changes, message):
    with pytest.raises(ConfigError, match=r"registry file bad\.toml") as info:
        parse_entry(doc(**changes), "bad.toml", expect_name="majority.test")
    assert message in str(info.value)


def test_published_hub_records_are_checked():
    files = {"config.json": {"sha256": SHA, "size": 10}, "model.safetensors": {"sha256": SHA, "size": 20}}
    entry = parse_entry(doc(hub__revision=COMMIT, hub__files=files), "ok.toml")
    assert entry.published and entry.hub.files["model.safetensors"].size == 20
    bad_sha = {**files, "config.json": {"sha256": "xyz", "size": 10}}
    with pytest.raises(ConfigError, match=r"'hub\.files\.config\.json\.sha256' must be 64 lowercase hex digits"):
        parse_entry(doc(hub__revision=COMMIT, hub__files=bad_sha), "bad.toml")
    no_weights = {"config.json": files["config.json"]}
    with pytest.raises(ConfigError, match=r"must list 'model\.safetensors'"):
        parse_entry(doc(hub__revision=COMMIT, hub__files=no_weights), "bad.toml")
    outside = {**files, "../evil": {"sha256": SHA, "size": 1}}
    with pytest.raises(ConfigError, match="relative path inside the repository"):
        parse_entry(doc(hub__revision=COMMIT, hub__files=outside), "bad.toml")


def test_file_errors(registry):
    (registry / "majority.test.toml").write_text(registry_toml("majority.test").replace("[recipe]", "[recipe"))
    with pytest.raises(ConfigError, match="is not valid TOML"):
        pretrained_entries()
    (registry / "majority.test.toml").write_text(registry_toml("majority.other"))
    with pytest.raises(ConfigError, match=r"the file is named majority\.test\.toml"):
        pretrained_entries()


def test_a_name_defined_twice_is_an_error_naming_both_files(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    write_registry_entry(first, "majority.test")
    write_registry_entry(second, "majority.test")
    monkeypatch.setenv("CELLZOO_REGISTRY_PATH", f"{first}{__import__('os').pathsep}{second}")
    with pytest.raises(ConfigError, match="defined twice") as info:
        pretrained_entries()
    assert str(first / "majority.test.toml") in str(info.value) and str(second / "majority.test.toml") in str(
        info.value
    )


def test_a_missing_registry_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLZOO_REGISTRY_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="does not exist"):
        pretrained_entries()


def test_unknown_names_suggest_close_ones(registry):
    write_registry_entry(registry, "majority.test")
    with pytest.raises(UnknownNameError, match=r"Did you mean: majority\.test"):
        pretrained_entry("majority.tset")


# -- pinning a published commit ---------------------------------------------------------------------


def test_update_hub_record_pins_the_commit_and_keeps_the_rest(registry):
    path = write_registry_entry(registry, "majority.test", extra='tags = ["keep-me"]')
    before = path.read_text()
    files = {"config.json": {"sha256": SHA, "size": 10}, "model.safetensors": {"sha256": "cd" * 32, "size": 20},
             "test/io.safetensors": {"sha256": "ef" * 32, "size": 30}}  # fmt: skip
    assert update_hub_record("majority.test", "testorg/majority.test", COMMIT, files) == path
    entry = pretrained_entry("majority.test")
    assert entry.hub.revision == COMMIT and entry.hub.files["test/io.safetensors"].size == 30
    assert entry.tags == ("keep-me",) and entry.recipe.split.test_fraction == 0.25
    text = path.read_text()
    assert text.startswith("# a test checkpoint") and text.count("[hub]") == 1
    assert before.split("[hub]")[0] == text.split("[hub]")[0]

    # a second push replaces the block instead of adding one
    newer = "f" * 40
    update_hub_record(
        "majority.test", "testorg/majority.test", newer, {k: v for k, v in files.items() if k != "test/io.safetensors"}
    )
    entry = pretrained_entry("majority.test")
    assert entry.hub.revision == newer and set(entry.hub.files) == {"config.json", "model.safetensors"}
    assert path.read_text().count("[hub]") == 1


def test_hub_block_is_replaced_wherever_it_sits():
    text = '[hub]\nrepo_id = "a/b"\n\n[hub.files."x"]\nsha256 = "1"\nsize = 1\n\n[[metrics]]\nvalue = 1\n'
    replaced = with_hub_block(text, hub_toml("c/d", None, {}))
    assert tomllib.loads(replaced) == {"hub": {"repo_id": "c/d"}, "metrics": [{"value": 1}]}
    appended = with_hub_block('name = "x"\n', hub_toml("c/d", COMMIT, {"a b.json": {"sha256": SHA, "size": 3}}))
    assert tomllib.loads(appended)["hub"]["files"]["a b.json"] == {"sha256": SHA, "size": 3}
