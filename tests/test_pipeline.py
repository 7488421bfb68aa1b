"""The one prediction pipeline: Annotator.predict, cellzoo predict and the torch backend give today's numbers.

The reference is the pre-pipeline computation — ``prepare_input`` on the whole AnnData, gene
alignment, one ``_predict_proba`` call — on the tiny attention annotator of ``tests/test_export.py``.
"""

from __future__ import annotations

from pathlib import Path

import anndata
import h5py
import numpy as np
import pytest
import tiny_models as tiny
from click.testing import CliRunner

from cellzoo.data.contract import prepare_input
from cellzoo.data.genes import align_genes, apply_alignment
from cellzoo.data.stream import result_keys
from cellzoo.errors import ConfigError, InputError
from cellzoo.pipeline import predict_h5ad, streams
from cellzoo.testing import log1p_normalised, tiny_annotate_adata, z_scored
from cellzoo.training import TorchBackend


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def artifact(tiny_artifact) -> Path:
    return tiny_artifact


def reference(model, adata):
    """What Annotator.predict computed before the pipeline."""
    alignment = align_genes(adata.var_names, model.manifest, min_overlap=model.min_gene_overlap)
    X = apply_alignment(prepare_input(adata, model.contract), alignment)
    proba = model._predict_proba(X)
    return np.asarray(model.classes, dtype=object)[np.argmax(proba, axis=1)], proba


def counts(n_cells=300, n_genes=tiny.N_GENES, seed=3, sparse=True):
    return tiny_annotate_adata(n_cells=n_cells, n_genes=n_genes, n_classes=3, seed=seed, sparse=sparse)


@pytest.mark.parametrize(
    "make",
    [
        lambda: counts(),
        lambda: counts(sparse=False),
        lambda: counts(n_genes=40)[:, ::-1].copy(),  # more genes, another order: normalised over all 40
        lambda: log1p_normalised(counts(n_genes=40))[:, :30].copy(),
    ],
    ids=["sparse-counts", "dense-counts", "more-genes", "log1p-subset"],
)
def test_predict_gives_todays_numbers(model, make):
    adata = make()
    labels, proba = reference(model, adata)
    got = model.predict(adata)
    np.testing.assert_array_equal(got.labels.astype(str), labels.astype(str))
    np.testing.assert_allclose(got.proba, proba, atol=1e-6)
    assert got.classes == model.classes and model.last_alignment is not None


def test_raw_is_read_over_var_names_like_fit(model):
    full = counts(n_genes=40)
    adata = full[:, : tiny.N_GENES].copy()
    adata.raw = full
    adata.X = z_scored(adata).X
    adata.uns.pop("cellzoo", None)  # X is no longer the declared counts
    labels, proba = reference(model, adata)
    got = model.predict(adata)
    np.testing.assert_array_equal(got.labels.astype(str), labels.astype(str))
    np.testing.assert_allclose(got.proba, proba, atol=1e-6)


def test_chunking_changes_nothing(model):
    adata = counts(n_cells=700)
    whole = model.annotate(adata.copy(), chunk_size=10_000)
    small = model.annotate(adata.copy(), chunk_size=64)
    key = result_keys(model.name, ["proba"])
    np.testing.assert_array_equal(whole.obs[key["label"][1]], small.obs[key["label"][1]])
    np.testing.assert_allclose(whole.obsm[key["proba"][1]], small.obsm[key["proba"][1]], atol=1e-6)


def test_attention_through_the_torch_backend(model):
    """TorchAnnotator's backend for outputs beyond proba: the exported module, batch by batch."""
    adata = counts()
    alignment = align_genes(adata.var_names, model.manifest)
    x = apply_alignment(prepare_input(adata, model.contract), alignment).tocsr()
    backend = TorchBackend(model, ("proba", "attention"))
    backend.batch_size = 64
    got = backend.run(x)
    out = model.infer({"x": x.toarray()})
    assert backend.output_names[:2] == ("proba", "attention")
    np.testing.assert_allclose(got["attention"], out["attention"], atol=1e-6)
    np.testing.assert_allclose(got["proba"], out["proba"], atol=1e-6)
    with pytest.raises(ConfigError, match="no output"):
        TorchBackend(model, ("proba", "logits"))


def test_a_plain_annotator_gives_only_probabilities(model):
    with pytest.raises(ConfigError, match="only probabilities"):
        model.annotate(counts(), outputs=("proba", "attention"))


def test_predict_h5ad_writes_in_place_without_rewriting_x(model, tmp_path):
    adata = counts(n_cells=500)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    assert streams(model)
    run = predict_h5ad(model, data, tmp_path / "out.h5ad", chunk_size=64)
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    labels, proba = reference(model, adata)
    np.testing.assert_array_equal(out.obs["cellzoo_tinyatt_label"].astype(str), labels.astype(str))
    np.testing.assert_allclose(out.obsm["cellzoo_tinyatt_proba"], proba, atol=1e-6)
    assert list(out.uns["cellzoo_tinyatt_classes"]) == list(model.classes)
    assert (out.X != adata.X).nnz == 0 and run.chunk_size == 64 and run.n_cells == 500
    with h5py.File(data) as a, h5py.File(tmp_path / "out.h5ad") as b:  # X's bytes are those of the input
        assert a["X"]["data"].id.get_offset() == b["X"]["data"].id.get_offset()
    with pytest.raises(InputError, match="already has"):
        predict_h5ad(model, tmp_path / "out.h5ad", tmp_path / "again.h5ad")


def test_cli_predict_streams_and_matches_predict(model, artifact, tmp_path):
    from cellzoo.cli import main

    adata = counts(n_cells=200)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    result = CliRunner().invoke(main, ["predict", f"local-dir:{artifact}", str(data), "-o", str(tmp_path / "o.h5ad"),
                                       "--chunk-size", "64"])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = anndata.read_h5ad(tmp_path / "o.h5ad")
    expected = model.predict(adata)
    np.testing.assert_array_equal(out.obs["cellzoo_tinyatt_label"].astype(str), expected.labels.astype(str))
    np.testing.assert_allclose(out.obsm["cellzoo_tinyatt_proba"], expected.proba, atol=1e-6)
    assert set(out.obsm) == {"cellzoo_tinyatt_proba"}
