"""Offline bundles: verified checkpoints in a folder, loadable by name with CELLZOO_OFFLINE_DIR."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cellzoo.artifacts import load_artifact, verify
from cellzoo.build import build_into
from cellzoo.bundle import bundle
from cellzoo.cache import read_index
from cellzoo.errors import ConfigError, IntegrityError, UnknownNameError
from cellzoo.hub import push
from cellzoo.pretrained import pretrained_entry
from cellzoo.sources import resolve_pretrained

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("hub_server")  # test helpers and fixtures, loaded as a plugin below
from hub_server import write_registry_entry  # noqa: E402

pytest_plugins = ["hub_server"]  # the loopback Hub and the isolated-zoo fixtures


@pytest.fixture
def two_entries(zoo):
    write_registry_entry(zoo.registry, "random_labels.test", dataset=str(zoo.data), seed=4)
    return zoo


def go_offline(monkeypatch, tmp_path: Path, bundle_dir: Path) -> Path:
    """Another machine: an empty cache, no Hub, only the bundle."""
    from huggingface_hub import constants

    fresh = tmp_path / "airgapped-home"
    monkeypatch.setenv("CELLZOO_HOME", str(fresh))
    monkeypatch.setenv("CELLZOO_OFFLINE_DIR", str(bundle_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return fresh


def test_bundle_holds_verified_artifacts_and_an_index(two_entries):
    out = bundle(["majority.test", "random_labels.test", "majority.test"], two_entries.tmp / "bundle", progress=False)
    index = read_index(out)
    assert list(index["models"]) == ["majority.test", "random_labels.test"]
    for name, record in index["models"].items():
        assert record["verified"]["passed"] is True
        assert record["origin"]["source"] == "build"
        assert set(record["files"]) == {"config.json", "model.safetensors", "test/io.safetensors", "README.md"}
        assert record["files"]["config.json"]["size"] == (out / name / "config.json").stat().st_size
    readme = (out / "README.md").read_text()
    assert "CELLZOO_OFFLINE_DIR" in readme and "majority.test" in readme


def test_a_bundle_loads_by_name_on_a_machine_without_network_or_cache(two_entries, monkeypatch):
    out = bundle(["majority.test", "random_labels.test"], two_entries.tmp / "bundle", progress=False)
    fresh = go_offline(monkeypatch, two_entries.tmp, out)
    path = resolve_pretrained("random_labels.test")
    assert path == out / "random_labels.test"
    model = load_artifact(path)
    assert verify(model).passed and model.config.seed == 4
    assert not (fresh / "models" / "random_labels.test").exists()  # nothing copied, nothing built


def test_a_changed_file_in_a_bundle_is_refused(two_entries, monkeypatch):
    out = bundle(["majority.test"], two_entries.tmp / "bundle", progress=False)
    weights = out / "majority.test" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    go_offline(monkeypatch, two_entries.tmp, out)
    with pytest.raises(IntegrityError, match=r"model\.safetensors in the bundle .*does not match its pinned hash"):
        resolve_pretrained("majority.test")


def test_bad_requests_write_nothing(two_entries):
    target = two_entries.tmp / "bundle"
    with pytest.raises(UnknownNameError, match=r"majority\.tset"):
        bundle(["majority.test", "majority.tset"], target, progress=False)
    assert not target.exists() and not (two_entries.models / "majority.test").exists()
    with pytest.raises(ConfigError, match="at least one checkpoint"):
        bundle([], target)
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        bundle(["majority.test"], target, progress=False)
    assert (target / "keep.txt").read_text() == "mine"
    bundle(["majority.test"], target, overwrite=True, progress=False)
    assert not (target / "keep.txt").exists() and (target / "index.json").is_file()


def test_offline_dir_must_be_a_bundle(two_entries, monkeypatch):
    monkeypatch.setenv("CELLZOO_OFFLINE_DIR", str(two_entries.tmp))
    with pytest.raises(ConfigError, match="not a cellzoo bundle"):
        resolve_pretrained("majority.test")


def test_a_bundle_of_a_published_checkpoint_records_its_commit(zoo, hub_server, monkeypatch):
    artifact = build_into(pretrained_entry("majority.test"), zoo.tmp / "artifact", progress=False)
    pushed = push(artifact, "testorg/majority.test", update_registry=True)
    out = bundle(["majority.test"], zoo.tmp / "bundle", progress=False)
    record = read_index(out)["models"]["majority.test"]
    assert record["origin"] == {"source": "hub", "repo_id": "testorg/majority.test", "revision": pushed.revision}
    assert record["pinned_revision"] == pushed.revision
    pinned = pretrained_entry("majority.test").hub.files
    assert {p: r["sha256"] for p, r in record["files"].items()} == {p: r.sha256 for p, r in pinned.items()}
    go_offline(monkeypatch, zoo.tmp, out)
    hub_server.stop()
    load_artifact(resolve_pretrained("majority.test"))


def test_cli_bundle(two_entries):
    from click.testing import CliRunner

    from cellzoo.cli import main

    runner = CliRunner()
    out = two_entries.tmp / "cli-bundle"
    result = runner.invoke(main, ["bundle", "majority.test", "random_labels.test", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["models"]) == ["majority.test", "random_labels.test"]
    again = runner.invoke(main, ["bundle", "majority.test", "-o", str(out)])
    assert again.exit_code == 1 and "error:" in again.output and "not empty" in again.output
