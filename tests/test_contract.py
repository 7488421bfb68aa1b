"""The input contract: state detection, validation, conversion and choosing the matrix of an AnnData."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cellzoo.data.contract import (
    InputContract,
    InputStateWarning,
    detect_state,
    prepare_input,
    to_input_state,
    validate,
)
from cellzoo.errors import ArtifactError, ConfigError, InputError

LOG1P = InputContract("log1p_norm")
COUNTS = InputContract("counts")


def make_counts(n_obs: int = 120, n_vars: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # cells of different depth, genes of different mean: like UMI data, not a flat Poisson
    depth = rng.gamma(2.0, 1.0, size=(n_obs, 1))
    mean = rng.gamma(0.7, 1.5, size=(1, n_vars))
    counts = rng.poisson(depth * mean).astype(np.float32)
    counts[:, 0] += 1  # no empty cell
    return counts


def log1p_norm(counts: np.ndarray, target: float = 1e4) -> np.ndarray:
    return np.log1p(counts / counts.sum(axis=1, keepdims=True) * target).astype(np.float32)


def adata_of(X, **kwargs) -> ad.AnnData:
    n_obs, n_vars = X.shape
    return ad.AnnData(
        X,
        obs=pd.DataFrame(index=[f"c{i}" for i in range(n_obs)]),
        var=pd.DataFrame(index=[f"G{j}" for j in range(n_vars)]),
        **kwargs,
    )


@pytest.fixture
def counts() -> np.ndarray:
    return make_counts()


# -- detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix, sp.csc_matrix, sp.csr_array])
def test_detects_counts_dense_and_sparse(counts, to_matrix):
    assert detect_state(to_matrix(counts)) == "counts"
    assert detect_state(to_matrix(counts.astype(np.int32))) == "counts"


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix, sp.csc_matrix])
def test_detects_log1p_normalised(counts, to_matrix):
    assert detect_state(to_matrix(log1p_norm(counts))) == "log1p_norm"
    assert detect_state(to_matrix(log1p_norm(counts, target=1e6))) == "log1p_norm"


def test_detects_log1p_after_subsetting_genes(counts):
    # normalised on all genes then cut to "highly variable" ones: row sums disagree, still log1p
    X = log1p_norm(counts)[:, ::3]
    expm1_sums = np.expm1(X).sum(axis=1)
    assert expm1_sums.std() / expm1_sums.mean() > 0.05
    assert detect_state(X) == "log1p_norm"
    # values stored rounded to 3 decimals, as in scanpy's pbmc68k_reduced
    assert detect_state(np.round(X, 3)) == "log1p_norm"


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix])
def test_detects_scaled(counts, to_matrix):
    L = log1p_norm(counts)
    Z = (L - L.mean(axis=0)) / (L.std(axis=0) + 1e-6)
    assert detect_state(to_matrix(Z)) == "scaled"


def test_detects_nonnegative_that_is_not_log1p(counts):
    cpm = counts / counts.sum(axis=1, keepdims=True) * 1e6
    assert detect_state(cpm) == "nonnegative"
    assert detect_state(np.random.default_rng(0).random((80, 40))) == "nonnegative"


def test_detection_looks_beyond_the_first_rows(counts):
    L = log1p_norm(counts)
    L[:3] = 0.0  # CellTypist's first-row check would call this counts
    assert detect_state(L) == "log1p_norm"
    C = counts.copy()
    C[50, 7] = -1.0
    assert detect_state(C) == "scaled"


def test_detection_samples_rows_with_a_seed():
    big = np.vstack([make_counts(1500, 30, seed=1), log1p_norm(make_counts(1500, 30, seed=2))])
    # half the rows are counts, half log1p: the sample holds both, so the matrix is not counts
    assert detect_state(big, n_rows=200, seed=3) == detect_state(big, n_rows=200, seed=3) != "counts"


def test_all_zero_matrix_is_counts():
    assert detect_state(sp.csr_matrix((5, 4), dtype=np.float32)) == "counts"


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix, sp.csc_matrix])
def test_nan_and_inf_are_errors_that_say_how_many_and_where(counts, to_matrix):
    X = counts.copy()
    X[4, 2] = np.nan
    X[9, 5] = np.inf
    X[9, 6] = np.nan
    for state in ("counts", "log1p_norm", "any"):
        with pytest.raises(InputError, match=r"3 NaN or infinite values in 2 cells \(rows 4, 9\)"):
            validate(to_matrix(X), state, where="adata.X")


@pytest.mark.parametrize("state", ["counts", "log1p_norm"])
def test_negative_values_are_errors(counts, state):
    X = log1p_norm(counts) if state == "log1p_norm" else counts.copy()
    X[3, 3] = -0.5
    with pytest.raises(InputError, match=r"1 negative values \(min -0\.5\).*scaled"):
        validate(sp.csr_matrix(X), state)


def test_non_integer_counts_are_an_error(counts):
    X = counts.copy()
    X[0, :5] += 0.37
    with pytest.raises(InputError, match=r"5 non-integer values \(e\.g\. \d+\.37\).*raw integer UMI counts"):
        validate(X, "counts")


@pytest.mark.parametrize("logged", ["log1p_norm", "log1p_plain"])
def test_already_logged_data_declared_as_counts_is_an_error(counts, logged):
    X = log1p_norm(counts) if logged == "log1p_norm" else np.log1p(counts)
    with pytest.raises(InputError, match=r"looks already log-transformed.*layers\[.counts.\]"):
        validate(X, "counts", where="adata.X")


def test_integer_data_declared_log1p_is_an_error(counts):
    with pytest.raises(InputError, match="all its values are integers: it looks like raw counts"):
        validate(counts, "log1p_norm")


def test_normalised_but_not_logged_declared_log1p_is_an_error(counts):
    cpm = counts / counts.sum(axis=1, keepdims=True) * 1e6
    with pytest.raises(InputError, match="normalised but not log-transformed"):
        validate(cpm, "log1p_norm")


def test_wrong_target_sum_warns_with_the_sum_it_seems_to_have(counts):
    with pytest.warns(InputStateWarning, match=r"normalised to about 1e\+06 per cell.*target_sum=10000"):
        validate(log1p_norm(counts, target=1e6), "log1p_norm", target_sum=1e4)


def test_log1p_of_unnormalised_counts_warns(counts):
    with pytest.warns(InputStateWarning, match="log1p of unnormalised counts"):
        validate(np.log1p(counts), "log1p_norm", target_sum=1e4)


def test_right_target_sum_does_not_warn(counts):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate(log1p_norm(counts), "log1p_norm", target_sum=1e4)
        validate(sp.csr_matrix(log1p_norm(counts, 1e6)), "log1p_norm", target_sum=1e6)


def test_a_declared_target_sum_is_trusted_for_genes_subset_after_normalisation(counts):
    subset = log1p_norm(counts)[:, : counts.shape[1] // 3]  # rows no longer sum to 1e4
    adata = ad.AnnData(subset.astype(np.float32))
    adata.uns["cellzoo"] = {"input_state": "log1p_norm"}
    with pytest.warns(InputStateWarning):
        prepare_input(adata, InputContract("log1p_norm"))
    adata.uns["cellzoo"]["target_sum"] = 10000.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_input(adata, InputContract("log1p_norm"))
    adata.uns["cellzoo"]["target_sum"] = 1e6  # declared, but not the model's: the check stays
    with pytest.warns(InputStateWarning):
        prepare_input(adata, InputContract("log1p_norm"))


def test_validate_rejects_a_state_that_is_not_a_contract_state(counts):
    with pytest.raises(ConfigError, match="'scaled'"):
        validate(counts, "scaled")


# -- conversion ------------------------------------------------------------------------------------


def test_counts_to_log1p_dense_matches_the_formula(counts):
    out = to_input_state(counts, "counts", LOG1P)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, log1p_norm(counts), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.expm1(out.astype(np.float64)).sum(axis=1), 1e4, rtol=1e-4)


@pytest.mark.parametrize("to_matrix", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
def test_counts_to_log1p_keeps_sparse_sparse(counts, to_matrix):
    X = to_matrix(counts)
    before = X.copy()
    out = to_input_state(X, "counts", LOG1P)
    assert sp.issparse(out) and out.dtype == np.float32
    assert out.nnz == np.count_nonzero(counts)
    np.testing.assert_allclose(out.toarray(), log1p_norm(counts), rtol=1e-6, atol=1e-6)
    assert (before != X).nnz == 0  # the caller's matrix is untouched


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix])
def test_a_zero_count_cell_stays_zero_without_nan(counts, to_matrix):
    counts[5] = 0
    out = to_input_state(to_matrix(counts), "counts", LOG1P)
    dense = out.toarray() if sp.issparse(out) else out
    assert np.isfinite(dense).all()
    assert not dense[5].any()
    assert dense[4].any()


def test_log1p_to_counts_is_impossible_and_says_to_provide_counts(counts):
    with pytest.raises(InputError, match=r"provide raw counts in adata\.X, adata\.layers\['counts'\] or adata\.raw"):
        to_input_state(log1p_norm(counts), "log1p_norm", COUNTS)


def test_scaled_data_cannot_be_converted(counts):
    with pytest.raises(InputError, match="only raw counts can be converted"):
        to_input_state(-log1p_norm(counts), "scaled", LOG1P)


def test_same_state_passes_through_validated(counts):
    out = to_input_state(counts.astype(np.int64), "counts", COUNTS)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, counts)
    bad = counts.copy()
    bad[0, 0] = 0.5
    with pytest.raises(InputError, match="non-integer"):
        to_input_state(bad, "counts", COUNTS)


def test_auto_from_state_detects(counts):
    np.testing.assert_allclose(to_input_state(counts, "auto", LOG1P), log1p_norm(counts), rtol=1e-6, atol=1e-6)


def test_contract_any_only_checks_finiteness(counts):
    Z = -log1p_norm(counts)
    out = to_input_state(Z, "scaled", InputContract("any"))
    np.testing.assert_array_equal(out, Z)
    Z[1, 1] = np.inf
    with pytest.raises(InputError, match="1 NaN or infinite"):
        to_input_state(Z, "scaled", InputContract("any"))


# -- the contract object ----------------------------------------------------------------------


def test_contract_json_round_trip():
    for contract in (InputContract(), LOG1P, InputContract("log1p_norm", 1e6), InputContract("any", None)):
        assert InputContract.from_json(contract.to_json()) == contract


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"state": "logged"}, "'logged' is not one of"),
        ({"state": "counts", "extra": 1}, "unknown keys \\['extra'\\]"),
        ({"target_sum": 1e4}, "lacks 'state'"),
        ({"state": "log1p_norm", "target_sum": -1}, "positive number"),
        ({"state": "log1p_norm", "target_sum": None}, "needs a target_sum"),
        (["counts"], "must be a JSON object"),
    ],
)
def test_contract_from_bad_json_is_a_clear_error(content, message):
    with pytest.raises(ArtifactError, match=message):
        InputContract.from_json(content)


def test_contract_rejects_unknown_state():
    with pytest.raises(ConfigError, match="counts, log1p_norm, any"):
        InputContract("raw")


# -- choosing the matrix of an AnnData -------------------------------------------------------------


def test_prepare_input_normalises_counts_in_x(counts):
    adata = adata_of(sp.csr_matrix(counts))
    out = prepare_input(adata, LOG1P)
    assert sp.issparse(out) and out.dtype == np.float32
    np.testing.assert_allclose(out.toarray(), log1p_norm(counts), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(prepare_input(adata, COUNTS).toarray(), counts)


def test_prepare_input_uses_counts_layer_when_x_is_logged(counts):
    adata = adata_of(log1p_norm(counts) * 1.01, layers={"counts": sp.csr_matrix(counts)})
    out = prepare_input(adata, COUNTS)
    np.testing.assert_array_equal(out.toarray(), counts)
    # a log1p model keeps the log1p .X it was given
    np.testing.assert_allclose(prepare_input(adata, LOG1P), log1p_norm(counts) * 1.01, rtol=1e-6)


def test_prepare_input_finds_counts_only_in_raw(counts):
    adata = adata_of(counts)
    adata.raw = adata
    L = log1p_norm(counts)
    adata.X = (L - L.mean(axis=0)) / (L.std(axis=0) + 1e-6)
    np.testing.assert_array_equal(prepare_input(adata, COUNTS), counts)
    np.testing.assert_allclose(prepare_input(adata, LOG1P), L, rtol=1e-6, atol=1e-6)


def test_prepare_input_takes_the_genes_of_x_from_a_larger_raw(counts):
    full = adata_of(counts)
    adata = full[:, [5, 1, 9]].copy()
    adata.raw = full
    adata.X = -np.ones(adata.shape, dtype=np.float32)  # scaled
    np.testing.assert_array_equal(prepare_input(adata, COUNTS), counts[:, [5, 1, 9]])


def test_prepare_input_trusts_the_declared_state(counts):
    adata = adata_of(log1p_norm(counts), uns={"cellzoo": {"input_state": "counts"}})
    with pytest.raises(InputError, match=r"declared 'counts' in adata\.uns.*looks already log-transformed"):
        prepare_input(adata, COUNTS)
    adata.uns["cellzoo"]["input_state"] = "log"
    with pytest.raises(InputError, match="'log', not one of"):
        prepare_input(adata, COUNTS)


def test_prepare_input_without_any_counts_says_what_it_found(counts):
    adata = adata_of(log1p_norm(counts))
    adata.raw = adata
    with pytest.raises(InputError) as info:
        prepare_input(adata, COUNTS)
    message = str(info.value)
    assert "adata.X looks like log1p-normalised" in message
    assert "adata.raw.X looks like log1p-normalised" in message
    assert "no adata.layers['counts']" in message


def test_prepare_input_for_any_returns_x_as_float32(counts):
    Z = -log1p_norm(counts)
    out = prepare_input(adata_of(Z.astype(np.float64)), InputContract("any"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, Z)


def _pbmc68k_reduced_path() -> Path | None:
    spec = importlib.util.find_spec("scanpy")  # locate without importing scanpy (slow)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"
    return path if path.exists() else None


@pytest.mark.skipif(_pbmc68k_reduced_path() is None, reason="scanpy's bundled pbmc68k_reduced is not installed")
def test_pbmc68k_reduced_scaled_x_and_log1p_raw():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bundled file is written in an old anndata format
        adata = ad.read_h5ad(_pbmc68k_reduced_path())
    assert detect_state(adata.X) == "scaled"
    assert detect_state(adata.raw.X) == "log1p_norm"
    # the 765 highly variable genes do not sum to 1e4: a warning, not an error
    with pytest.warns(InputStateWarning, match="adata.raw.X is log1p data"):
        X = prepare_input(adata, LOG1P)
    assert X.shape == (700, 765)
    np.testing.assert_allclose(X.toarray(), adata.raw.X.toarray(), rtol=1e-6)
    with pytest.raises(InputError, match="this model needs raw integer counts"):
        prepare_input(adata, COUNTS)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix, as old AnnData code makes
def test_other_matrix_types_are_read(counts):
    assert detect_state(sp.coo_matrix(counts)) == "counts"
    assert detect_state(np.asmatrix(log1p_norm(counts))) == "log1p_norm"
    big = np.asmatrix(np.vstack([counts] * 10))  # more rows than the sample
    assert detect_state(big, n_rows=50) == "counts"
    out = to_input_state(sp.coo_matrix(counts), "counts", LOG1P)
    assert sp.issparse(out)
    np.testing.assert_allclose(out.toarray(), log1p_norm(counts), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix])
def test_prepare_input_reads_a_backed_anndata(tmp_path, counts, to_matrix):
    path = tmp_path / "cells.h5ad"
    adata_of(to_matrix(counts)).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    try:
        assert detect_state(backed.X, n_rows=10) == "counts"
        out = prepare_input(backed, LOG1P)
        dense = out.toarray() if sp.issparse(out) else out
        np.testing.assert_allclose(dense, log1p_norm(counts), rtol=1e-6, atol=1e-6)
    finally:
        backed.file.close()
