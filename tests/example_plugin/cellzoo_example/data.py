"""A tiny synthetic annotate dataset: counts with a block of marker genes per cell type."""

from __future__ import annotations

import numpy as np


def example_blobs(n_cells: int = 90, n_genes: int = 40, n_classes: int = 3, seed: int = 0):
    import anndata
    import pandas as pd

    rng = np.random.default_rng(seed)
    codes = rng.permutation(np.arange(n_cells) % n_classes)
    background = rng.gamma(2.0, 1.0, size=n_genes)
    rates = np.tile(background, (n_classes, 1))
    block = max(1, n_genes // (2 * n_classes))
    for k in range(n_classes):
        rates[k, k * block : (k + 1) * block] *= 10.0
    counts = rng.poisson(rates[codes] * rng.lognormal(0.0, 0.25, size=(n_cells, 1))).astype(np.float32)
    counts[counts.sum(axis=1) == 0, 0] = 1.0
    names = np.array([f"blob_{k}" for k in range(n_classes)], dtype=object)
    adata = anndata.AnnData(
        X=counts,
        obs=pd.DataFrame({"cell_type": pd.Categorical(names[codes])}, index=[f"c{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]),
    )
    adata.uns["cellzoo"] = {"dataset": "example_blobs", "input_state": "counts", "label_key": "cell_type"}
    return adata
