"""ACTINN's own preprocessing: per-cell scaling to a fixed library size, log2(x+1), gene filter.

The model declares the ``log1p_norm`` input state. Because ACTINN rescales every cell to the same
total, the normalisation constant of the input does not matter: ``expm1`` of log1p-normalised
data is proportional, cell by cell, to the counts, so both routes give the same matrix (raw
counts are brought to ``log1p_norm`` by the shared input contract first).

The gene filter keeps genes whose total expression lies between two percentiles (1st and 99th by
default) over all genes and then, among those, whose coefficient of variation lies between the
same percentiles — computed on the *training* cells only. (The reference computed both over
training and test cells together, which lets the test set shape the model.) Genes never
expressed in training have no CV and are dropped.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from cellzoo.errors import InputError


def scaled_log2(X, scale_to: float = 20000.0):
    """``log2(1 + scale_to · c / Σ c)`` per cell, with ``c = expm1(X)`` (``X`` log1p-normalised).

    Sparse input stays sparse (every step maps 0 to 0); all-zero cells stay zero.
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64, copy=True)
        np.expm1(X.data, out=X.data)
        totals = np.asarray(X.sum(axis=1)).ravel()
        factor = np.divide(scale_to, totals, out=np.zeros_like(totals), where=totals > 0)
        X = sp.csr_matrix(sp.diags(factor) @ X)
        X.data = np.log2(1.0 + X.data)
        return X.astype(np.float32)
    C = np.expm1(np.asarray(X, dtype=np.float64))
    totals = C.sum(axis=1, keepdims=True)
    factor = np.divide(scale_to, totals, out=np.zeros_like(totals), where=totals > 0)
    return np.log2(1.0 + C * factor).astype(np.float32)


def _gene_moments(X) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and (population) standard deviation, without densifying sparse input."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        mean = np.asarray(X.mean(axis=0)).ravel()
        mean_sq = np.asarray(X.multiply(X).mean(axis=0)).ravel()
    else:
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        mean_sq = (X * X).mean(axis=0)
    return mean, np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))


def _within(values: np.ndarray, low: float, high: float) -> np.ndarray:
    lo, hi = np.percentile(values, [low, high])
    return (values >= lo) & (values <= hi)


def gene_filter(X_train, percentiles: tuple[float, float] = (1.0, 99.0)) -> np.ndarray:
    """Boolean mask over genes: total expression, then CV, within the percentile band.

    ``X_train`` is the training matrix after :func:`scaled_log2`.
    """
    low, high = percentiles
    n_cells = X_train.shape[0]
    mean, std = _gene_moments(X_train)
    total = mean * n_cells
    keep = _within(total, low, high)
    expressed = keep & (mean > 0)
    if not expressed.any():
        raise InputError(
            f"none of the {X_train.shape[1]} genes is expressed in the training cells inside the "
            f"{low:g}–{high:g} percentile band of total expression; the training data is empty or constant"
        )
    cv = np.zeros_like(mean)
    cv[expressed] = std[expressed] / mean[expressed]
    mask = np.zeros_like(keep)
    mask[expressed] = _within(cv[expressed], low, high)
    if not mask.any():
        raise InputError(
            f"ACTINN's gene filter kept none of the {X_train.shape[1]} genes; widen gene_percentiles "
            f"(now {percentiles}) or train on more genes"
        )
    return mask
