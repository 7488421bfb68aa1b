"""``cellzoo predict --gene-column``: the genes read from a var column, as ``cellzoo run`` reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import cli, one_error_line


def _by_ensembl_id(data: Path, out: Path) -> Path:
    """``data`` with Ensembl-like var_names and the model's gene symbols in ``var["symbol"]``."""
    import anndata

    adata = anndata.read_h5ad(data)
    adata.var["symbol"] = list(adata.var_names)
    adata.var_names = [f"ENSG{j:011d}" for j in range(adata.n_vars)]
    adata.write_h5ad(out)
    return out


@pytest.fixture
def ensembl(data, tmp_path) -> Path:
    return _by_ensembl_id(data, tmp_path / "ensembl.h5ad")


def test_predict_reads_the_genes_from_the_column_gene_column_names(trained, ensembl, tmp_path):
    import anndata

    # --min-overlap 1: every gene of the model must be found, which var_names alone do not give
    args = ["predict", f"local-dir:{trained}", ensembl, "--min-overlap", "1"]
    result = cli(*args, "-o", tmp_path / "by-id.h5ad")
    assert result.exit_code == 1
    assert "--gene-column" in one_error_line(result)  # the advice the command now accepts

    out = tmp_path / "by-symbol.h5ad"
    result = cli(*args, "--gene-column", "symbol", "-o", out)
    assert result.exit_code == 0, result.output
    assert "matched 12/12 model genes" in result.stdout
    annotated = anndata.read_h5ad(out)
    assert list(annotated.var_names) == list(anndata.read_h5ad(ensembl).var_names)  # the file keeps its own names
    assert set(annotated.obs["cellzoo_majority_label"]) == {"T cell"}


def test_an_unknown_gene_column_names_the_columns(trained, ensembl, tmp_path):
    out = tmp_path / "x.h5ad"
    result = cli("predict", f"local-dir:{trained}", ensembl, "--gene-column", "gene_ids", "-o", out)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "--gene-column 'gene_ids' is not a column of var" in line and "symbol" in line
    assert not out.exists()


def test_a_model_with_its_own_predict_sees_the_column_as_var_names(trained, ensembl, tmp_path, monkeypatch):
    import anndata

    import cellzoo.pipeline

    # the whole-file path (discover models, controls with their own predict), taken by this model here
    monkeypatch.setattr(cellzoo.pipeline, "streams", lambda model: False)
    out = tmp_path / "whole.h5ad"
    args = ["predict", f"local-dir:{trained}", ensembl, "--min-overlap", "1", "-o", out]
    result = cli(*args)
    assert result.exit_code == 1
    assert "only 0 of the model's 12 genes" in one_error_line(result)
    result = cli(*args, "--gene-column", "symbol")
    assert result.exit_code == 0, result.output
    annotated = anndata.read_h5ad(out)
    assert annotated.var_names[0] == "ENSG00000000000"
    assert set(annotated.obs["cellzoo_majority_label"]) == {"T cell"}
