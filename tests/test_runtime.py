"""The torch-free runtime: sessions, providers, streaming annotation of .h5ad files, ``cellzoo run``.

The model is the tiny attention annotator of ``tests/test_export.py``, exported once per module.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import tiny_models as tiny
from click.testing import CliRunner

from cellzoo.errors import ArtifactError, ConfigError, GeneAlignmentError, InputError
from cellzoo.export import EXPORT_FILE, FROM_COUNTS_FILE, export_onnx
from cellzoo.paths import home
from cellzoo.runtime import ProviderFallbackWarning, Session, annotate_adata, annotate_h5ad
from cellzoo.runtime import annotate as annotate_module
from cellzoo.testing import log1p_normalised, tiny_annotate_adata, z_scored

N_GENES = tiny.N_GENES
LABEL = "cellzoo_tinyatt_label"
PROBA = "cellzoo_tinyatt_proba"
ATTENTION = "cellzoo_tinyatt_attention"


@pytest.fixture(scope="module")
def zoo(tiny_zoo):
    return tiny_zoo


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def artifact(tiny_artifact) -> Path:
    return tiny_artifact


@pytest.fixture(scope="module")
def onnx_dir(artifact, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "tinyatt-onnx"
    export_onnx(f"local-dir:{artifact}", out, from_counts=True, batch_sizes=(1, 7))
    return out


@pytest.fixture(scope="module")
def session(onnx_dir) -> Session:
    return Session(onnx_dir / EXPORT_FILE, threads=1)


def counts_data(n_cells: int = 300, n_genes: int = N_GENES, seed: int = 3, sparse: bool = True) -> anndata.AnnData:
    """Counts like the training data (gene_000…), with a user obs column, obsm and a layer to keep."""
    adata = tiny_annotate_adata(n_cells=n_cells, n_genes=n_genes, n_classes=3, seed=seed, sparse=sparse)
    adata.obs["batch"] = pd.Categorical(np.where(np.arange(n_cells) % 2, "b1", "b2"))
    adata.obsm["X_umap"] = np.random.default_rng(seed).normal(size=(n_cells, 2)).astype(np.float32)
    return adata


def write(adata: anndata.AnnData, path: Path) -> Path:
    adata.write_h5ad(path)
    return path


def assert_agrees(out: anndata.AnnData, model, query: anndata.AnnData, atol: float = 1e-5) -> None:
    """Same labels and probabilities (within tolerance) as the torch model's own predict."""
    expected = model.predict(query)
    np.testing.assert_array_equal(out.obs[LABEL].astype(str).to_numpy(), expected.labels.astype(str))
    np.testing.assert_allclose(out.obsm[PROBA], expected.proba, atol=atol)
    assert list(out.obs[LABEL].cat.categories) == list(model.classes)
    assert list(out.uns["cellzoo_tinyatt_classes"]) == list(model.classes)


# -- torch-free --------------------------------------------------------------------------------


def test_runtime_never_imports_torch(onnx_dir, artifact, tmp_path):
    data = write(counts_data(n_cells=50), tmp_path / "cells.h5ad")
    script = textwrap.dedent(
        f"""
        import json, sys
        import cellzoo.runtime
        from cellzoo.runtime import Session, annotate_h5ad, verify_onnx
        session = Session({str(onnx_dir / EXPORT_FILE)!r})
        run = annotate_h5ad(session, {str(data)!r}, {str(tmp_path / "out.h5ad")!r})
        report = verify_onnx({str(onnx_dir / EXPORT_FILE)!r}, {str(artifact)!r})
        heavy = sorted(m for m in ("torch", "scanpy", "onnx", "onnxscript") if m in sys.modules)
        print(json.dumps({{"heavy": heavy, "cells": run.n_cells, "verified": report.passed}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"heavy": [], "cells": 50, "verified": True}


# -- annotating files --------------------------------------------------------------------------


def test_annotate_h5ad_agrees_with_predict(session, model, tmp_path):
    adata = counts_data()
    data = write(adata, tmp_path / "cells.h5ad")
    run = annotate_h5ad(session, data, tmp_path / "out.h5ad", chunk_size=64)
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert_agrees(out, model, adata)
    attention = out.obsm[ATTENTION]
    assert attention.shape == (adata.n_obs, N_GENES)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-5)
    assert list(out.uns["cellzoo_tinyatt_attention_genes"]) == list(model.manifest.genes)
    # the user's data is untouched
    assert (out.X != adata.X).nnz == 0
    pd.testing.assert_series_equal(out.obs["batch"], adata.obs["batch"])
    np.testing.assert_array_equal(out.obsm["X_umap"], adata.obsm["X_umap"])
    assert run.n_cells == adata.n_obs and run.data_state == "counts" and run.graph_state == "log1p_norm"
    assert run.alignment.fraction == 1.0 and sum(run.label_counts.values()) == adata.n_obs
    assert run.infer_seconds > 0 and run.output == str(tmp_path / "out.h5ad")


def test_backed_anndata_with_dense_x(session, model, tmp_path):
    adata = counts_data(sparse=False)
    data = write(adata, tmp_path / "dense.h5ad")
    backed = anndata.read_h5ad(data, backed="r")
    annotate_h5ad(session, backed, tmp_path / "out.h5ad")
    backed.file.close()
    assert_agrees(anndata.read_h5ad(tmp_path / "out.h5ad"), model, adata)


def test_counts_are_normalised_over_all_genes_before_alignment(session, model, tmp_path):
    # 40 genes measured, in shuffled order; two of the model's genes missing
    adata = counts_data(n_genes=40)
    keep = [g for g in adata.var_names if g not in ("gene_003", "gene_017")]
    adata = adata[:, np.random.default_rng(0).permutation(keep)].copy()
    run = annotate_h5ad(session, write(adata, tmp_path / "c.h5ad"), tmp_path / "out.h5ad")
    assert run.alignment.matched == N_GENES - 2 and set(run.alignment.missing) == {"gene_003", "gene_017"}
    assert_agrees(anndata.read_h5ad(tmp_path / "out.h5ad"), model, adata)


def test_log1p_data_is_used_as_it_is(session, model, tmp_path):
    # log-normalised over 40 genes, then subset (like pbmc68k_reduced's HVGs): must not be re-normalised
    adata = log1p_normalised(counts_data(n_genes=40))[:, :30].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the subset no longer sums to the target; both sides warn
        run = annotate_h5ad(session, write(adata, tmp_path / "l.h5ad"), tmp_path / "out.h5ad")
        out = anndata.read_h5ad(tmp_path / "out.h5ad")
        assert_agrees(out, model, adata)
    assert run.data_state == "log1p_norm" and run.source == "adata.X"


def test_counts_layer_is_used_when_x_is_scaled(session, model, tmp_path):
    counts = counts_data(sparse=False)
    adata = z_scored(counts)
    adata.layers["counts"] = counts.X
    run = annotate_h5ad(session, write(adata, tmp_path / "z.h5ad"), tmp_path / "out.h5ad")
    assert run.source == "adata.layers['counts']" and run.data_state == "counts"
    assert_agrees(anndata.read_h5ad(tmp_path / "out.h5ad"), model, counts)


def test_streaming_reads_chunks_and_chunking_changes_nothing(session, tmp_path, monkeypatch):
    data = write(counts_data(n_cells=1000), tmp_path / "big.h5ad")
    spans: list[int] = []
    original = annotate_module._h5_reader

    def recording(elem, where, path):
        shape, read = original(elem, where, path)

        def read_rows(a, b):
            spans.append(b - a)
            return read(a, b)

        return shape, read_rows

    monkeypatch.setattr(annotate_module, "_h5_reader", recording)
    small = annotate_h5ad(session, data, tmp_path / "small.h5ad", chunk_size=64, prefetch=2)
    assert max(spans) <= 100 and sum(s for s in spans if s == 64) >= 64 * (1000 // 64)
    whole = annotate_h5ad(session, data, tmp_path / "whole.h5ad", chunk_size=4096, prefetch=0)
    a, b = anndata.read_h5ad(tmp_path / "small.h5ad"), anndata.read_h5ad(tmp_path / "whole.h5ad")
    np.testing.assert_array_equal(a.obs[LABEL], b.obs[LABEL])
    np.testing.assert_allclose(a.obsm[PROBA], b.obsm[PROBA], atol=1e-6)
    assert small.chunk_size == 64 and whole.prefetch == 0


def test_in_memory_anndata(session, model):
    adata = counts_data()
    run = annotate_adata(session, adata, chunk_size=50)
    assert_agrees(adata, model, counts_data())
    assert run.output is None and ATTENTION in adata.obsm
    with pytest.raises(InputError, match="already has"):
        annotate_adata(session, adata)


# -- bad input -----------------------------------------------------------------------------------


def test_too_little_gene_overlap(session, tmp_path):
    adata = counts_data()
    adata.var_names = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    with pytest.raises(GeneAlignmentError, match="only 0 of the model's 24 genes"):
        annotate_h5ad(session, write(adata, tmp_path / "ens.h5ad"), tmp_path / "out.h5ad")
    assert not (tmp_path / "out.h5ad").exists()


def test_nan_cells_are_named_and_nothing_is_written(session, tmp_path):
    adata = counts_data(n_cells=500, sparse=False)
    adata.X[417, 3] = np.nan
    data = write(adata, tmp_path / "nan.h5ad")
    with pytest.raises(InputError, match=r"NaN or infinite values .*'cell_417' \(row 417\)"):
        annotate_h5ad(session, data, tmp_path / "out.h5ad", chunk_size=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.h5ad"]  # no output, no temporary file
    with pytest.raises(InputError, match="NaN or infinite"):
        session.run(np.full((2, N_GENES), np.nan, dtype=np.float32))


def test_wrong_input_width(session):
    with pytest.raises(InputError, match=f"cells × {N_GENES} matrix"):
        session.run(np.zeros((3, N_GENES + 1), dtype=np.float32))


def test_big_batches_run_in_blocks_with_the_same_outputs(onnx_dir):
    x = np.random.default_rng(0).random((50, N_GENES), dtype=np.float32)
    whole = Session(onnx_dir / "model.onnx", cpu_block=0).run(x)
    blocked = Session(onnx_dir / "model.onnx", cpu_block=7).run(x)  # 7 blocks of 7 cells and one of 1
    assert set(blocked) == set(whole)
    for name in whole:
        assert blocked[name].shape == whole[name].shape and blocked[name].dtype == whole[name].dtype
        np.testing.assert_allclose(blocked[name], whole[name], rtol=1e-6, atol=1e-7)
    with pytest.raises(ConfigError, match="cpu_block"):
        Session(onnx_dir / "model.onnx", cpu_block=-1)


def test_earlier_results_are_kept_unless_overwrite(session, tmp_path):
    data = write(counts_data(), tmp_path / "cells.h5ad")
    first = tmp_path / "first.h5ad"
    annotate_h5ad(session, data, first)
    with pytest.raises(FileExistsError):
        annotate_h5ad(session, data, first)
    with pytest.raises(InputError, match=f"already has obs\\['{LABEL}'\\]"):
        annotate_h5ad(session, first, tmp_path / "second.h5ad")
    annotate_h5ad(session, first, tmp_path / "second.h5ad", overwrite=True, outputs=["proba"])
    out = anndata.read_h5ad(tmp_path / "second.h5ad")
    assert list(out.obs.columns).count(LABEL) == 1 and ATTENTION not in out.obsm


def test_from_counts_graph(onnx_dir, model, tmp_path):
    counts_session = Session(onnx_dir / FROM_COUNTS_FILE)
    assert counts_session.info.input_state == "counts"
    adata = counts_data()  # exactly the model's genes: in-graph normalisation sees the whole cell
    annotate_h5ad(counts_session, write(adata, tmp_path / "c.h5ad"), tmp_path / "out.h5ad")
    assert_agrees(anndata.read_h5ad(tmp_path / "out.h5ad"), model, adata)
    logged = write(log1p_normalised(adata), tmp_path / "l.h5ad")
    with pytest.raises(InputError, match="needs raw integer counts"):
        annotate_h5ad(counts_session, logged, tmp_path / "bad.h5ad")


def test_onnx_file_without_cellzoo_metadata(tmp_path):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(5, 2), torch.nn.Softmax(dim=-1)).eval()
    path = tmp_path / "foreign.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation noise
        torch.onnx.export(net, (torch.zeros(2, 5),), str(path), dynamo=True, input_names=["input"],
                          output_names=["scores"], dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))  # fmt: skip
    with pytest.raises(ArtifactError, match=r"not a cellzoo export.*--genes FILE"):
        Session(path)
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(f"gene_{i:03d}" for i in range(5)) + "\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("alpha\nbeta\n")
    foreign = Session(path, genes=genes, labels=labels)
    assert foreign.info.input_state == "any" and not foreign.info.is_cellzoo
    adata = counts_data(n_cells=40, n_genes=5)
    run = annotate_h5ad(foreign, write(adata, tmp_path / "five.h5ad"), tmp_path / "out.h5ad")
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    expected = net(torch.from_numpy(adata.X.toarray())).detach().numpy()
    np.testing.assert_allclose(out.obsm["cellzoo_foreign_scores"], expected, atol=1e-6)
    assert set(out.obs["cellzoo_foreign_label"].cat.categories) == {"alpha", "beta"}
    assert run.keys["label"] == ("obs", "cellzoo_foreign_label")
    with pytest.raises(InputError, match="--genes gives 4 names"):
        Session(path, genes=["a", "b", "c", "d"])


# -- providers and threads ---------------------------------------------------------------------


def _cuda_works(path: Path) -> bool:
    try:
        Session(path, device="cuda")
    except ConfigError:
        return False
    return True


def test_gpu_request_fails_loudly_when_the_provider_does_not_start(onnx_dir):
    path = onnx_dir / EXPORT_FILE
    if _cuda_works(path):
        pytest.skip("a CUDA device works here; tests/test_runtime_gpu.py covers it")
    with pytest.raises(ConfigError, match=r"CUDAExecutionProvider did not start.*--allow-cpu-fallback"):
        Session(path, device="cuda")
    with pytest.warns(ProviderFallbackWarning, match="did not start"):
        fallback = Session(path, device="cuda", allow_cpu_fallback=True)
    assert fallback.device == "cpu" and fallback.providers == ["CPUExecutionProvider"]
    assert Session(path, device="auto").device == "cpu"
    with pytest.raises(ConfigError, match="not one of"):
        Session(path, device="gpu")


def test_threads_are_set_explicitly(onnx_dir):
    one = Session(onnx_dir / EXPORT_FILE, threads=1)
    assert one._session.get_session_options().intra_op_num_threads == 1
    default = Session(onnx_dir / EXPORT_FILE)
    assert default._session.get_session_options().intra_op_num_threads == default.threads >= 1


# -- the command line ----------------------------------------------------------------------------


def cli(*args):
    from cellzoo.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "200"})


def test_cli_run(onnx_dir, model, tmp_path):
    adata = counts_data()
    data = write(adata, tmp_path / "cells.h5ad")
    result = cli("run", onnx_dir / EXPORT_FILE, data, "-o", tmp_path / "out.h5ad", "--device", "cpu", "--threads", "1",
                 "--no-attention")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "matched 24/24 model genes" in result.output and "cells/s" in result.output
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert_agrees(out, model, adata)
    assert ATTENTION not in out.obsm
    as_json = cli("run", onnx_dir, data, "-o", tmp_path / "j.h5ad", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["n_cells"] == adata.n_obs


def test_cli_run_errors_are_one_line(onnx_dir, tmp_path):
    data = write(counts_data(), tmp_path / "cells.h5ad")
    if not _cuda_works(onnx_dir / EXPORT_FILE):
        result = cli("run", onnx_dir / EXPORT_FILE, data, "-o", tmp_path / "out.h5ad", "--device", "cuda")
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: --device cuda was requested") and "--allow-cpu-fallback" in lines[-1]
        assert not (tmp_path / "out.h5ad").exists()
        ok = cli("run", onnx_dir / EXPORT_FILE, data, "-o", tmp_path / "out.h5ad", "--device", "cuda",
                 "--allow-cpu-fallback")  # fmt: skip
        assert ok.exit_code == 0 and "warning:" in ok.output
    missing = cli("run", tmp_path / "nope.onnx", data, "-o", tmp_path / "x.h5ad")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: No such ONNX file")


def test_cli_run_exports_a_named_model_once(artifact, model, zoo, tmp_path):
    adata = counts_data()
    data = write(adata, tmp_path / "cells.h5ad")
    result = cli("run", f"local-dir:{artifact}", data, "-o", tmp_path / "out.h5ad")
    assert result.exit_code == 0, result.output
    assert_agrees(anndata.read_h5ad(tmp_path / "out.h5ad"), model, adata)
    cached = list((home() / "onnx").glob("tinyatt-*/model.onnx"))
    assert len(cached) == 1


def test_sparse_csc_input_is_read(session, model, tmp_path):
    adata = counts_data()
    adata.X = sp.csc_matrix(adata.X)
    annotate_h5ad(session, write(adata, tmp_path / "csc.h5ad"), tmp_path / "out.h5ad")
    assert_agrees(anndata.read_h5ad(tmp_path / "out.h5ad"), model, adata)
