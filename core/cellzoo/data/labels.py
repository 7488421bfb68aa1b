"""The label column of an AnnData, checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import anndata


def labels_of(adata: anndata.AnnData, label_key: str) -> np.ndarray:
    """The label column as strings, with clear errors for a missing key or missing values."""
    if label_key is None or label_key not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:20])) or "(none)"
        raise InputError(
            f"label key {label_key!r} is not a column of adata.obs (columns: {cols}); "
            "pass the column that holds the cell types, e.g. --label-key cell_type"
        )
    col = adata.obs[label_key]
    if col.isna().any():
        raise InputError(
            f"adata.obs[{label_key!r}] has {int(col.isna().sum())} missing labels; drop those cells "
            "or fill them before training"
        )
    return col.astype(str).to_numpy()
