"""Loading datasets by path and by name, the metadata they carry, and the dataset hash."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cellzoo.data.datasets import dataset_hash, load_dataset, read_h5ad
from cellzoo.errors import ConfigError, InputError, PluginError, UnknownNameError
from cellzoo.hookspecs import hookimpl
from cellzoo.plugins import ZooPluginManager, use_plugin_manager
from cellzoo.specs import DatasetSpec


def make_adata(n_obs: int = 30, n_vars: int = 12, seed: int = 0, sparse: bool = True) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    X = rng.poisson(1.5, size=(n_obs, n_vars)).astype(np.float32)
    obs = pd.DataFrame(
        {"cell_type": rng.choice(["B", "T", "NK"], size=n_obs), "batch": "b1"},
        index=[f"cell{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(index=[f"GENE{j}" for j in range(n_vars)])
    return ad.AnnData(sp.csr_matrix(X) if sparse else X, obs=obs, var=var)


@pytest.fixture
def h5ad_file(tmp_path) -> Path:
    path = tmp_path / "my_cells.h5ad"
    make_adata().write_h5ad(path)
    return path


# -- files -----------------------------------------------------------------------------------------


def test_read_h5ad_records_dataset_state_and_label_key(h5ad_file):
    adata = read_h5ad(h5ad_file, label_key="cell_type")
    assert adata.shape == (30, 12)
    assert adata.uns["cellzoo"] == {"dataset": "my_cells", "input_state": "counts", "label_key": "cell_type"}


def test_read_h5ad_detects_a_log1p_file(tmp_path):
    adata = make_adata(sparse=False)
    adata.X = np.log1p(adata.X / adata.X.sum(axis=1, keepdims=True) * 1e4)
    adata.write_h5ad(tmp_path / "logged.h5ad")
    assert read_h5ad(tmp_path / "logged.h5ad").uns["cellzoo"]["input_state"] == "log1p_norm"


def test_a_declared_state_and_other_metadata_are_kept(tmp_path):
    adata = make_adata()
    adata.uns["cellzoo"] = {"input_state": "log1p_norm", "note": "from the lab", "dataset": "pbmc-lab"}
    adata.write_h5ad(tmp_path / "declared.h5ad")
    meta = read_h5ad(tmp_path / "declared.h5ad", label_key="batch").uns["cellzoo"]
    assert meta == {"input_state": "log1p_norm", "note": "from the lab", "dataset": "pbmc-lab", "label_key": "batch"}


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "cells.h5ad"
    with pytest.raises(InputError, match=r"no such file: .*nope/cells\.h5ad"):
        read_h5ad(missing)
    with pytest.raises(InputError, match="no such file"):
        load_dataset(str(missing))


def test_missing_label_key_lists_the_columns(h5ad_file):
    with pytest.raises(InputError, match=r"label key 'celltype' is not a column.*columns are: cell_type, batch"):
        read_h5ad(h5ad_file, label_key="celltype")


def test_a_file_that_is_not_h5ad_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(InputError, match=r"could not read .*bad\.h5ad as an AnnData"):
        read_h5ad(bad)
    with pytest.raises(InputError, match="is a directory"):
        read_h5ad(tmp_path)


def test_load_dataset_by_path(h5ad_file):
    for ref in (h5ad_file, str(h5ad_file)):
        adata = load_dataset(ref, label_key="cell_type")
        assert adata.uns["cellzoo"]["label_key"] == "cell_type"
        assert adata.n_obs == 30


def test_read_h5ad_backed(h5ad_file):
    adata = read_h5ad(h5ad_file, backed=True)
    try:
        assert adata.isbacked
        assert adata.uns["cellzoo"]["input_state"] == "counts"
    finally:
        adata.file.close()


# -- registered datasets -----------------------------------------------------------------------------


def tiny_loader(n_obs: int = 20, seed: int = 0) -> ad.AnnData:
    return make_adata(n_obs=n_obs, seed=seed)


class _DatasetPlugin:
    @hookimpl
    def cellzoo_datasets(self):
        return [
            DatasetSpec("tiny", tasks=("annotate",), loader=tiny_loader, label_key="cell_type", input_state="counts"),
            DatasetSpec("broken", tasks=("annotate",), loader=lambda: np.zeros((2, 2))),
        ]


@pytest.fixture
def zoo():
    pm = ZooPluginManager(discover=False)
    pm.register(_DatasetPlugin(), name="test-datasets")
    with use_plugin_manager(pm):
        yield pm


def test_load_registered_dataset_passes_params_and_records_metadata(zoo):
    adata = load_dataset("tiny", n_obs=7, seed=3)
    assert adata.n_obs == 7
    assert adata.uns["cellzoo"] == {"dataset": "tiny", "input_state": "counts", "label_key": "cell_type"}
    assert load_dataset("tiny", label_key="batch").uns["cellzoo"]["label_key"] == "batch"
    with pytest.raises(InputError, match="label key 'cluster'"):
        load_dataset("tiny", label_key="cluster")


def test_registered_dataset_with_wrong_params(zoo):
    with pytest.raises(ConfigError, match=r"does not take parameters \['n_cells'\].*accepts: n_obs, seed"):
        load_dataset("tiny", n_cells=5)


def test_unknown_dataset_name_suggests_and_mentions_paths(zoo):
    with pytest.raises(UnknownNameError, match=r"Did you mean: tiny.*path to an \.h5ad file"):
        load_dataset("tiyn")


def test_loader_that_returns_no_anndata_is_a_plugin_error(zoo):
    with pytest.raises(PluginError, match="returned a ndarray, not an AnnData"):
        load_dataset("broken")


def test_builtin_h5ad_dataset_reads_a_path(zoo, h5ad_file):
    adata = load_dataset("h5ad", path=str(h5ad_file), label_key="cell_type")
    assert adata.uns["cellzoo"]["dataset"] == "my_cells"
    assert adata.uns["cellzoo"]["label_key"] == "cell_type"


# -- the hash ---------------------------------------------------------------------------------------


def test_dataset_hash_is_stable_and_storage_independent():
    sparse = make_adata(sparse=True)
    dense = make_adata(sparse=False)
    h = dataset_hash(sparse, label_key="cell_type")
    assert len(h) == 64 and int(h, 16) >= 0
    assert dataset_hash(sparse, label_key="cell_type") == h
    assert dataset_hash(dense, label_key="cell_type") == h
    as64 = dense.copy()
    as64.X = as64.X.astype(np.float64)
    assert dataset_hash(as64, label_key="cell_type") == h
    csc = sparse.copy()
    csc.X = sp.csc_matrix(csc.X)
    assert dataset_hash(csc, label_key="cell_type") == h


def test_dataset_hash_changes_with_values_names_and_labels():
    base = make_adata()
    h = dataset_hash(base, label_key="cell_type")
    changed = base.copy()
    changed.X = changed.X.toarray()
    changed.X[3, 4] += 1
    assert dataset_hash(changed, label_key="cell_type") != h
    renamed = base.copy()
    renamed.var_names = [f"g{j}" for j in range(renamed.n_vars)]
    assert dataset_hash(renamed, label_key="cell_type") != h
    cells = base.copy()
    cells.obs_names = [f"x{i}" for i in range(cells.n_obs)]
    assert dataset_hash(cells, label_key="cell_type") != h
    relabelled = base.copy()
    relabelled.obs["cell_type"] = relabelled.obs["cell_type"].replace({"B": "B cell"})
    assert dataset_hash(relabelled, label_key="cell_type") != h
    assert dataset_hash(base) != h  # no label column hashed


def test_dataset_hash_uses_the_recorded_label_key(h5ad_file):
    adata = read_h5ad(h5ad_file, label_key="cell_type")
    assert dataset_hash(adata) == dataset_hash(adata, label_key="cell_type")
    with pytest.raises(InputError, match="'nope' is not a column"):
        dataset_hash(adata, label_key="nope")


def test_dataset_hash_of_a_backed_file_matches_in_memory(h5ad_file):
    in_memory = dataset_hash(ad.read_h5ad(h5ad_file))
    backed = ad.read_h5ad(h5ad_file, backed="r")
    try:
        assert dataset_hash(backed) == in_memory
    finally:
        backed.file.close()
