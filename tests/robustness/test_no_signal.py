"""Cells with no signal for the model (no counts, or none of its genes expressed) are labelled
``"unassigned"``, flagged in ``obs`` and counted in a warning — on every prediction path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tiny_models as tiny

from cellzoo.data.stream import UNASSIGNED, NoSignalWarning, ReplacedResultsWarning
from cellzoo.export import EXPORT_FILE, export_onnx
from cellzoo.pipeline import predict_h5ad
from cellzoo.runtime import Session, annotate_adata, annotate_h5ad
from cellzoo.testing import tiny_annotate_adata

LABEL, FLAG = "cellzoo_tinyatt_label", "cellzoo_tinyatt_no_signal"
SILENT = [3, 17, 41]  # no counts at all
OFF_PANEL = [8]  # counts only in a gene the model does not know


def query():
    adata = tiny_annotate_adata(n_cells=60, n_genes=tiny.N_GENES, n_classes=3, seed=5, sparse=False)
    adata.X = np.asarray(adata.X, dtype=np.float32)
    adata.X[SILENT] = 0
    adata.X[OFF_PANEL] = 0
    extra = np.zeros((adata.n_obs, 1), dtype=np.float32)
    extra[OFF_PANEL] = 50
    import anndata

    wider = anndata.AnnData(np.hstack([adata.X, extra]), obs=adata.obs.copy())
    wider.var_names = [*adata.var_names, "NOT_A_MODEL_GENE"]
    return wider


def assert_flagged(labels, flags) -> None:
    expected = sorted(SILENT + OFF_PANEL)
    assert sorted(np.flatnonzero(np.asarray(flags, dtype=bool))) == expected
    labels = np.asarray(labels, dtype=object).astype(str)
    assert set(labels[expected]) == {UNASSIGNED}
    assert UNASSIGNED not in set(np.delete(labels, expected))


@pytest.fixture(scope="module")
def session(tiny_artifact, tmp_path_factory) -> Session:
    out = tmp_path_factory.mktemp("onnx") / "tinyatt-onnx"
    export_onnx(f"local-dir:{tiny_artifact}", out, from_counts=True)
    return Session(out / EXPORT_FILE, threads=1)


def test_annotate_in_memory(tiny_model):
    adata = query()
    with pytest.warns(NoSignalWarning, match=r"4 of 60 cells express none of the model's 24 genes"):
        tiny_model.annotate(adata)
    assert_flagged(adata.obs[LABEL], adata.obs[FLAG])
    assert UNASSIGNED in adata.obs[LABEL].cat.categories
    # predict() stays the model's own answer for every cell: the argmax, no extra class
    assert UNASSIGNED not in set(tiny_model.predict(query()).labels)


def test_predict_h5ad_writes_the_flag(tiny_model, tmp_path):
    import anndata

    data = tmp_path / "q.h5ad"
    query().write_h5ad(data)
    with pytest.warns(NoSignalWarning, match="4 of 60 cells"):
        predict_h5ad(tiny_model, data, tmp_path / "out.h5ad")
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert_flagged(out.obs[LABEL], out.obs[FLAG])


def test_onnx_runtime_paths(session, tmp_path):
    import anndata

    adata = query()
    with pytest.warns(NoSignalWarning, match="4 of 60 cells"):
        annotate_adata(session, adata)
    assert_flagged(adata.obs[LABEL], adata.obs[FLAG])
    data = tmp_path / "q.h5ad"
    query().write_h5ad(data)
    with pytest.warns(NoSignalWarning, match="4 of 60 cells"):
        annotate_h5ad(session, data, tmp_path / "out.h5ad", chunk_size=16)
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert_flagged(out.obs[LABEL], out.obs[FLAG])


def test_cells_with_signal_warn_nothing_and_flag_nothing(tiny_model, recwarn):
    adata = tiny_annotate_adata(n_cells=30, n_genes=tiny.N_GENES, n_classes=3, seed=6)
    tiny_model.annotate(adata)
    assert not [w for w in recwarn if issubclass(w.category, NoSignalWarning)]
    assert not adata.obs[FLAG].any()
    assert UNASSIGNED not in adata.obs[LABEL].cat.categories


def test_annotating_again_warns_that_it_replaces_the_results(tiny_model):
    adata = tiny_annotate_adata(n_cells=30, n_genes=tiny.N_GENES, n_classes=3, seed=6)
    tiny_model.annotate(adata)
    with pytest.warns(ReplacedResultsWarning, match=r"replacing obs\['cellzoo_tinyatt_label'\]"):
        tiny_model.annotate(adata)


# -- what is not an AnnData ----------------------------------------------------------------------


def test_a_matrix_is_refused_with_how_to_wrap_it(tiny_model):
    from cellzoo.errors import InputError

    with pytest.raises(InputError, match=r"takes an AnnData .* not a ndarray: wrap the cells × genes matrix"):
        tiny_model.annotate(np.zeros((3, tiny.N_GENES)))
    pd = pytest.importorskip("pandas")
    with pytest.raises(InputError, match=r"not a DataFrame: adata = anndata.AnnData\(df\)"):
        tiny_model.predict(pd.DataFrame(np.zeros((3, 2))))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"cell,gene_000\nc1,3\n", "it is not an HDF5 file, which every .h5ad is"),
        (None, "the file is truncated"),
    ],
)
def test_a_file_that_is_not_an_h5ad_is_named(tiny_model, tmp_path, content, why):
    from cellzoo.errors import InputError

    path: Path = tmp_path / "bad.h5ad"
    if content is None:  # a real .h5ad cut short, as an interrupted copy leaves it
        query().write_h5ad(tmp_path / "whole.h5ad")
        whole = (tmp_path / "whole.h5ad").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match=why):
        predict_h5ad(tiny_model, path, tmp_path / "out.h5ad")
    assert not (tmp_path / "out.h5ad").exists()
