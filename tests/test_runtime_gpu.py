"""The runtime on a GPU: CUDA (and TensorRT when present), IO binding, the fp16 export.

Marked ``gpu``: deselected by default (``-m 'not slow and not gpu'``) and skipped where the CUDA
provider does not start. Run with ``pytest -m gpu tests/test_runtime_gpu.py`` on a GPU machine.
"""

from __future__ import annotations

from pathlib import Path

import anndata
import numpy as np
import pytest
import tiny_models as tiny

from cellzoo.errors import ConfigError
from cellzoo.export import EXPORT_FILE, FP16_FILE, export_onnx
from cellzoo.runtime import Session, annotate_h5ad
from cellzoo.testing import tiny_annotate_adata

pytestmark = pytest.mark.gpu

#: onnxruntime's CUDA provider may use TF32 matmuls; agreement is checked at this tolerance
CUDA_ATOL = 2e-3


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def onnx_dir(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "tinyatt"
    export_onnx(model, out, fp16=True, batch_sizes=(1, 7, 1024))
    return out


@pytest.fixture(scope="module")
def cuda(onnx_dir) -> Session:
    try:
        return Session(onnx_dir / EXPORT_FILE, device="cuda")
    except ConfigError as exc:
        pytest.skip(f"the CUDA provider does not start here: {str(exc)[:120]}")


def inputs(model, n: int = 2000, seed: int = 11) -> np.ndarray:
    return model.golden_inputs(n=n, seed=seed)["x"]


def test_cuda_session_is_really_on_the_gpu(cuda):
    assert cuda.device == "cuda"
    assert cuda.providers[0] == "CUDAExecutionProvider"
    assert cuda._binding  # inputs and outputs go through IO binding


def test_cuda_agrees_with_cpu_and_torch(cuda, onnx_dir, model):
    x = inputs(model)
    got = cuda.run(x)
    cpu = Session(onnx_dir / EXPORT_FILE, device="cpu").run(x)
    want = model.infer({"x": x})
    for name in ("proba", "attention"):
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], cpu[name], atol=CUDA_ATOL)
        np.testing.assert_allclose(got[name], want[name], atol=CUDA_ATOL)
    np.testing.assert_array_equal(np.argmax(got["proba"], 1), np.argmax(want["proba"], 1))


def test_fp16_on_cuda_within_its_tolerance(cuda, onnx_dir, model):
    half = Session(onnx_dir / FP16_FILE, device="cuda")
    assert half.info.precision == "float16" and half.device == "cuda"
    x = inputs(model)
    got = half.run(x)["proba"]
    want = model.infer({"x": x})["proba"]
    atol = half.info.tolerance["atol"]
    np.testing.assert_allclose(got, want, atol=atol, rtol=half.info.tolerance["rtol"])
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * atol
    np.testing.assert_array_equal(np.argmax(got, 1)[clear], np.argmax(want, 1)[clear])


def test_annotate_h5ad_on_cuda_agrees_with_predict(cuda, model, tmp_path):
    adata = tiny_annotate_adata(n_cells=3000, n_genes=tiny.N_GENES, n_classes=3, seed=5, sparse=True)
    adata.write_h5ad(tmp_path / "cells.h5ad")
    run = annotate_h5ad(cuda, tmp_path / "cells.h5ad", tmp_path / "out.h5ad", chunk_size=512)
    assert run.providers[0] == "CUDAExecutionProvider"
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    expected = model.predict(adata)
    np.testing.assert_array_equal(out.obs["cellzoo_tinyatt_label"].astype(str), expected.labels.astype(str))
    np.testing.assert_allclose(out.obsm["cellzoo_tinyatt_proba"], expected.proba, atol=CUDA_ATOL)


def test_tensorrt_when_present(onnx_dir, model):
    try:
        trt = Session(onnx_dir / EXPORT_FILE, device="tensorrt")
    except ConfigError as exc:
        pytest.skip(f"TensorRT does not start here: {str(exc)[:120]}")
    assert trt.providers[0] == "TensorrtExecutionProvider"
    x = inputs(model, n=300)
    np.testing.assert_allclose(trt.run(x)["proba"], model.infer({"x": x})["proba"], atol=CUDA_ATOL)
