"""The Splat simulator: seeded, chunk-independent, faithful to its model, and written to disk chunk by chunk."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import cellzoo
import cellzoo_scdata.plugin
from cellzoo.errors import ConfigError
from cellzoo_scdata.splat import TILE_CELLS, gene_model, make_params, splat, write_splat_h5ad

SMALL = dict(n_cells=300, n_genes=100, n_groups=3)


@pytest.fixture(autouse=True)
def zoo():
    pm = cellzoo.ZooPluginManager(discover=False)
    pm.register(cellzoo_scdata.plugin, name="scdata", distribution="cellzoo-scdata")
    with cellzoo.use_plugin_manager(pm):
        yield pm


def _same(a: ad.AnnData, b: ad.AnnData) -> None:
    assert a.shape == b.shape
    assert (a.X != b.X).nnz == 0
    assert a.obs.equals(b.obs)
    assert a.var.equals(b.var)
    assert {k: list(v) for k, v in a.uns["splat"]["markers"].items()} == {
        k: list(v) for k, v in b.uns["splat"]["markers"].items()
    }
    np.testing.assert_array_equal(a.uns["splat"]["de_factors"], b.uns["splat"]["de_factors"])


def test_counts_are_sparse_integer_counts_with_labels_and_truth():
    adata = splat(**SMALL, seed=1)
    assert adata.shape == (300, 100)
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    data = adata.X.data
    assert (data > 0).all() and np.array_equal(data, np.rint(data))
    assert cellzoo.detect_state(adata.X) == "counts"
    assert list(adata.obs["group"].cat.categories) == ["Group1", "Group2", "Group3"]
    assert adata.obs_names[0] == "Cell1" and adata.var_names[-1] == "Gene100"
    truth = adata.uns["splat"]
    assert truth["de_factors"].shape == (100, 3)
    assert truth["groups"] == ["Group1", "Group2", "Group3"]
    meta = {k: v for k, v in adata.uns["cellzoo"].items() if k != "markers"}
    assert meta == {"dataset": "splat", "input_state": "counts", "label_key": "group"}


def test_markers_are_the_up_regulated_genes_ranked_by_factor():
    adata = splat(**SMALL, de_prob=0.3, seed=2)
    factors = adata.uns["splat"]["de_factors"]
    genes = np.asarray(adata.var_names)
    for k, group in enumerate(adata.uns["splat"]["groups"]):
        markers = adata.uns["splat"]["markers"][group]
        assert set(markers) == set(genes[factors[:, k] > 1])
        ranked = factors[[adata.var_names.get_loc(g) for g in markers], k]
        assert (np.diff(ranked) <= 0).all()
    assert adata.uns["cellzoo"]["markers"] == adata.uns["splat"]["markers"]  # where the markers task reads it
    # about de_prob of the genes are DE per group, half of them down (factor < 1)
    de_share = float(np.mean(factors != 1.0))
    assert 0.2 < de_share < 0.4
    assert (factors[factors != 1.0] < 1).mean() == pytest.approx(0.5, abs=0.15)


def test_no_de_means_no_markers():
    adata = splat(**SMALL, de_prob=0.0, seed=0)
    assert np.all(adata.uns["splat"]["de_factors"] == 1.0)
    assert all(len(v) == 0 for v in adata.uns["splat"]["markers"].values())


def test_same_seed_same_data_other_seed_other_data():
    _same(splat(**SMALL, seed=5), splat(**SMALL, seed=5))
    assert (splat(**SMALL, seed=5).X != splat(**SMALL, seed=6).X).nnz > 0


@pytest.mark.parametrize("chunk_size", [1, 77, TILE_CELLS, TILE_CELLS + 1, 10**6])
def test_data_do_not_depend_on_chunk_size(chunk_size):
    n = TILE_CELLS + 250  # two tiles, the second one partial
    reference = splat(n_cells=n, n_genes=40, n_groups=2, seed=3, chunk_size=500)
    _same(reference, splat(n_cells=n, n_genes=40, n_groups=2, seed=3, chunk_size=chunk_size))


def test_library_sizes_and_group_proportions_follow_the_parameters():
    adata = splat(n_cells=3000, n_genes=200, n_groups=3, group_probs=[0.6, 0.3, 0.1], lib_loc=7.0, seed=4)
    share = adata.obs["group"].value_counts(normalize=True)
    assert share["Group1"] == pytest.approx(0.6, abs=0.03)
    assert share["Group3"] == pytest.approx(0.1, abs=0.02)
    lib = adata.obs["library_size"].to_numpy()
    assert np.log(lib).mean() == pytest.approx(7.0, abs=0.02)
    # the gamma-Poisson draws preserve each cell's expected total: counts sum to about its library size
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    assert totals.mean() / lib.mean() == pytest.approx(1.0, abs=0.03)
    assert np.corrcoef(totals, lib)[0, 1] > 0.9


def test_counts_are_overdispersed_as_the_bcv_says():
    adata = splat(n_cells=2000, n_genes=50, n_groups=1, lib_scale=0.0, bcv_common=0.5, seed=0)
    X = adata.X.toarray()
    mean, var = X.mean(0), X.var(0)
    high = mean > 5
    # negative binomial: var = μ + bcv² μ², with bcv ≥ bcv_common
    assert high.sum() > 5
    assert (var[high] > mean[high] + 0.15 * mean[high] ** 2).all()


def test_de_genes_are_higher_in_their_group():
    adata = splat(n_cells=600, n_genes=200, n_groups=3, de_prob=0.2, de_fac_loc=1.0, seed=7)
    X = adata.X.toarray()
    X = X / X.sum(1, keepdims=True)
    groups = adata.obs["group"].to_numpy()
    wins = []
    for group, markers in adata.uns["splat"]["markers"].items():
        idx = [adata.var_names.get_loc(g) for g in list(markers)[:5]]
        inside = X[groups == group][:, idx].mean(0)
        outside = X[groups != group][:, idx].mean(0)
        wins.extend(inside > outside)
    assert np.mean(wins) == 1.0


def test_dropout_zeroes_counts():
    plain = splat(**SMALL, seed=1)
    dropped = splat(**SMALL, seed=1, dropout=True, dropout_mid=2.0, dropout_shape=-1.0)
    assert dropped.X.nnz < 0.8 * plain.X.nnz
    assert dropped.uns["splat"]["params"]["dropout"] is True


def test_get_dataset_passes_parameters_and_rejects_unknown_ones():
    adata = cellzoo.get_dataset("splat", n_cells=50, n_genes=20, seed=9)
    assert adata.shape == (50, 20)
    assert adata.uns["cellzoo"]["label_key"] == "group"
    assert cellzoo.dataset_spec("splat").tasks == ("annotate", "discover", "markers", "generate")
    with pytest.raises(ConfigError, match="no parameter 'n_cell'"):
        cellzoo.get_dataset("splat", n_cell=50)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(n_cells=0), "n_cells"),
        (dict(de_prob=1.5), "de_prob"),
        (dict(n_groups=2, group_probs=[0.5, 0.4, 0.1]), "group_probs has 3 entries"),
        (dict(n_groups=2, group_probs=[0.5, 0.6]), "sum to 1"),
        (dict(mean_rate=0.0), "mean_rate"),
    ],
)
def test_invalid_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        make_params(**params)


def test_gene_model_is_shared_by_all_cells():
    p = make_params(n_cells=10, n_genes=30, n_groups=2, seed=0)
    model = gene_model(p)
    np.testing.assert_allclose(model.proportions.sum(1), 1.0)
    # the gene-level draws do not depend on the number of cells
    np.testing.assert_array_equal(
        model.de_factors, gene_model(make_params(n_cells=5000, n_genes=30, n_groups=2)).de_factors
    )


def test_written_h5ad_equals_the_in_memory_data(tmp_path):
    params = dict(n_genes=60, n_groups=4, seed=11, de_prob=0.2)
    n = TILE_CELLS + 130
    path = write_splat_h5ad(tmp_path / "splat.h5ad", n, chunk_size=317, **params)
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == ["splat.h5ad"]  # no temp file left
    _same(ad.read_h5ad(path), splat(n_cells=n, **params))
    backed = ad.read_h5ad(path, backed="r")
    try:
        assert backed.shape == (n, 60)
        rows = backed.X[TILE_CELLS - 5 : TILE_CELLS + 5]
        expected = splat(n_cells=n, **params).X[TILE_CELLS - 5 : TILE_CELLS + 5]
        np.testing.assert_array_equal(rows.toarray(), expected.toarray())
    finally:
        backed.file.close()
    # readable through the zoo like any user file, with its declared state and label key
    loaded = cellzoo.get_dataset(str(path))
    assert loaded.uns["cellzoo"]["input_state"] == "counts" and loaded.uns["cellzoo"]["label_key"] == "group"


def test_a_failed_write_leaves_no_file(tmp_path):
    # chunk_size is checked once the temporary file is open: the failure happens mid-write
    with pytest.raises(ConfigError, match="chunk_size"):
        write_splat_h5ad(tmp_path / "bad.h5ad", 100, n_genes=10, chunk_size=0)
    assert list(tmp_path.iterdir()) == []
