"""Per-gene standardisation of log1p data, the way CellTypist scales its input, in plain numpy.

The statistics are learned once from the training matrix (dense or scipy sparse); every later
use is a vectorised transform of one dense block of rows, so prediction never needs
scikit-learn and never densifies a whole sparse query at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

#: a gene whose standard deviation is below this is constant in training: it keeps scale 1
#: (as sklearn's StandardScaler does), so its standardised value carries no information
_CONSTANT = 1e-8


def gene_mean_scale(X) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and population standard deviation (ddof=0) of ``X``, as float32.

    Computed in float64 with an exact two-pass formula; for sparse input the implicit zeros are
    accounted for without densifying.
    """
    n = X.shape[0]
    if n == 0:
        raise ValueError("cannot learn gene statistics from 0 cells")
    if sp.issparse(X):
        csr = sp.csr_matrix(X, dtype=np.float64, copy=True)
        csr.sum_duplicates()
        n_genes = csr.shape[1]
        mean = np.bincount(csr.indices, weights=csr.data, minlength=n_genes) / n
        nnz = np.bincount(csr.indices, minlength=n_genes)
        centred = csr.data - mean[csr.indices]
        sumsq = np.bincount(csr.indices, weights=centred * centred, minlength=n_genes)
        var = (sumsq + (n - nnz) * mean * mean) / n
    else:
        dense = np.asarray(X, dtype=np.float64)
        mean = dense.mean(axis=0)
        var = ((dense - mean) ** 2).mean(axis=0)
    scale = np.sqrt(np.maximum(var, 0.0))
    scale[scale < _CONSTANT] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)


def row_blocks(X, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive blocks of at most ``batch_size`` rows of ``X`` as dense float32 arrays."""
    for start in range(0, X.shape[0], batch_size):
        block = X[start : start + batch_size]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        yield block.astype(np.float32, copy=False)


def standardise(block: np.ndarray, mean: np.ndarray, scale: np.ndarray, clip: float | None) -> np.ndarray:
    """``(block - mean) / scale``, with values above ``clip`` set to ``clip``.

    Only the upper side is capped, exactly as CellTypist does (``indata[indata > 10] = 10``):
    the lower side is already bounded by ``-mean / scale``.
    """
    out = (np.asarray(block, dtype=np.float32) - mean) / scale
    if clip is not None:
        np.minimum(out, np.float32(clip), out=out)
    return out


def standardise_all(X, mean: np.ndarray, scale: np.ndarray, clip: float | None, batch_size: int) -> np.ndarray:
    """The whole matrix standardised (dense float32), built block by block for training."""
    out = np.empty(X.shape, dtype=np.float32)
    start = 0
    for block in row_blocks(X, batch_size):
        out[start : start + block.shape[0]] = standardise(block, mean, scale, clip)
        start += block.shape[0]
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large scores."""
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
