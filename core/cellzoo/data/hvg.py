"""Highly variable genes: the genes a model trains on when the data has more than it should take.

The attention models' papers trained on the 5,000 most variable genes, and scANNA's three G × G
layers make that a necessity (2.8 G parameters at 30,727 genes). The ranking is Seurat's (Satija
et al. 2015), the default of ``scanpy.pp.highly_variable_genes``: on library-size-normalised
expression, each gene's dispersion (variance / mean) is z-scored against the genes of similar
mean — 20 equal-width bins of log mean expression — and the genes with the largest normalised
dispersion are kept. Genes never expressed are never kept. Statistics are computed in float64
column sums, so a sparse matrix stays sparse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, InputError

#: bins of log mean expression that dispersions are normalised within (scanpy's ``n_bins``)
N_BINS = 20


def _normalised(X: Any, state: str) -> Any:
    """Library-size-normalised expression (not logged) of ``X`` in ``state`` (counts or log1p_norm)."""
    if state == "log1p_norm":
        return (
            sp.csr_matrix(X, dtype=np.float64).expm1() if sp.issparse(X) else np.expm1(np.asarray(X, dtype=np.float64))
        )
    if state == "counts":
        X = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        totals = np.asarray(X.sum(axis=1)).ravel()
        totals[totals == 0] = 1.0
        scale = 1e4 / totals
        return sp.diags(scale) @ X if sp.issparse(X) else X * scale[:, None]
    raise InputError(f"highly variable genes need counts or log1p-normalised data, not {state!r}")


def normalised_dispersion(X: Any, state: str = "log1p_norm") -> np.ndarray:
    """Each gene's dispersion z-scored within its bin of mean expression (NaN for unexpressed genes)."""
    Y = _normalised(X, state)
    n = Y.shape[0]
    if n < 2:
        raise InputError(f"highly variable genes need at least 2 cells, not {n}")
    mean = np.asarray(Y.mean(axis=0), dtype=np.float64).ravel()
    sq = Y.multiply(Y).mean(axis=0) if sp.issparse(Y) else (Y * Y).mean(axis=0)
    var = (np.asarray(sq, dtype=np.float64).ravel() - mean**2) * n / (n - 1)
    expressed = mean > 0
    out = np.full(mean.shape, np.nan)
    if not expressed.any():
        return out
    log_mean = np.log1p(mean[expressed])
    log_disp = np.log(np.maximum(var[expressed], 1e-12) / mean[expressed])
    edges = np.linspace(log_mean.min(), log_mean.max(), N_BINS + 1)
    bins = np.clip(np.digitize(log_mean, edges[1:-1]), 0, N_BINS - 1)
    z = np.zeros_like(log_disp)
    for b in np.unique(bins):
        members = bins == b
        if members.sum() == 1:
            # nothing to compare a lone gene with; scanpy scores it 1 (its bin's mean and spread are set so)
            z[members] = 1.0
            continue
        centre, spread = log_disp[members].mean(), log_disp[members].std(ddof=1)
        z[members] = (log_disp[members] - centre) / spread if spread > 0 else 0.0
    out[expressed] = z
    return out


def highly_variable(X: Any, n_top: int, state: str = "log1p_norm") -> np.ndarray:
    """Column indices of the ``n_top`` most variable genes of ``X``, in their original order.

    All expressed genes when there are no more than ``n_top`` of them.
    """
    if isinstance(n_top, bool) or not isinstance(n_top, int | np.integer) or n_top < 1:
        raise ConfigError(f"n_top_genes={n_top!r} must be a positive integer")
    score = normalised_dispersion(X, state)
    ranked = np.flatnonzero(~np.isnan(score))
    if not len(ranked):
        raise InputError("no gene is expressed in any cell; there are no variable genes to select")
    # stable: ties keep the gene order, so the selection does not depend on the sort's whims
    order = ranked[np.argsort(-score[ranked], kind="stable")]
    return np.sort(order[: int(n_top)])


__all__ = ["N_BINS", "highly_variable", "normalised_dispersion"]
