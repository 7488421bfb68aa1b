"""What a generator's sampling draws and returns, shared by the torch model and the ONNX runtime.

Both draw the latent noise and class codes here, from the same numpy generator in the same
order, so a torch generator and its ONNX export give the same cells for the same seed; and both
wrap the decoded matrix in :func:`generated_cells`, so the two AnnData carry the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, ProtocolError

if TYPE_CHECKING:
    import anndata

#: the obs column of generated cells that holds the type they were conditioned on
SAMPLE_TYPE_KEY = "cell_type"


def checked_n(n: Any) -> int:
    """``n`` as a positive int (a clear error otherwise)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or int(n) <= 0:
        raise ConfigError(f"the number of cells to sample must be a positive integer, got {n!r}")
    return int(n)


def latent_noise(n: int, latent_dim: int, rng: np.random.Generator) -> np.ndarray:
    """Standard-normal latent noise, ``n`` × ``latent_dim``, float32."""
    return rng.standard_normal((n, int(latent_dim)), dtype=np.float32)


def class_codes(
    n: int, code: int | None, class_counts: Sequence[int] | None, rng: np.random.Generator
) -> np.ndarray | None:
    """Class codes of ``n`` cells: all ``code``, or drawn in the training proportions (None if unlabelled)."""
    if code is not None:
        return np.full(n, int(code), dtype=np.int64)
    if class_counts is None:
        return None
    p = np.asarray(class_counts, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)


def generated_cells(
    X: np.ndarray,
    genes: Sequence[str],
    *,
    name: str,
    cell_type: str | None,
    classes: Sequence[str] | None,
    meta: Mapping[str, Any],
) -> anndata.AnnData:
    """The AnnData of generated cells: ``obs[SAMPLE_TYPE_KEY]`` for a typed sample, ``uns["cellzoo"] = meta``."""
    import anndata
    import pandas as pd

    n = len(X)
    if not np.isfinite(X).all():
        raise ProtocolError(f"model {name!r} generated NaN or infinite values; the model is broken")
    obs = pd.DataFrame(index=[f"{name}-{i}" for i in range(n)])
    if cell_type is not None:
        obs[SAMPLE_TYPE_KEY] = pd.Categorical([cell_type] * n, categories=list(classes or [cell_type]))
    adata = anndata.AnnData(X=np.asarray(X, dtype=np.float32), obs=obs, var=pd.DataFrame(index=list(genes)))
    adata.uns["cellzoo"] = dict(meta)
    return adata


def sampling_meta(
    *, name: str, output_state: str, seed: int | None, target_sum: float | None, **extra: Any
) -> dict[str, Any]:
    """``uns["cellzoo"]`` of generated cells: their state, the model, the seed, the per-cell total."""
    meta: dict[str, Any] = {"input_state": output_state, "generated_by": name}
    if seed is not None:
        meta["seed"] = int(seed)
    if target_sum is not None:
        meta["target_sum"] = float(target_sum)
    meta.update(extra)
    return meta
