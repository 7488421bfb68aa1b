"""Approximate raw counts from log1p-normalised data whose per-cell size factors are lost.

If ``X = log1p(counts * s_c)`` for an unknown size factor ``s_c`` per cell, then
``expm1(X) / s_c`` are the counts; when a cell's smallest non-zero count is 1, ``s_c`` is simply
that cell's smallest non-zero ``expm1`` value. Values stored with few decimals (scanpy's
``pbmc68k_reduced`` keeps 3) make the quotients near-integers rather than integers, so they are
rounded, and the distance to the nearest integer is reported per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from cellzoo.errors import InputError


@dataclass(frozen=True)
class ApproximateCounts:
    """Rounded counts (CSR, float32) and, per cell, the largest distance to the integer it was rounded to."""

    counts: sp.csr_matrix
    rounding_error: np.ndarray
    size_factor: np.ndarray

    def summary(self, tolerances: tuple[float, ...] = (1e-3, 1e-2, 0.05, 0.1)) -> dict[str, float]:
        """Share of cells whose quotients were integers within each tolerance, and the worst cell."""
        out = {f"share_within_{t:g}": float(np.mean(self.rounding_error <= t)) for t in tolerances}
        out["max_rounding_error"] = float(self.rounding_error.max(initial=0.0))
        return out


def approximate_counts(X, max_error: float = 0.25) -> ApproximateCounts:
    """Counts reconstructed from log1p data ``X`` (dense or sparse) by per-cell minimum scaling.

    A cell whose quotients sit further than ``max_error`` from integers cannot be rounded
    faithfully (its smallest value is not one count, or the data are not log1p of scaled
    counts): that is an :class:`~cellzoo.errors.InputError` naming how many such cells there are.
    All-zero cells stay zero.
    """
    csr = sp.csr_matrix(X, dtype=np.float64, copy=True)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    if csr.nnz and csr.data.min() < 0:
        raise InputError(
            f"cannot reconstruct counts from data with negative values (min {csr.data.min():.4g}); "
            "pass log1p-normalised data, not scaled data"
        )
    np.expm1(csr.data, out=csr.data)
    n_cells = csr.shape[0]
    per_row = np.diff(csr.indptr)
    nonempty = per_row > 0
    starts = csr.indptr[:-1][nonempty]
    size_factor = np.zeros(n_cells)
    error = np.zeros(n_cells)
    if csr.nnz:
        size_factor[nonempty] = np.minimum.reduceat(csr.data, starts)
        quotient = csr.data / np.repeat(size_factor[nonempty], per_row[nonempty])
        rounded = np.rint(quotient)
        error[nonempty] = np.maximum.reduceat(np.abs(quotient - rounded), starts)
        csr.data = rounded
    bad = np.flatnonzero(error > max_error)
    if bad.size:
        raise InputError(
            f"{bad.size} of {n_cells} cells do not look like log1p of scaled counts: their expm1 values are up to "
            f"{error.max():.3g} away from integer multiples of the cell's smallest value (limit {max_error}; first "
            f"cells {bad[:5].tolist()}). Use the original raw counts instead of reconstructing them"
        )
    return ApproximateCounts(csr.astype(np.float32), error, size_factor)
