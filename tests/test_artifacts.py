"""Artifacts: save → load round trip, strict and safe loading, integrity, golden verification."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import cellzoo
from cellzoo import Annotator, ModelSpec, check_state_keys, hookimpl
from cellzoo.artifacts import (
    CONFIG_FILE,
    GOLDEN_FILE,
    WEIGHTS_FILE,
    load_artifact,
    read_safetensors_header,
    save,
    sha256_file,
    verify,
)
from cellzoo.errors import ArtifactError, ConfigError, IntegrityError, NotFittedError
from cellzoo.testing import tiny_annotate_adata

# -- a toy model with the awkward cases: float64 and int64 tensors, a tuple config, failure switches


@dataclass(frozen=True)
class ToyConfig:
    hidden: tuple[int, ...] = (4, 2)
    fail_infer: bool = False
    text_tensor: bool = False
    seed: int = 0


class Toy(Annotator):
    input_state = "counts"

    def __init__(self, config: ToyConfig | None = None):
        super().__init__(config or ToyConfig())
        self.tensors: dict[str, np.ndarray] = {}

    def _fit(self, X, y):
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        onehot = np.eye(len(self.classes))[y]
        rng = np.random.default_rng(self.seed)
        self.tensors = {
            "weight": (X.T @ onehot / onehot.sum(0) + rng.normal(0, 0.01, (X.shape[1], len(self.classes)))).astype(
                np.float32
            ),
            "gene_mean": X.mean(axis=0).astype(np.float64),  # float64 on purpose: must stay float64
            "n_seen": np.array([X.shape[0]], dtype=np.int64),
        }

    def _predict_proba(self, X):
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        z = np.log1p(X) @ self.tensors["weight"]
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)

    def state_tensors(self):
        out = dict(self.tensors)
        if self.config.text_tensor:
            out["names"] = np.array(self.classes, dtype=object)
        return out

    def load_state_tensors(self, tensors):
        g, c = len(self.manifest.genes), len(self.classes)
        expected = {"weight": np.zeros((g, c)), "gene_mean": np.zeros(g), "n_seen": np.zeros(1)}
        check_state_keys(expected, tensors, self.name)
        self.tensors = {k: np.asarray(v) for k, v in tensors.items()}

    def infer(self, inputs):
        if self.config.fail_infer:
            raise RuntimeError("infer exploded")
        return super().infer(inputs)


class ToyPlugin:
    @hookimpl
    def cellzoo_models(self):
        return [ModelSpec("toy", "annotate", builder=Toy, config=ToyConfig, summary="Test model.", license="MIT")]


@pytest.fixture
def toy_pm(zoo_pm):
    zoo_pm.register(ToyPlugin(), name="toy-plugin", distribution="toy-dist", version="1.0")
    return zoo_pm


@pytest.fixture
def adata():
    return tiny_annotate_adata(n_cells=30, n_genes=12, n_classes=3, seed=0)


@pytest.fixture
def fitted(toy_pm, adata):
    return cellzoo.create_model("toy").fit(adata, "cell_type")


@pytest.fixture
def artifact(fitted, tmp_path):
    return save(fitted, tmp_path / "toy-artifact", recipe={"dataset": "tiny"}, metrics={"accuracy": 0.875})


def _config(directory: Path) -> dict:
    return json.loads((directory / CONFIG_FILE).read_text())


def _replace_file(directory: Path, rel: str, data: bytes) -> None:
    """Overwrite a file of the artifact and record its new hash, so only its content is at fault."""
    (directory / rel).write_bytes(data)
    config = _config(directory)
    config["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (directory / CONFIG_FILE).write_text(json.dumps(config))


def _edit_config(directory: Path, **changes) -> None:
    config = _config(directory)
    config.update(changes)
    (directory / CONFIG_FILE).write_text(json.dumps(config))


# -- round trip -------------------------------------------------------------------------------------


def test_round_trip_gives_identical_predictions_and_keeps_dtypes(fitted, artifact, adata):
    files = {p.relative_to(artifact).as_posix() for p in artifact.rglob("*") if p.is_file()}
    assert files == {CONFIG_FILE, "README.md", WEIGHTS_FILE, GOLDEN_FILE}
    loaded = load_artifact(artifact)
    assert type(loaded) is Toy and loaded.spec == fitted.spec
    assert loaded.config == fitted.config and loaded.config.hidden == (4, 2)  # tuple survives JSON
    assert loaded.classes == fitted.classes
    for key, value in fitted.state_tensors().items():
        assert loaded.tensors[key].dtype == value.dtype, key
        np.testing.assert_array_equal(loaded.tensors[key], value)
    before, after = fitted.predict(adata), loaded.predict(adata)
    np.testing.assert_array_equal(after.labels, before.labels)
    np.testing.assert_array_equal(after.proba, before.proba)


def test_config_json_records_what_is_needed(artifact, fitted):
    config = _config(artifact)
    assert config["cellzoo_format"] == 1
    assert config["architecture"] == "toy" and config["task"] == "annotate"
    assert config["config"] == {"hidden": [4, 2], "fail_infer": False, "text_tensor": False, "seed": 0}
    assert config["state"]["classes"] == list(fitted.classes)
    assert config["state"]["genes"]["genes"] == list(fitted.manifest.genes)
    assert config["state"]["input_contract"]["state"] == "counts"
    assert config["plugin"] == {"name": "toy-plugin", "distribution": "toy-dist", "version": "1.0"}
    assert config["versions"]["cellzoo"] == cellzoo.__version__
    assert config["versions"]["numpy"] == np.__version__
    assert ("torch" in config["versions"]) == ("torch" in sys.modules)
    assert config["recipe"] == {"dataset": "tiny"} and config["metrics"] == {"accuracy": 0.875}
    assert config["golden"] == {"atol": Toy.golden_atol, "rtol": Toy.golden_rtol, "n": 8}
    for rel in (WEIGHTS_FILE, GOLDEN_FILE):
        assert config["files"][rel] == {"sha256": sha256_file(artifact / rel), "size": (artifact / rel).stat().st_size}
    golden = st_load((artifact / GOLDEN_FILE).read_bytes())
    assert set(golden) == {"input.x", "output.proba"}
    assert golden["input.x"].shape == (8, 12)


def test_model_card_has_hub_metadata_usage_and_metrics(artifact):
    card = (artifact / "README.md").read_text()
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert "library_name: cellzoo" in front and "license: mit" in front
    assert "- cellzoo" in front and "- annotate" in front
    assert "model-index:" in front and "type: accuracy" in front and "value: 0.875" in front
    assert 'cellzoo.load("local-dir:' in body
    assert "12 (namespace" in body  # gene manifest summary
    assert "B cell" in body and "| tiny | accuracy | 0.875 |" in body


def test_cellzoo_load_local_dir_and_path(artifact):
    assert cellzoo.load(f"local-dir:{artifact}").is_fitted
    assert cellzoo.load(artifact).is_fitted  # a Path object is unambiguous


def test_sha256_file_reads_in_chunks(tmp_path):
    path = tmp_path / "blob"
    data = bytes(range(256)) * 100
    path.write_bytes(data)
    assert sha256_file(path, chunk_size=7) == hashlib.sha256(data).hexdigest()


# -- save refuses, and leaves nothing behind ---------------------------------------------------------


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


def test_unfitted_model_is_refused_and_nothing_written(toy_pm, tmp_path):
    target = tmp_path / "out" / "model"
    with pytest.raises(NotFittedError, match=r"not trained"):
        save(cellzoo.create_model("toy"), target)
    assert not target.exists() and _leftovers(tmp_path / "out") == []


def test_failing_infer_leaves_nothing(toy_pm, adata, tmp_path):
    model = cellzoo.create_model("toy", fail_infer=True).fit(adata, "cell_type")
    with pytest.raises(RuntimeError, match=r"infer exploded"):
        save(model, tmp_path / "model")
    assert _leftovers(tmp_path) == []


def test_text_tensors_are_refused_with_advice(toy_pm, adata, tmp_path):
    model = cellzoo.create_model("toy", text_tensor=True).fit(adata, "cell_type")
    with pytest.raises(ArtifactError, match=r"'names'.*artifact_state"):
        save(model, tmp_path / "model")
    assert _leftovers(tmp_path) == []


def test_overwrite_false_refuses_a_non_empty_directory(fitted, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match=r"not empty.*overwrite=True"):
        save(fitted, target)
    assert (target / "notes.txt").read_text() == "mine" and not (target / CONFIG_FILE).exists()
    save(fitted, target, overwrite=True)
    assert (target / CONFIG_FILE).is_file() and not (target / "notes.txt").exists()
    assert _leftovers(tmp_path) == ["model"]


def test_an_empty_directory_is_fine(fitted, tmp_path):
    (tmp_path / "empty").mkdir()
    assert (save(fitted, tmp_path / "empty") / CONFIG_FILE).is_file()


def test_saving_onto_a_file_is_refused(fitted, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match=r"is a file"):
        save(fitted, tmp_path / "file")


# -- strict loading ------------------------------------------------------------------------------------


def _rewrite_weights(directory: Path, change) -> None:
    tensors = st_load((directory / WEIGHTS_FILE).read_bytes())
    _replace_file(directory, WEIGHTS_FILE, st_save(change(tensors)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: {k: v for k, v in t.items() if k != "weight"}, r"missing tensors \['weight'\]"),
        (lambda t: {**t, "extra": np.zeros(3, np.float32)}, r"unexpected tensors \['extra'\]"),
        (lambda t: {**t, "weight": np.zeros((5, 3), np.float32)}, r"'weight' has shape \(5, 3\)"),
    ],
    ids=["missing", "unexpected", "wrong-shape"],
)
def test_weights_load_strictly(artifact, change, message):
    _rewrite_weights(artifact, change)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(artifact)


def test_a_lax_plugin_is_caught_by_the_loader(artifact, monkeypatch):
    def lax(self, tensors):  # ignores what it does not know
        self.tensors = {k: np.asarray(tensors[k]) for k in ("weight", "gene_mean", "n_seen")}

    monkeypatch.setattr(Toy, "load_state_tensors", lax)
    _rewrite_weights(artifact, lambda t: {**t, "extra": np.zeros(3, np.float32)})
    with pytest.raises(ArtifactError, match=r"holds tensors \['extra'\]"):
        load_artifact(artifact)


# -- not an artifact ------------------------------------------------------------------------------------


def test_missing_path(toy_pm, tmp_path):
    with pytest.raises(ArtifactError, match=r"does not exist.*config.json, model.safetensors"):
        load_artifact(tmp_path / "nope")


def test_a_file_is_not_a_directory(toy_pm, artifact):
    with pytest.raises(ArtifactError, match=r"is a file, not an artifact directory"):
        load_artifact(artifact / WEIGHTS_FILE)


def test_directory_without_config(toy_pm, tmp_path):
    with pytest.raises(ArtifactError, match=r"has no config.json, so it is not a cellzoo artifact"):
        load_artifact(tmp_path)


def test_bad_json(artifact):
    (artifact / CONFIG_FILE).write_text('{"cellzoo_format": 1,')
    with pytest.raises(ArtifactError, match=r"not valid JSON \(line 1"):
        load_artifact(artifact)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cellzoo_format": 99}, "newer than this cellzoo.*upgrade"),
        ({"cellzoo_format": 0}, "reads format 1"),
        ({"config": [1, 2]}, "'config' must be a dict"),
        ({"files": None}, "'files' must be a dict"),
    ],
)
def test_invalid_config_json(artifact, changes, message):
    _edit_config(artifact, **changes)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(artifact)


def test_missing_required_key(artifact):
    config = _config(artifact)
    del config["state"]
    (artifact / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"lacks the key 'state'"):
        load_artifact(artifact)


def test_unknown_architecture_is_never_imported(artifact):
    _edit_config(artifact, architecture="cellzoo_evil_module")
    with pytest.raises(ArtifactError, match=r"provided by no installed plugin.*install the plugin.*toy"):
        load_artifact(artifact)
    assert "cellzoo_evil_module" not in sys.modules


def test_config_that_no_longer_fits_the_plugin(artifact):
    config = _config(artifact)
    config["config"]["renamed_option"] = 3
    (artifact / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"does not fit architecture 'toy'.*renamed_option"):
        load_artifact(artifact)


def test_files_outside_the_artifact_are_refused(artifact):
    config = _config(artifact)
    config["files"]["../../etc/passwd"] = {"sha256": "0" * 64, "size": 1}
    (artifact / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"refusing to read outside"):
        load_artifact(artifact)


def test_a_plugin_version_change_warns(artifact, toy_pm):
    toy_pm.unregister("toy-plugin")
    toy_pm.register(ToyPlugin(), name="toy-plugin", distribution="toy-dist", version="2.0")
    with pytest.warns(UserWarning, match=r"written by toy-dist 1.0; the installed version is 2.0"):
        load_artifact(artifact)


# -- safetensors checked before anything is built ----------------------------------------------------------


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"weight": [1.0, 2.0]}))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda ok: pickle.dumps({"weight": np.zeros(3).tolist()}), r"looks like a Python pickle \(protocol"),
        (lambda ok: _zip_bytes(), "looks like a zip archive — the format torch.save writes"),
        (lambda ok: ok[:20], "header length"),
        (lambda ok: ok[:-4], "the file is truncated"),
        (lambda ok: ok[:5], "only 5 bytes"),
        (lambda ok: bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8)), "not a valid safetensors"),
        (lambda ok: b"<html>Service unavailable</html>", "a text file"),
        (lambda ok: (3).to_bytes(8, "little") + b"abc", "header is not UTF-8 JSON"),
        (lambda ok: (2).to_bytes(8, "little") + b"[]", "header is a JSON list"),
    ],
    ids=["pickle", "zip", "truncated-header", "truncated-data", "tiny", "garbage", "html", "not-json", "not-object"],
)
def test_weight_files_that_are_not_safetensors(artifact, monkeypatch, content, message):
    built = []
    monkeypatch.setattr(Toy, "__init__", lambda self, config=None: built.append(1))
    ok = (artifact / WEIGHTS_FILE).read_bytes()
    _replace_file(artifact, WEIGHTS_FILE, content(ok))
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(artifact)
    assert str(artifact / WEIGHTS_FILE) in str(info.value)
    assert "never unpickles" in str(info.value)
    assert built == []  # nothing was built before the file was checked


def _header_file(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "F32 × \\[2\\] needs 8"),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8, "4 bytes follow the last tensor"),
        ({"w": {"dtype": "O", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype 'O'"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "shape \\[-1\\]"),
        ({"w": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "lacks data_offsets"),
        (
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            b"\0" * 8,
            "starts at data byte 0, expected 4",
        ),
    ],
    ids=["size-mismatch", "trailing-bytes", "dtype", "shape", "keys", "overlap"],
)
def test_inconsistent_headers(tmp_path, header, data, message):
    path = tmp_path / "w.safetensors"
    path.write_bytes(_header_file(header, data))
    with pytest.raises(ArtifactError, match=message):
        read_safetensors_header(path)


def test_a_valid_header_is_returned(artifact):
    header = read_safetensors_header(artifact / WEIGHTS_FILE)
    assert header["gene_mean"]["dtype"] == "F64" and header["n_seen"]["dtype"] == "I64"
    assert header["weight"]["shape"] == [12, 3]


def test_huge_header_length_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes((200 * 1024 * 1024).to_bytes(8, "little") + b"{}" + b"\0" * 10)
    with pytest.raises(ArtifactError, match=r"header length of 209715200 bytes"):
        read_safetensors_header(path)


# -- integrity ------------------------------------------------------------------------------------------


def test_tampered_weights_raise_integrity_error_naming_the_file(artifact):
    path = artifact / WEIGHTS_FILE
    expected = _config(artifact)["files"][WEIGHTS_FILE]["sha256"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as info:
        load_artifact(artifact)
    message = str(info.value)
    assert WEIGHTS_FILE in message and expected in message and hashlib.sha256(data).hexdigest() in message
    assert load_artifact(artifact, verify_hashes=False).is_fitted  # the switch really skips the check


def test_truncated_file_is_an_integrity_error(artifact):
    path = artifact / GOLDEN_FILE
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match=r"test/io.safetensors .* has \d+ bytes, expected \d+"):
        load_artifact(artifact)


def test_missing_listed_file(artifact):
    (artifact / GOLDEN_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"listed in config.json but missing"):
        load_artifact(artifact)


# -- verify ------------------------------------------------------------------------------------------------


def test_verify_passes_on_a_fresh_artifact(artifact):
    report = verify(artifact)
    assert report.passed and report.n == 8
    assert [c.name for c in report.checks] == ["proba"]
    assert report.checks[0].max_abs_diff == 0.0
    assert "PASS" in report.summary()
    assert report.to_json()["passed"] is True
    assert cellzoo.verify(f"local-dir:{artifact}").passed
    assert verify(load_artifact(artifact)).passed


def test_verify_detects_changed_outputs(artifact):
    golden = st_load((artifact / GOLDEN_FILE).read_bytes())
    golden["output.proba"] = golden["output.proba"] + np.float32(0.01)
    _replace_file(artifact, GOLDEN_FILE, st_save(golden))
    report = verify(artifact)
    assert not report.passed
    check = report.checks[0]
    assert check.max_abs_diff == pytest.approx(0.01, rel=1e-3) and check.problem.startswith("exceeds the tolerance")
    assert "FAIL" in report.summary()
    assert verify(artifact, atol=0.02).passed  # a looser tolerance accepts it
    with pytest.raises(IntegrityError, match=r"no longer reproduces"):
        verify(artifact, strict=True)


def test_verify_detects_missing_and_reshaped_outputs(artifact):
    golden = st_load((artifact / GOLDEN_FILE).read_bytes())
    golden["output.proba"] = golden["output.proba"][:, :2].copy()
    golden["output.attention"] = np.zeros((8, 12), np.float32)
    _replace_file(artifact, GOLDEN_FILE, st_save(golden))
    problems = {c.name: c.problem for c in verify(artifact).checks}
    assert problems == {"attention": "the model no longer returns it", "proba": "shape is now (8, 3)"}


def test_verify_rehashes_the_golden_file(artifact):
    model = load_artifact(artifact)
    path = artifact / GOLDEN_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"test/io.safetensors"):
        verify(model)


def test_verify_needs_a_saved_model(fitted):
    with pytest.raises(ArtifactError, match=r"Save the model with cellzoo.save"):
        verify(fitted)


def test_unknown_source_string_in_verify_goes_through_load_rules(toy_pm):
    with pytest.raises(ConfigError, match=r"local-dir:"):
        cellzoo.verify("./not/a/dir")
