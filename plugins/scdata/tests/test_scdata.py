"""Tests of the scdata plugin: each loader returns what its DatasetSpec declares."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import cellzoo
import cellzoo_scdata.plugin
from cellzoo.errors import InputError
from cellzoo_scdata.counts import approximate_counts

DATASETS = ("pbmc68k_reduced", "pbmc68k_reduced_counts", "krumsiek11")


@pytest.fixture(autouse=True)
def zoo():
    """Only the built-in and scdata plugins, whatever else is installed."""
    pm = cellzoo.ZooPluginManager(discover=False)
    pm.register(cellzoo_scdata.plugin, name="scdata", distribution="cellzoo-scdata")
    with cellzoo.use_plugin_manager(pm):
        yield pm


@pytest.fixture(scope="module")
def loaded():
    """Each data set loaded once through its spec's loader (scanpy's bundled files, offline)."""
    specs = {s.name: s for s in cellzoo_scdata.plugin.cellzoo_datasets()}
    return {name: cellzoo.specs.resolve(specs[name].loader)() for name in DATASETS}


@pytest.mark.parametrize("name", DATASETS)
def test_loader_returns_the_declared_shape_labels_and_metadata(name, loaded):
    spec = cellzoo.dataset_spec(name)
    adata = loaded[name]
    assert adata.shape == (spec.n_obs, spec.n_vars)
    assert spec.label_key in adata.obs
    assert not adata.obs[spec.label_key].isna().any()
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    expected = {"dataset": name, "input_state": spec.input_state, "label_key": spec.label_key}
    if name == "pbmc68k_reduced":  # normalised over all genes before the subset: the sum is declared
        expected["target_sum"] = 10000.0
    meta = dict(adata.uns["cellzoo"])
    if name.startswith("pbmc68k"):  # the curated table's markers (tested below)
        assert "markers" in meta
        del meta["markers"]
    assert meta == expected


@pytest.mark.parametrize("name", DATASETS)
def test_declared_state_is_the_detected_state(name, loaded):
    assert cellzoo.detect_state(loaded[name].X) == cellzoo.dataset_spec(name).input_state


def test_pbmc68k_reduced_is_log1p_cp10k_of_the_raw_genes(loaded):
    import scanpy as sc

    adata = loaded["pbmc68k_reduced"]
    source = sc.datasets.pbmc68k_reduced()
    assert sp.issparse(adata.X) and adata.X.dtype == np.float32
    assert list(adata.var_names) == list(source.raw.var_names)
    np.testing.assert_array_equal(adata.X.toarray(), source.raw.X.toarray())
    assert adata.X.min() >= 0  # scanpy's .X is z-scored (negative); this is raw.X
    counts = adata.obs["bulk_labels"].value_counts()
    assert len(counts) == 10 and counts["Dendritic"] == 240 and counts["CD4+/CD45RA+/CD25- Naive T"] == 8
    assert adata.obs["louvain"].nunique() == 11
    # target sum: the smallest value of a cell is one count, scaled by target / library size
    X = adata.X.tocsr()
    smallest = np.minimum.reduceat(np.expm1(X.data.astype(np.float64)), X.indptr[:-1])
    target = smallest * adata.obs["n_counts"].to_numpy()
    np.testing.assert_allclose(target, 1e4, rtol=1e-3)


def test_pbmc68k_counts_are_integers_that_renormalise_to_raw_x(loaded):
    counts = loaded["pbmc68k_reduced_counts"]
    log1p = loaded["pbmc68k_reduced"]
    C = counts.X.toarray().astype(np.float64)
    assert np.array_equal(C, np.rint(C)) and C.min() >= 0
    assert (C.max(axis=1) >= 1).all() and (C[C > 0].min() == 1)
    # independent route: the original library sizes and the measured target sum of 1e4
    library = counts.obs["n_counts"].to_numpy()[:, None]
    np.testing.assert_array_equal(C, np.rint(np.expm1(log1p.X.toarray().astype(np.float64)) * library / 1e4))
    # renormalising with the original library sizes gives back raw.X up to its 3 decimals
    back = np.log1p(C * 1e4 / library)
    assert np.abs(back - log1p.X.toarray()).max() <= 1.01e-3
    error = counts.obs["count_rounding_error"].to_numpy()
    assert error.max() < 0.25
    summary = counts.uns["approximate_counts"]
    assert summary["max_rounding_error"] == pytest.approx(float(error.max()))
    assert summary["share_within_0.1"] == pytest.approx(float(np.mean(error <= 0.1)))


def test_krumsiek11_is_simulated_continuous_data(loaded):
    adata = loaded["krumsiek11"]
    assert isinstance(adata.X, np.ndarray)
    assert adata.X.min() < 0 < adata.X.max() <= 1.1
    assert set(adata.obs["cell_type"]) == {"progenitor", "Ery", "Mk", "Mo", "Neu"}


def test_get_dataset_goes_through_the_spec():
    adata = cellzoo.get_dataset("pbmc68k_reduced")
    assert adata.uns["cellzoo"]["dataset"] == "pbmc68k_reduced"
    assert adata.shape == (700, 765)


def test_approximate_counts_recovers_scaled_counts_exactly():
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, size=(50, 30)).astype(np.float64)
    counts[:, 0] = np.maximum(counts[:, 0], 1)  # every cell has a count of 1 somewhere...
    counts[:, 1] = 1
    counts[7] = 0  # ...except an empty cell, which must stay empty
    size = rng.uniform(0.5, 5.0, size=(50, 1))
    approx = approximate_counts(sp.csr_matrix(np.log1p(counts * size)))
    np.testing.assert_array_equal(approx.counts.toarray(), counts)
    assert approx.rounding_error.max() < 1e-6
    np.testing.assert_allclose(approx.size_factor[counts.sum(1) > 0], size[counts.sum(1) > 0, 0])
    dense = approximate_counts(np.log1p(counts * size))
    np.testing.assert_array_equal(dense.counts.toarray(), counts)


def test_approximate_counts_refuses_data_that_is_not_scaled_counts():
    rng = np.random.default_rng(1)
    with pytest.raises(InputError, match="do not look like log1p of scaled counts"):
        approximate_counts(rng.uniform(0.1, 3.0, size=(20, 10)))
    with pytest.raises(InputError, match="negative"):
        approximate_counts(np.array([[-1.0, 0.5]]))


def test_hook_module_imports_no_heavy_library():
    code = """
        import sys
        import cellzoo_scdata.plugin as p
        specs = p.cellzoo_datasets()
        print(sorted(s.name for s in specs))
        print(sorted(m for m in ("scanpy", "anndata", "torch", "sklearn") if m in sys.modules))
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    names, heavy = result.stdout.strip().splitlines()
    assert names == str(sorted([*DATASETS, "splat"]))
    assert heavy == "[]"


@pytest.mark.parametrize("name", ["pbmc68k_reduced", "pbmc68k_reduced_counts"])
def test_pbmc_datasets_declare_the_curated_markers_they_measure(name, loaded):
    from cellzoo.metrics import true_markers

    adata = loaded[name]
    markers = true_markers(adata)
    assert set(adata.obs["bulk_labels"].astype(str)) <= set(markers)  # every labelled type has markers
    genes = set(adata.var_names)
    assert all(markers[t] and set(markers[t]) <= genes for t in markers)
    assert {"LYZ", "S100A8"} <= set(markers["CD14+ Monocyte"]) and "CD14" not in markers["CD14+ Monocyte"]
