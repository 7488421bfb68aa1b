"""ONNX export: the protocol, the metadata, validation that fails the export, ``cellzoo export``.

The models are tiny torch annotators defined here (about 24 genes) and registered through a
plugin manager with discovery blocked; ``tests/test_runtime.py`` reuses them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch
from click.testing import CliRunner
from tiny_models import (
    N_CLASSES,
    N_GENES,
    make_zoo,
    train,
)

import cellzoo
from cellzoo.errors import ConfigError, IntegrityError, NotFittedError, ProtocolError
from cellzoo.export import EXPORT_FILE, FP16_FILE, FROM_COUNTS_FILE, REPORT_FILE, export_onnx, verify_onnx
from cellzoo.plugins import use_plugin_manager
from cellzoo.runtime import Session

# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo():
    with use_plugin_manager(make_zoo()) as pm:
        yield pm


@pytest.fixture(scope="module")
def artifact(zoo, tmp_path_factory) -> Path:
    return cellzoo.save(train(), tmp_path_factory.mktemp("artifact") / "tinyatt")


@pytest.fixture(scope="module")
def exported(artifact, tmp_path_factory):
    """One export of the artifact with every variant, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("export") / "onnx"
    return export_onnx(f"local-dir:{artifact}", out, fp16=True, from_counts=True), out


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


# -- export and its metadata ------------------------------------------------------------------


def test_export_writes_validated_files(exported, artifact):
    report, out = exported
    assert report.passed, report.summary()
    assert sorted(p.name for p in out.iterdir()) == sorted([EXPORT_FILE, FROM_COUNTS_FILE, FP16_FILE, REPORT_FILE])
    written = json.loads((out / REPORT_FILE).read_text())
    assert written["passed"] is True
    assert [v["file"] for v in written["variants"]] == [EXPORT_FILE, FROM_COUNTS_FILE, FP16_FILE]
    main = report.variant(EXPORT_FILE)
    names = [c.name for c in main.checks]
    for b in (1, 2, 7, 1024):
        assert f"batch {b}: onnxruntime vs torch" in names
    assert any(n.startswith("golden set") for n in names)
    assert "onnx checker (full)" in names
    # fp32 parity is far inside the declared tolerance
    assert max(c.max_abs_diff for c in main.checks if c.max_abs_diff is not None) < 1e-5
    assert main.sha256 and main.size == (out / EXPORT_FILE).stat().st_size


def test_graph_has_a_dynamic_batch_and_named_io(exported):
    _, out = exported
    model = onnx.load(str(out / EXPORT_FILE))
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "x"
    assert dims[0].dim_param and not dims[0].HasField("dim_value")
    assert dims[1].dim_value == N_GENES
    assert [o.name for o in model.graph.output] == ["proba", "attention"]
    assert not (out / "model.onnx.data").exists()  # self-contained below 2 GB


def test_metadata_carries_what_deployment_needs(exported, artifact):
    _, out = exported
    meta = metadata(out / EXPORT_FILE)
    config = json.loads((artifact / "config.json").read_text())
    assert meta["cellzoo.architecture"] == "tinyatt"
    assert json.loads(meta["cellzoo.genes"]) == config["state"]["genes"]["genes"]
    assert meta["cellzoo.gene_namespace"] == config["state"]["genes"]["namespace"]
    assert json.loads(meta["cellzoo.labels"]) == config["state"]["classes"]
    assert meta["cellzoo.parent_sha256"] == config["files"]["model.safetensors"]["sha256"]
    assert json.loads(meta["cellzoo.parent"])["saved"] is True
    contract = json.loads(meta["cellzoo.input_contract"])
    assert contract == {"state": "log1p_norm", "target_sum": 10000.0}
    spec_input = json.loads(meta["cellzoo.input"])
    assert spec_input["state"] == "log1p_norm" and spec_input["in_graph"] == []
    assert any("log1p" in step for step in spec_input["before_graph"])
    outputs = json.loads(meta["cellzoo.outputs"])
    assert [o["name"] for o in outputs] == ["proba", "attention"]
    assert outputs[0]["shape"] == ["batch", N_CLASSES] and outputs[1]["shape"] == ["batch", N_GENES]
    assert "probabilities" in outputs[0]["meaning"]
    versions = json.loads(meta["cellzoo.versions"])
    assert versions["torch"] == str(torch.__version__) and versions["cellzoo"] == cellzoo.__version__
    assert int(versions["opset"]) == onnx.load(str(out / EXPORT_FILE)).opset_import[0].version
    assert meta["cellzoo.precision"] == "float32"


def test_onnx_matches_the_model_on_new_cells(exported, artifact):
    _, out = exported
    model = cellzoo.load(f"local-dir:{artifact}")
    x = model.golden_inputs(n=33, seed=7)["x"]
    got = Session(out / EXPORT_FILE).run(x)
    want = model.infer({"x": x})
    np.testing.assert_allclose(got["proba"], want["proba"], atol=1e-6)
    np.testing.assert_allclose(got["attention"], want["attention"], atol=1e-7)


def test_from_counts_variant_normalises_in_the_graph(exported, artifact):
    report, out = exported
    assert report.variant(FROM_COUNTS_FILE).passed
    meta = metadata(out / FROM_COUNTS_FILE)
    spec_input = json.loads(meta["cellzoo.input"])
    assert spec_input["state"] == "counts" and spec_input["in_graph"]
    model = cellzoo.load(f"local-dir:{artifact}")
    counts = np.random.default_rng(3).poisson(2.0, size=(9, N_GENES)).astype(np.float32)
    counts[4] = 0  # an empty cell stays finite
    got = Session(out / FROM_COUNTS_FILE).run(counts)["proba"]
    from cellzoo.data.contract import to_input_state

    want = model.infer({"x": np.asarray(to_input_state(counts, "counts", model.contract))})["proba"]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.isfinite(got).all()


def test_fp16_variant_has_its_own_tolerance_and_argmax_check(exported):
    report, out = exported
    fp16 = report.variant(FP16_FILE)
    assert fp16.passed, report.summary()
    assert fp16.precision == "float16" and fp16.atol > report.variant(EXPORT_FILE).atol
    agreement = [c for c in fp16.checks if c.name == "argmax agreement with float32"]
    assert agreement and agreement[0].passed
    meta = metadata(out / FP16_FILE)
    assert meta["cellzoo.precision"] == "float16"
    initializers = onnx.load(str(out / FP16_FILE)).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in initializers)
    assert weight_bytes(out / FP16_FILE) < 0.6 * weight_bytes(out / EXPORT_FILE)


def weight_bytes(path: Path) -> int:
    return sum(onnx.numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)


def test_unsaved_model_records_the_hash_of_its_weights(zoo, tmp_path):
    from cellzoo.runtime.verify import weights_sha256

    model = train(seed=1)
    report = export_onnx(model, tmp_path / "onnx", batch_sizes=(1, 5))
    parent = json.loads(metadata(tmp_path / "onnx" / EXPORT_FILE)["cellzoo.parent"])
    assert parent["saved"] is False and parent["sha256"] is None
    assert parent["weights_sha256"] == report.weights_sha256 == weights_sha256(model.state_tensors())
    # saved later, the artifact holds the same numbers, so the export verifies against it
    saved = cellzoo.save(model, tmp_path / "art")
    assert verify_onnx(tmp_path / "onnx" / EXPORT_FILE, saved).passed


# -- validation fails the export ---------------------------------------------------------------


def test_a_mismatch_fails_the_export_and_writes_nothing(zoo, tmp_path):
    model = train("tinynoisy")
    out = tmp_path / "noisy"
    with pytest.raises(IntegrityError, match="does not reproduce") as info:
        export_onnx(model, out, batch_sizes=(1, 7))
    assert "FAIL batch 7: onnxruntime vs torch" in str(info.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_baked_batch_size_fails_validation(zoo, tmp_path):
    # torch's exporter falls back to the example's batch size here; validation must catch it
    with pytest.raises(IntegrityError) as info:
        export_onnx(train("tinybaked"), tmp_path / "baked")
    failed = {c.name for c in info.value.report.variant(EXPORT_FILE).checks if not c.passed}
    assert f"input x: dynamic batch × {N_GENES}" in failed
    assert "batch 7: onnxruntime vs torch" in failed and "batch 2: onnxruntime vs torch" not in failed
    assert not (tmp_path / "baked").exists()


def test_models_that_cannot_be_exported(zoo, tmp_path):
    with pytest.raises(ProtocolError, match="exportable=False"):
        export_onnx(train("tinyplain"), tmp_path / "a")
    with pytest.raises(NotFittedError, match="not trained"):
        export_onnx(cellzoo.create_model("tinyatt"), tmp_path / "b")
    counts_model = train(input_state="counts")
    with pytest.raises(ConfigError, match="--from-counts"):
        export_onnx(counts_model, tmp_path / "c", from_counts=True)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        export_onnx(counts_model, tmp_path / "d")
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"


def test_counts_model_graph_takes_counts(zoo, tmp_path):
    model = train(input_state="counts")
    report = export_onnx(model, tmp_path / "onnx", batch_sizes=(1, 7))
    assert report.passed
    info = Session(tmp_path / "onnx" / EXPORT_FILE).info
    assert info.input_state == "counts" and info.contract_state == "counts"


# -- verify ------------------------------------------------------------------------------------


def test_verify_onnx_against_its_artifact(exported, artifact, zoo, tmp_path):
    _, out = exported
    report = verify_onnx(out / EXPORT_FILE, artifact)
    assert report.passed, report.summary()
    assert {c.name for c in report.checks} == {"proba", "attention"}
    assert verify_onnx(out / FP16_FILE, artifact).passed
    with pytest.raises(ConfigError, match="from-counts"):
        verify_onnx(out / FROM_COUNTS_FILE, artifact)
    other = cellzoo.save(train(seed=5), tmp_path / "other")
    with pytest.raises(IntegrityError, match="different models"):
        verify_onnx(out / EXPORT_FILE, other)


# -- the command line --------------------------------------------------------------------------


def cli(*args: str):
    from cellzoo.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "200"})


def test_cli_export(artifact, zoo, tmp_path):
    out = tmp_path / "cli-onnx"
    result = cli("export", f"local-dir:{artifact}", "-o", out, "--opset", "18")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and str(out) in result.output
    assert onnx.load(str(out / EXPORT_FILE)).opset_import[0].version == 18
    again = cli("export", f"local-dir:{artifact}", "-o", out)
    assert again.exit_code == 1
    assert again.stderr.startswith("error: ") and "--overwrite" in again.stderr
    assert "Traceback" not in again.output


def test_cli_export_failure_is_one_error_line(zoo, tmp_path):
    noisy = cellzoo.save(train("tinynoisy"), tmp_path / "noisy-art")
    result = cli("export", f"local-dir:{noisy}", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the exported model does not reproduce")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
