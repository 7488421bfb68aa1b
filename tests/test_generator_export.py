"""Generators through ONNX: export validated like the annotators, torch-free sampling, the same cells per seed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import anndata
import numpy as np
import onnx
import pytest
import tiny_models as tiny
from click.testing import CliRunner

import cellzoo
from cellzoo.cli import main
from cellzoo.errors import ArtifactError, ConfigError, InputError, UnknownNameError
from cellzoo.export import EXPORT_FILE, export_onnx
from cellzoo.runtime import Session, sample_cells, verify_onnx


@pytest.fixture(scope="module")
def generator(tiny_zoo):
    return tiny.train_generator()


@pytest.fixture(scope="module")
def gen_artifact(generator, tmp_path_factory) -> Path:
    return cellzoo.save(generator, tmp_path_factory.mktemp("gen") / "tinygen")


@pytest.fixture(scope="module")
def gen_onnx(gen_artifact, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen-onnx") / "tinygen-onnx"
    export_onnx(f"local-dir:{gen_artifact}", out, batch_sizes=(1, 7))
    return out


@pytest.fixture(scope="module")
def gen_session(gen_onnx) -> Session:
    return Session(gen_onnx / EXPORT_FILE, threads=1)


def test_the_export_takes_noise_and_class_codes_and_passes_its_checks(gen_onnx):
    report = json.loads((gen_onnx / "export.json").read_text())
    assert report["passed"]
    names = [c["name"] for c in report["variants"][0]["checks"]]
    assert "input z: dynamic batch × 4" in names and "input y: dynamic batch" in names
    assert any(n.startswith("golden set") for n in names)
    graph = onnx.load(str(gen_onnx / EXPORT_FILE))
    assert [i.name for i in graph.graph.input] == ["z", "y"]
    assert [o.name for o in graph.graph.output] == ["cells"]
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["cellzoo.task"] == "generate"
    entry = json.loads(meta["cellzoo.generator"])
    assert entry["inputs"] == ["z", "y"] and entry["latent_dim"] == 4 and entry["conditional"]
    assert sum(entry["class_counts"]) == 90 and entry["output_state"] == "nonnegative"


def test_onnx_samples_the_torch_models_cells_for_the_same_seed(generator, gen_session):
    for cell_type in (None, generator.classes[1]):
        ours = sample_cells(gen_session, 300, cell_type=cell_type, seed=5)
        want = generator.sample(300, cell_type=cell_type, seed=5)
        np.testing.assert_allclose(ours.X, want.X, atol=1e-4, rtol=1e-4)
        assert list(ours.var_names) == list(want.var_names) and list(ours.obs_names) == list(want.obs_names)
        assert ours.uns["cellzoo"]["input_state"] == want.uns["cellzoo"]["input_state"] == "nonnegative"
        assert ours.uns["cellzoo"]["seed"] == 5 and ours.uns["cellzoo"]["runtime"] == "onnxruntime"
    typed = sample_cells(gen_session, 20, cell_type=generator.classes[2], seed=1)
    assert set(typed.obs["cell_type"]) == {generator.classes[2]}
    assert list(typed.obs["cell_type"].cat.categories) == list(generator.classes)
    other = sample_cells(gen_session, 20, cell_type=generator.classes[0], seed=1)
    assert not np.allclose(typed.X, other.X)  # the class codes reach the graph


def test_verify_runs_the_generators_golden_set(gen_onnx, gen_artifact):
    report = verify_onnx(gen_onnx / EXPORT_FILE, gen_artifact)
    assert report.passed and report.n == 8


def test_bad_sampling_requests_to_the_runtime_are_refused(gen_session, tmp_path):
    with pytest.raises(UnknownNameError, match="was trained on"):
        sample_cells(gen_session, 10, cell_type="no such type")
    for n in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="positive integer"):
            sample_cells(gen_session, n)
    with pytest.raises(InputError, match="is a generator"):
        gen_session.run(np.zeros((2, tiny.N_GENES), dtype=np.float32))


def test_an_edited_generator_entry_is_refused(gen_onnx, tmp_path):
    graph = onnx.load(str(gen_onnx / EXPORT_FILE))
    for prop in graph.metadata_props:
        if prop.key == "cellzoo.generator":
            entry = json.loads(prop.value)
            entry["inputs"] = ["z"]
            prop.value = json.dumps(entry)
    onnx.save(graph, str(tmp_path / "edited.onnx"))
    with pytest.raises(ArtifactError, match=r"cellzoo\.generator"):
        Session(tmp_path / "edited.onnx")


def test_fp16_and_from_counts_are_refused_for_generators(generator, tmp_path):
    for flags in ({"fp16": True}, {"from_counts": True}):
        with pytest.raises(ConfigError, match="is a generator"):
            export_onnx(generator, tmp_path / "out", **flags)
        assert not (tmp_path / "out").exists()


def test_cli_sample_from_an_onnx_export(generator, gen_onnx, tmp_path):
    out = tmp_path / "cells.h5ad"
    args = ["sample", str(gen_onnx), "--n", "50", "--cell-type", generator.classes[0], "--seed", "2", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "onnxruntime" in result.output
    cells = anndata.read_h5ad(out)
    np.testing.assert_allclose(cells.X, generator.sample(50, cell_type=generator.classes[0], seed=2).X, atol=1e-4)
    missing = CliRunner().invoke(
        main, ["sample", str(tmp_path / "nope.onnx"), "--n", "5", "-o", str(tmp_path / "x.h5ad")]
    )
    assert missing.exit_code != 0 and "No such ONNX file" in missing.output
    assert not (tmp_path / "x.h5ad").exists()


def test_onnx_sampling_never_imports_torch(gen_onnx, tmp_path):
    out = tmp_path / "cells.h5ad"
    script = textwrap.dedent(
        f"""
        import json, sys
        from cellzoo.cli import main
        try:
            main(["sample", {str(gen_onnx)!r}, "--n", "40", "--seed", "0", "-o", {str(out)!r}], standalone_mode=False)
        finally:
            heavy = sorted(m for m in ("torch", "scanpy", "onnx", "onnxscript") if m in sys.modules)
            print(json.dumps({{"heavy": heavy}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"heavy": []}
    assert anndata.read_h5ad(out).n_obs == 40


def test_cli_train_keeps_the_last_good_weights_beside_out_on_a_nan_loss(tiny_zoo, tmp_path):
    from cellzoo.testing import tiny_annotate_adata

    data = tmp_path / "cells.h5ad"
    tiny_annotate_adata(n_cells=60, n_genes=tiny.N_GENES, n_classes=3, seed=0).write_h5ad(data)
    out = tmp_path / "gen"
    args = ["train", "tinygen", "--dataset", str(data), "--label-key", "cell_type", "--set", "nan_at=7", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "became nan at epoch 1, step 7" in result.output and "after step 6" in result.output
    assert not out.exists()
    kept = cellzoo.load(f"local-dir:{tmp_path / 'gen.last-good'}")
    assert np.isfinite(kept.sample(4, seed=0).X).all()
