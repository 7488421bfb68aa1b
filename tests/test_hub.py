"""Publishing and pulling checkpoints with the real huggingface_hub client over loopback HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cellzoo.artifacts import load_artifact, save
from cellzoo.build import build_into
from cellzoo.cache import read_origin
from cellzoo.errors import ConfigError, HubError, IntegrityError
from cellzoo.hub import check_card, hub_card, push
from cellzoo.pretrained import pretrained_entry
from cellzoo.sources import resolve_pretrained

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("hub_server")  # test helpers and fixtures, loaded as a plugin below
from hub_server import registry_toml, tiny_adata  # noqa: E402

pytest_plugins = ["hub_server"]  # the loopback Hub and the isolated-zoo fixtures

REPO = "testorg/majority.test"
NAME = "majority.test"


def make_artifact(zoo, folder: str = "artifact") -> Path:
    """A trained ``majority.test`` artifact outside the cache (what a maintainer pushes)."""
    return build_into(pretrained_entry(NAME), zoo.tmp / folder, progress=False)


def other_artifact(zoo, folder: str = "artifact2") -> Path:
    """The same architecture trained on data with another majority class: different tensors."""
    import cellzoo

    model = cellzoo.create_model("majority")
    model.fit(tiny_adata(seed=5, weights=(0.1, 0.2, 0.7)), "cell_type")
    return save(model, zoo.tmp / folder, recipe={"name": NAME})


def state(path: Path) -> dict[str, np.ndarray]:
    return load_artifact(path).state_tensors()


def set_offline(monkeypatch, offline: bool = True) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


@pytest.fixture
def published(zoo, hub_server):
    """``majority.test`` pushed to the loopback Hub with its registry entry pinned to the commit."""
    artifact = make_artifact(zoo)
    result = push(artifact, REPO, update_registry=True)
    return result, artifact


# -- push ------------------------------------------------------------------------------------------


def test_push_uploads_the_artifact_and_pins_the_registry(zoo, hub_server, published):
    result, artifact = published
    assert result.revision == hub_server.head(REPO)
    remote = hub_server.files(REPO)
    assert {"config.json", "model.safetensors", "test/io.safetensors", "README.md"} <= set(remote)
    for rel in ("config.json", "model.safetensors", "test/io.safetensors"):
        assert remote[rel] == (artifact / rel).read_bytes()

    entry = pretrained_entry(NAME)
    assert entry.published and entry.hub.revision == result.revision
    assert set(entry.hub.files) == {"config.json", "model.safetensors", "test/io.safetensors", "README.md"}
    import hashlib

    for rel, record in entry.hub.files.items():
        assert record.sha256 == hashlib.sha256(remote[rel]).hexdigest()
        assert record.size == len(remote[rel])
    # the card is validated by the Hub before the commit
    posts = [path for method, path in hub_server.requests if method == "POST"]
    assert posts.index("/api/validate-yaml") < next(i for i, p in enumerate(posts) if "/commit/" in p)
    assert result.source == f"hf-hub:{REPO}@{result.revision}"


def test_pushed_card_is_valid_for_the_hub(zoo, hub_server, published):
    from huggingface_hub import ModelCard

    card_text = hub_server.files(REPO)["README.md"].decode()
    meta = yaml.safe_load(card_text.split("---\n", 2)[1])
    assert meta["library_name"] == "cellzoo"
    assert meta["license"] == "mit"
    assert {"cellzoo", "single-cell", "annotate", "majority"} <= set(meta["tags"])
    results = meta["model-index"][0]["results"]
    metrics = {m["type"]: m["value"] for r in results for m in r["metrics"]}
    assert set(metrics) == {"accuracy", "f1_macro", "f1_weighted"}
    assert all(r["dataset"]["split"] == "test" for r in results)
    # the numbers are the build's held-out measurements, as recorded in the artifact
    recorded = json.loads(hub_server.files(REPO)["config.json"])["metrics"]
    assert metrics == pytest.approx(next(iter(recorded.values())))
    assert "## Pretrained checkpoint `majority.test`" in card_text
    assert "cellzoo pull majority.test" in card_text

    # huggingface_hub's own validation, answered by the server
    before = len(hub_server.validated)
    ModelCard(card_text).validate()
    assert len(hub_server.validated) == before + 1


def test_invalid_cards_are_rejected_locally_and_by_the_hub(zoo, hub_server):
    good = hub_card(make_artifact(zoo), entry=pretrained_entry(NAME), repo_id=REPO)
    check_card(good)  # local and remote both pass
    with pytest.raises(HubError, match="license 'MIT-ish' is not a Hub licence id"):
        check_card(good.replace("license: mit", "license: MIT-ish"), remote=False)
    with pytest.raises(HubError, match="library_name must be 'cellzoo'"):
        check_card(good.replace("library_name: cellzoo", "library_name: torch"), remote=False)
    with pytest.raises(HubError, match="no YAML front matter"):
        check_card("# just text\n")
    # the server's rules are its own: a licence our local list knows but the server does not
    with pytest.raises(HubError, match="the Hub rejected the model card"):
        check_card(good.replace("license: mit", "license: wtfpl"))


def test_push_refuses_a_damaged_artifact_before_sending_anything(zoo, hub_server):
    artifact = make_artifact(zoo)
    data = bytearray((artifact / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (artifact / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.safetensors"):
        push(artifact, REPO)
    assert not [p for m, p in hub_server.requests if m == "POST"]


def test_update_registry_needs_an_entry_and_checks_the_architecture(zoo, hub_server):
    artifact = make_artifact(zoo)
    with pytest.raises(ConfigError, match=r"'nothere\.tag' is not one"):
        push(artifact, "testorg/x", name="nothere.tag", update_registry=True)
    (zoo.registry / "random_labels.test.toml").write_text(registry_toml("random_labels.test", dataset=str(zoo.data)))
    with pytest.raises(ConfigError, match="architecture 'random_labels'"):
        push(artifact, "testorg/x", name="random_labels.test")
    assert not [p for m, p in hub_server.requests if "/commit/" in p]


def test_create_pr_leaves_main_alone(zoo, hub_server, published):
    first, _ = published
    result = push(other_artifact(zoo), REPO, create_pr=True)
    assert result.pr_url and result.pr_url.endswith("/discussions/1")
    assert hub_server.head(REPO) == first.revision  # main did not move
    assert hub_server.head(REPO, "refs/pr/1") == result.revision
    path = resolve_pretrained(f"{NAME}@{result.revision}")
    assert state(path)["class_frequency"].tolist() != state(resolve_pretrained(NAME))["class_frequency"].tolist()


# -- pull ------------------------------------------------------------------------------------------


def test_pull_round_trip(zoo, hub_server, published):
    result, artifact = published
    path = resolve_pretrained(NAME)
    assert path == zoo.models / NAME
    origin = read_origin(path)
    assert origin["source"] == "hub" and origin["revision"] == result.revision
    assert not (path / ".gitattributes").exists()  # only the pinned files are fetched
    assert not (path / ".cache").exists()

    original, pulled = load_artifact(artifact), load_artifact(path)
    query = tiny_adata(n_cells=20, seed=3)
    assert list(pulled.predict(query).labels) == list(original.predict(query).labels)
    np.testing.assert_array_equal(
        pulled.state_tensors()["class_frequency"], original.state_tensors()["class_frequency"]
    )

    # a second resolution is a cache hit: no new download
    downloads = dict(hub_server.downloads)
    assert resolve_pretrained(NAME) == path
    assert hub_server.downloads == downloads


def test_a_pinned_name_ignores_later_pushes_to_main(zoo, hub_server, published):
    first, _ = published
    with pytest.warns(UserWarning, match="stays pinned"):
        second = push(other_artifact(zoo), REPO)
    assert hub_server.head(REPO) == second.revision != first.revision

    pinned = state(resolve_pretrained(NAME))
    assert read_origin(zoo.models / NAME)["revision"] == first.revision
    latest = state(resolve_pretrained(f"{NAME}@main"))  # an explicit revision follows the branch
    assert pinned["class_frequency"].tolist() != latest["class_frequency"].tolist()
    assert (zoo.models / f"{NAME}@{second.revision}").is_dir()
    np.testing.assert_array_equal(state(resolve_pretrained(f"{NAME}@{second.revision}"))["class_frequency"],
                                  latest["class_frequency"])  # fmt: skip


def test_tampered_file_on_the_server_is_refused(zoo, hub_server, published):
    data = bytearray(hub_server.files(REPO)["model.safetensors"])
    data[-2] ^= 0x01  # same size, other bytes
    hub_server.tamper(REPO, "model.safetensors", bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.safetensors .*does not match its pinned hash"):
        resolve_pretrained(NAME)
    assert not (zoo.models / NAME).exists()
    assert not [p for p in zoo.models.iterdir() if p.name != ".locks"]  # no temporary leftovers


def test_tampered_file_in_the_cache_is_refused_and_force_heals_it(zoo, hub_server, published):
    path = resolve_pretrained(NAME)
    config = path / "config.json"
    config.write_text(config.read_text().replace('"majority"', '"majority" '))
    with pytest.raises(IntegrityError, match=r"config\.json in the cached checkpoint 'majority.test'.*--force"):
        resolve_pretrained(NAME)
    resolve_pretrained(NAME, force=True)
    assert resolve_pretrained(NAME) == path
    load_artifact(path)


def test_pinned_files_copied_into_the_cache_by_hand_are_used(zoo, hub_server, published):
    path = resolve_pretrained(NAME)
    (path / ".cellzoo-origin.json").unlink()  # e.g. copied from another machine without hidden files
    downloads = dict(hub_server.downloads)
    assert resolve_pretrained(NAME) == path
    assert hub_server.downloads == downloads
    assert read_origin(path)["source"] == "copy"


def test_a_local_build_is_replaced_once_the_entry_is_published(zoo, hub_server):
    path = resolve_pretrained(NAME)  # unpublished: built here
    assert read_origin(path)["source"] == "build"
    push(make_artifact(zoo), REPO, update_registry=True)
    resolve_pretrained(NAME)
    assert read_origin(path)["source"] == "hub"


def test_offline_with_a_warm_cache_loads_without_the_network(zoo, hub_server, published, monkeypatch):
    path = resolve_pretrained(NAME)
    hub_server.stop()
    set_offline(monkeypatch)
    start = time.perf_counter()
    assert resolve_pretrained(NAME) == path
    load_artifact(path)
    assert time.perf_counter() - start < 5


def test_offline_with_a_cold_cache_says_what_to_run_at_once(zoo, hub_server, published, monkeypatch):
    set_offline(monkeypatch)
    n_requests = len(hub_server.requests)
    start = time.perf_counter()
    with pytest.raises(HubError) as info:
        resolve_pretrained(NAME)
    assert time.perf_counter() - start < 2
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and "cellzoo pull majority.test" in message
    assert "CELLZOO_OFFLINE_DIR" in message
    assert len(hub_server.requests) == n_requests


def test_a_private_repository_needs_hf_token(zoo, hub_server, monkeypatch):
    push(make_artifact(zoo), REPO, private=True, update_registry=True)
    assert hub_server.repos[REPO].private
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.utils._auth.get_token", lambda: None, raising=False)
    with pytest.raises(HubError, match="HF_TOKEN"):
        resolve_pretrained(NAME)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    load_artifact(resolve_pretrained(NAME))


def test_hf_endpoint_set_after_import_is_honoured(zoo, hub_server, published, monkeypatch):
    from huggingface_hub import constants

    dead = "http://127.0.0.1:9"  # what huggingface_hub read at import; nothing listens there
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    load_artifact(resolve_pretrained(NAME))
    assert hub_server.count("GET", "/resolve/") >= 4


def test_unpublished_entry_builds_unless_no_build(zoo):
    with pytest.raises(HubError, match=r"cellzoo build majority\.test"):
        resolve_pretrained(NAME, no_build=True)
    assert not (zoo.models / NAME).exists()
    path = resolve_pretrained(NAME, progress=False)
    assert read_origin(path)["source"] == "build"
    assert load_artifact(path).classes == ("B cell", "NK cell", "T cell")


def test_unknown_name_lists_close_ones(zoo):
    from cellzoo.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match=r"majority\.test"):
        resolve_pretrained("majority.tset")


def test_two_processes_pulling_at_once_both_succeed_with_one_copy(zoo, hub_server, published):
    hub_server.download_delay = 0.3  # make the downloads overlap
    script = textwrap.dedent(
        """
        from cellzoo.sources import resolve_pretrained
        print(resolve_pretrained("majority.test"))
        """
    )
    env = {
        **os.environ,
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_OFFLINE": "0",
        "CELLZOO_HOME": str(zoo.home),
        "CELLZOO_REGISTRY_PATH": str(zoo.registry),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    paths = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert paths == {str(zoo.models / NAME)}
    assert sorted(p.name for p in zoo.models.iterdir()) == [".locks", NAME]
    # every pinned file crossed the wire exactly once
    assert {k: v for k, v in hub_server.downloads.items() if k.startswith(REPO)} == {
        f"{REPO}/{rel}": 1 for rel in pretrained_entry(NAME).hub.files
    }
    load_artifact(zoo.models / NAME)


# -- command line ------------------------------------------------------------------------------------


def test_cli_push_then_pull(zoo, hub_server):
    from click.testing import CliRunner

    from cellzoo.cli import main

    artifact = make_artifact(zoo)
    runner = CliRunner()
    pushed = runner.invoke(main, ["push", str(artifact), "--repo", REPO, "--update-registry", "--json"])
    assert pushed.exit_code == 0, pushed.output
    record = json.loads(pushed.output)
    assert record["revision"] == hub_server.head(REPO)
    assert record["registry_file"] == str(zoo.registry / f"{NAME}.toml")

    pulled = runner.invoke(main, ["pull", NAME, "--json"])
    assert pulled.exit_code == 0, pulled.output
    result = json.loads(pulled.output)
    assert result["path"] == str(zoo.models / NAME)
    assert result["origin"].startswith(f"Hub {REPO}@")
    assert result["verify"]["passed"] is True

    refused = runner.invoke(main, ["pull", "majority.tset"])
    assert refused.exit_code == 1 and "error: unknown pretrained checkpoint 'majority.tset'" in refused.output


def test_a_cache_miss_is_not_reported_as_a_missing_file():
    from huggingface_hub import errors as hf

    from cellzoo.hub import hub_errors

    # LocalEntryNotFoundError subclasses EntryNotFoundError, which means a file the registry pins is absent
    offline_miss = "not in the local Hugging Face cache and downloading is off"
    with pytest.raises(HubError, match=offline_miss), hub_errors("org/repo", "main", offline=True):
        raise hf.LocalEntryNotFoundError("no cached snapshot")
    with pytest.raises(IntegrityError, match="lacks a file the registry pins"), hub_errors("org/repo", "main"):
        raise hf.EntryNotFoundError("model.safetensors")
    with pytest.raises(ConfigError, match="not a valid Hub repository name"), hub_errors("bad//name", None):
        raise hf.HFValidationError("bad//name")
