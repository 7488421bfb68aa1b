"""The registry API (list / spec / create_model) and how ``load`` reads a name or a path."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import cellzoo
from cellzoo import DatasetSpec, MetricSpec, ModelSpec, hookimpl
from cellzoo.errors import ArtifactError, ConfigError, HubError, UnknownNameError
from cellzoo.paths import artifact_dir, home, models_dir
from cellzoo.sources import Source, parse_source
from cellzoo.testing import tiny_annotate_adata


@dataclass(frozen=True)
class SizeConfig:
    hidden_size: int = 8
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.hidden_size <= 0:
            raise ValueError(f"hidden_size must be positive, got {self.hidden_size}")


class Built:
    def __init__(self, config=None):
        self.config = config


class Catalogue:
    """A plugin with models of two tasks, a dataset and a metric."""

    @hookimpl
    def cellzoo_models(self):
        return [
            ModelSpec("alpha_net", "annotate", builder=Built, config=SizeConfig, summary="a"),
            ModelSpec("alpha_tiny", "annotate", builder=Built, config=SizeConfig, summary="b"),
            ModelSpec("beta_vae", "simulate", builder=Built, config=SizeConfig, summary="c"),
            ModelSpec("plain", "annotate", builder=Built, summary="no config"),
        ]

    @hookimpl
    def cellzoo_datasets(self):
        return [
            DatasetSpec("cells_a", ("annotate", "simulate"), loader="x:y"),
            DatasetSpec("cells_b", ("simulate",), "x:y"),
        ]

    @hookimpl
    def cellzoo_metrics(self):
        return [MetricSpec("mmd", "simulate", function=lambda a, b: 0.0, higher_is_better=False)]


@pytest.fixture
def pm(zoo_pm):
    zoo_pm.register(Catalogue(), name="catalogue", distribution="cat-dist", version="0.3")
    return zoo_pm


# -- listing ------------------------------------------------------------------------------------------


def test_list_models_by_pattern_and_task(pm):
    everything = cellzoo.list_models()
    assert {"alpha_net", "alpha_tiny", "beta_vae", "plain", "majority", "random_labels", "true_labels"} <= set(
        everything
    )
    assert everything == sorted(everything)
    assert cellzoo.list_models("alpha_*") == ["alpha_net", "alpha_tiny"]
    assert cellzoo.list_models(["alpha_n*", "beta*"]) == ["alpha_net", "beta_vae"]
    assert cellzoo.list_models(task="simulate") == ["beta_vae"]
    assert cellzoo.list_models("alpha*", task="simulate") == []
    assert "beta_vae" not in cellzoo.list_models(task="annotate")


def test_list_datasets_metrics_tasks(pm):
    assert cellzoo.list_datasets(task="simulate") == ["cells_a", "cells_b"]
    assert cellzoo.list_datasets("cells_*", task="annotate") == ["cells_a"]
    assert cellzoo.list_metrics(task="simulate") == ["mmd"]
    assert "accuracy" in cellzoo.list_metrics(task="annotate") and "mmd" not in cellzoo.list_metrics(task="annotate")
    assert cellzoo.list_tasks() == ["annotate", "generate", "markers", "upscale"]
    assert cellzoo.get_metric("mmd")(1, 2) == 0.0


def test_specs_by_name(pm):
    assert cellzoo.model_spec("alpha_net").config is SizeConfig
    assert cellzoo.model_spec("alpha_net.some_tag").name == "alpha_net"  # a checkpoint's architecture
    assert cellzoo.dataset_spec("cells_b").tasks == ("simulate",)
    assert cellzoo.metric_spec("mmd").higher_is_better is False
    assert cellzoo.task_spec("annotate").controls == ("majority", "random_labels", "true_labels")


def test_unknown_names_suggest_close_matches(pm):
    with pytest.raises(UnknownNameError, match=r"unknown model 'alpha_nett'\. Did you mean: alpha_net") as info:
        cellzoo.create_model("alpha_nett")
    assert isinstance(info.value, KeyError)  # dict-style callers can catch KeyError
    with pytest.raises(UnknownNameError, match="Did you mean: cells_a"):
        cellzoo.dataset_spec("cells_aa")
    with pytest.raises(UnknownNameError, match="Installed metrics: "):
        cellzoo.metric_spec("zzzzzz")


# -- building -----------------------------------------------------------------------------------------------


def test_create_model_applies_overrides_and_sets_spec(pm):
    model = cellzoo.create_model("alpha_net", hidden_size=32)
    assert isinstance(model, Built) and model.config == SizeConfig(hidden_size=32)
    assert model.spec is cellzoo.model_spec("alpha_net")
    assert cellzoo.create_model("plain").config is None


def test_unknown_config_key_names_valid_keys_and_suggests(pm):
    with pytest.raises(ConfigError) as info:
        cellzoo.create_model("alpha_net", hiden_size=4)
    message = str(info.value)
    assert "'hiden_size' (did you mean 'hidden_size'?)" in message
    assert "valid keys: hidden_size, learning_rate, seed" in message


def test_bad_config_value_is_a_config_error(pm):
    with pytest.raises(ConfigError, match="hidden_size must be positive, got -1"):
        cellzoo.create_model("alpha_net", hidden_size=-1)
    with pytest.raises(ConfigError, match="takes no configuration"):
        cellzoo.create_model("plain", hidden_size=3)


def test_create_model_of_a_checkpoint_name_points_to_load(pm):
    with pytest.raises(ConfigError, match=r"names a pretrained checkpoint; use cellzoo\.load\('alpha_net\.pbmc'\)"):
        cellzoo.create_model("alpha_net.pbmc")


# -- paths ------------------------------------------------------------------------------------------------------


def test_home_follows_cellzoo_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLZOO_HOME", str(tmp_path / "zoo"))
    assert home() == tmp_path / "zoo"
    assert models_dir() == tmp_path / "zoo" / "models"
    assert artifact_dir("scanna.pbmc") == tmp_path / "zoo" / "models" / "scanna.pbmc"
    monkeypatch.setenv("CELLZOO_HOME", "~/zoo")
    assert home() == Path.home() / "zoo"


def test_home_defaults_to_the_user_cache(monkeypatch):
    import platformdirs

    monkeypatch.delenv("CELLZOO_HOME")
    assert home() == Path(platformdirs.user_cache_dir("cellzoo"))


def test_artifact_dir_refuses_path_like_names():
    with pytest.raises(ConfigError, match="cannot name a folder"):
        artifact_dir("../escape")


# -- load: names and prefixes --------------------------------------------------------------------------------


@pytest.fixture
def saved_majority(zoo_pm, tmp_path):
    model = cellzoo.create_model("majority").fit(tiny_annotate_adata(n_cells=12, n_genes=6), "cell_type")
    return cellzoo.save(model, tmp_path / "majority-artifact")


@pytest.mark.parametrize(
    "name",
    ["./model", "models/majority", "..\\model", "C:\\models\\x", "~/zoo/model", ".hidden", "~x"],
)
def test_path_looking_names_need_local_dir(zoo_pm, name):
    with pytest.raises(ConfigError, match=r"looks like a path.*local-dir:"):
        cellzoo.load(name)


def test_an_existing_folder_name_needs_local_dir(saved_majority, monkeypatch):
    monkeypatch.chdir(saved_majority.parent)
    with pytest.raises(
        ConfigError, match=r"looks like a path. To load an artifact directory write 'local-dir:majority-artifact'"
    ):
        cellzoo.load("majority-artifact")
    assert cellzoo.load("local-dir:majority-artifact").is_fitted


def test_local_dir_and_path_objects_load(saved_majority):
    assert cellzoo.load(f"local-dir:{saved_majority}").classes == ("B cell", "CD14+ Monocyte", "CD4+ T cell")
    assert cellzoo.load(saved_majority, verify_hashes=False).is_fitted


def test_an_architecture_is_not_a_checkpoint(zoo_pm):
    with pytest.raises(ConfigError, match=r"'majority' is an architecture; use create_model\('majority'\)"):
        cellzoo.load("majority")
    with pytest.raises(UnknownNameError, match="Did you mean: majority"):
        cellzoo.load("majorty")


def test_a_checkpoint_neither_cached_nor_registered_lists_the_registry(zoo_pm, monkeypatch, tmp_path):
    monkeypatch.setenv("CELLZOO_HOME", str(tmp_path / "home"))
    with pytest.raises(UnknownNameError) as info:
        cellzoo.load("majority.pbmc")
    message = str(info.value)
    assert "unknown pretrained checkpoint 'majority.pbmc'" in message
    assert "cellzoo list --pretrained" in message


def test_a_checkpoint_in_the_cache_loads(saved_majority):
    shutil.copytree(saved_majority, artifact_dir("majority.tiny"))
    model = cellzoo.load("majority.tiny")
    assert model.is_fitted and model.name == "majority"


def test_a_checkpoint_of_an_unknown_architecture(zoo_pm):
    with pytest.raises(UnknownNameError, match=r"unknown model 'majorit'.*names a checkpoint of architecture"):
        cellzoo.load("majorit.pbmc")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("local-dir:", "names no local-dir location"),
        ("s3:bucket/model", "unknown source prefix 's3'"),
        ("hf_hub:org/name", "unknown source prefix 'hf_hub'"),
        ("hf-hub:", "names no hf-hub location"),
        ("hf-hub:just-a-name", "not a Hub name"),
        ("hf-hub:org/name/extra", "not a Hub name"),
        ("hf-hub:org/name@", "not a Hub name"),
        ("majority.", "not a checkpoint name"),
        ("", "non-empty string"),
    ],
)
def test_malformed_names(zoo_pm, name, message):
    with pytest.raises(ConfigError, match=message):
        cellzoo.load(name)


def test_unknown_load_options_are_refused(saved_majority):
    with pytest.raises(ConfigError, match="takes no option revision; valid: verify_hashes"):
        cellzoo.load(f"local-dir:{saved_majority}", revision="main")


def test_parse_source():
    assert parse_source("hf-hub:org/name@v1.2") == Source("hf-hub", "org/name", "v1.2")
    assert parse_source("hf-hub:org/name") == Source("hf-hub", "org/name", None)
    assert parse_source("local-dir:/a/b") == Source("local-dir", "/a/b")
    assert parse_source("scanna.pbmc") == Source("checkpoint", "scanna.pbmc")
    assert str(parse_source("hf-hub:org/name@main")) == "hf-hub:org/name@main"


# -- load from the Hub, without a network ---------------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(cache: Path, artifact: Path, repo: str = "cellzoo-test/majority") -> Path:
    """Lay out the Hugging Face cache as a finished download of ``artifact`` at COMMIT would."""
    root = cache / ("models--" + repo.replace("/", "--"))
    shutil.copytree(artifact, root / "snapshots" / COMMIT)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(COMMIT)
    return root


def test_hub_source_loads_from_the_cache_offline(saved_majority, tmp_path):
    _hub_cache(tmp_path / "hf", saved_majority)
    for name in ("hf-hub:cellzoo-test/majority", f"hf-hub:cellzoo-test/majority@{COMMIT}"):
        model = cellzoo.load(name, cache_dir=tmp_path / "hf", local_files_only=True)
        assert model.is_fitted and model.artifact_dir.name == COMMIT


def test_hub_source_missing_offline_says_what_to_do(zoo_pm, tmp_path):
    with pytest.raises(HubError) as info:
        cellzoo.load("hf-hub:cellzoo-test/absent@main", cache_dir=tmp_path / "hf", local_files_only=True)
    message = str(info.value)
    assert "cellzoo-test/absent@main is not in the local Hugging Face cache" in message
    assert "HF_HUB_OFFLINE" in message and "local-dir:PATH" in message


def test_hub_offline_constant_is_honoured(zoo_pm, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="downloading is off"):
        cellzoo.load("hf-hub:cellzoo-test/absent", cache_dir=tmp_path / "hf")


def test_hub_cached_artifact_is_still_hash_checked(saved_majority, tmp_path):
    root = _hub_cache(tmp_path / "hf", saved_majority)
    weights = root / "snapshots" / COMMIT / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    with pytest.raises(ArtifactError, match=r"model\.safetensors .* does not match its recorded hash"):
        cellzoo.load("hf-hub:cellzoo-test/majority", cache_dir=tmp_path / "hf", local_files_only=True)


def test_hub_revision_given_twice_must_agree(zoo_pm, tmp_path):
    with pytest.raises(ConfigError, match="already pins revision 'v1'"):
        cellzoo.load("hf-hub:org/name@v1", revision="v2", local_files_only=True, cache_dir=tmp_path)
