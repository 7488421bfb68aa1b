"""Highly variable genes (cellzoo.data.hvg): Seurat's normalised dispersion, on counts or log1p data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cellzoo.data.hvg import highly_variable, normalised_dispersion
from cellzoo.errors import ConfigError, InputError


def counts_with_variable_genes(n_cells=300, n_genes=500, n_variable=20, seed=0):
    """Poisson background (means 0.2–20); the first ``n_variable`` genes are 8× up in a third of the cells."""
    rng = np.random.default_rng(seed)
    means = np.exp(rng.uniform(np.log(0.2), np.log(20.0), n_genes))
    lam = np.tile(means, (n_cells, 1))
    lam[: n_cells // 3, :n_variable] *= 8.0
    return rng.poisson(lam).astype(np.float32)


def log1p_cp10k(X):
    return np.log1p(X / X.sum(axis=1, keepdims=True) * 1e4).astype(np.float32)


def test_the_variable_genes_are_found_on_counts_and_on_log1p_data():
    X = counts_with_variable_genes()
    for chosen in (highly_variable(X, 20, "counts"), highly_variable(log1p_cp10k(X), 20, "log1p_norm")):
        assert len(chosen) == 20 and np.all(np.diff(chosen) > 0)  # sorted, in the genes' order
        # 14 of the 20 (0.8 expected by chance): variable genes crowd the top bins of mean expression,
        # where they are z-scored against each other — Seurat's method, as scanpy computes it (next test)
        assert len(set(chosen) & set(range(20))) >= 12
    z = normalised_dispersion(X, "counts")
    assert np.median(z[:20]) > np.quantile(z[20:], 0.95)


def test_the_ranking_is_scanpys_seurat_flavour():
    sc = pytest.importorskip("scanpy")
    import anndata

    for seed in (0, 1):
        X = log1p_cp10k(counts_with_variable_genes(seed=seed))
        adata = anndata.AnnData(X.copy())
        sc.pp.highly_variable_genes(adata, flavor="seurat", n_top_genes=40)
        np.testing.assert_array_equal(highly_variable(X, 40), np.flatnonzero(adata.var["highly_variable"].to_numpy()))
        np.testing.assert_allclose(normalised_dispersion(X), adata.var["dispersions_norm"].to_numpy(), atol=1e-5)


def test_sparse_and_dense_input_select_the_same_genes():
    X = log1p_cp10k(counts_with_variable_genes(seed=1))
    np.testing.assert_array_equal(highly_variable(sp.csr_matrix(X), 30), highly_variable(X, 30))
    np.testing.assert_allclose(normalised_dispersion(sp.csr_matrix(X)), normalised_dispersion(X), rtol=1e-9)


def test_unexpressed_genes_are_never_kept_and_a_short_list_keeps_every_expressed_gene():
    X = counts_with_variable_genes(n_genes=50)
    X[:, [3, 7]] = 0
    chosen = highly_variable(X, 100, "counts")
    assert len(chosen) == 48 and 3 not in chosen and 7 not in chosen
    assert np.isnan(normalised_dispersion(X, "counts")[[3, 7]]).all()


def test_bad_requests_are_clear_errors():
    X = counts_with_variable_genes(n_genes=30)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ConfigError, match="n_top_genes"):
            highly_variable(X, bad, "counts")
    with pytest.raises(InputError, match="counts or log1p"):
        highly_variable(X, 10, "scaled")
    with pytest.raises(InputError, match="no gene is expressed"):
        highly_variable(np.zeros((5, 4), np.float32), 2, "counts")
    with pytest.raises(InputError, match="at least 2 cells"):
        highly_variable(X[:1], 2, "counts")
