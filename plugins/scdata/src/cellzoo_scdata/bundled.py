"""Loaders for the labelled data sets that ship inside scanpy (no download, work offline).

Each returns a fresh AnnData whose ``.X`` is in the state its :class:`~cellzoo.DatasetSpec`
declares, with ``adata.uns["cellzoo"]`` saying so (dataset name, input state, label key).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .counts import approximate_counts

if TYPE_CHECKING:
    import anndata

#: measured: expm1(smallest non-zero raw.X value) × obs["n_counts"] = 10,000 ± 7 in every cell
PBMC68K_TARGET_SUM = 1e4


def _cellzoo_meta(dataset: str, state: str, label_key: str) -> dict[str, object]:
    return {"dataset": dataset, "input_state": state, "label_key": label_key}


def pbmc_markers(genes) -> dict[str, list[str]]:
    """The curated PBMC marker table (``data/pbmc_markers.csv``) as ``{cell type: [gene, ...]}``, limited to ``genes``.

    The table's cell types are the ``bulk_labels`` of pbmc68k_reduced; each row cites its source.
    These are the true markers of the ``markers`` task on the PBMC datasets.
    """
    import csv
    from importlib import resources

    present = set(map(str, genes))
    out: dict[str, list[str]] = {}
    text = (resources.files("cellzoo_scdata") / "data" / "pbmc_markers.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(line for line in text.splitlines() if not line.startswith("#")):
        if row["gene"] in present and row["gene"] not in out.setdefault(row["cell_type"], []):
            out[row["cell_type"]].append(row["gene"])
    return {cell_type: genes for cell_type, genes in out.items() if genes}


def _pbmc68k_log1p() -> anndata.AnnData:
    """``raw.X`` of scanpy's pbmc68k_reduced (log1p CP10k) with its cell metadata."""
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    source = sc.datasets.pbmc68k_reduced()
    raw = source.raw
    colours = {k: list(source.uns[k]) for k in ("bulk_labels_colors", "louvain_colors") if k in source.uns}
    return ad.AnnData(
        X=sp.csr_matrix(raw.X, dtype=np.float32),
        obs=source.obs.copy(),
        var=pd.DataFrame(index=pd.Index(raw.var_names.astype(str), name=None)),
        # the embeddings are per cell and stay valid; gene loadings and graphs of the z-scored .X do not carry over
        obsm={k: np.asarray(v).copy() for k, v in source.obsm.items()},
        uns=colours,
    )


def pbmc68k_reduced() -> anndata.AnnData:
    """700 PBMCs × 765 genes from Zheng et al. 2017, as reduced by scanpy; log1p CP10k in ``.X``.

    ``.X`` is scanpy's ``raw.X``: log1p of counts normalised to 10,000 per cell over all genes
    of the original data, then subset to 765 genes (so ``expm1`` row sums are 1,100–2,800, not
    10,000), stored with 3 decimals. The z-scored matrix scanpy keeps in ``.X`` is not used.
    Labels: ``obs["bulk_labels"]`` (10 types); also ``obs["louvain"]`` (11 clusters) and the
    original library size ``obs["n_counts"]``.
    """
    adata = _pbmc68k_log1p()
    adata.uns["cellzoo"] = _cellzoo_meta("pbmc68k_reduced", "log1p_norm", "bulk_labels")
    # normalised to 10,000 per cell over all genes, then cut to 765 (measured: see README)
    adata.uns["cellzoo"]["target_sum"] = 10000.0
    adata.uns["cellzoo"]["markers"] = pbmc_markers(adata.var_names)
    return adata


def pbmc68k_reduced_counts(max_error: float = 0.25) -> anndata.AnnData:
    """pbmc68k_reduced with approximate raw counts in ``.X`` (for models that need counts).

    Counts are ``expm1(raw.X)`` divided per cell by its smallest non-zero value and rounded (see
    :func:`cellzoo_scdata.counts.approximate_counts`). The per-cell distance to the integers
    before rounding is in ``obs["count_rounding_error"]`` and a summary in
    ``uns["approximate_counts"]``; cells further than ``max_error`` from integers are an error
    (none are: the worst is 0.11). They are counts of the 765 genes only, so their row sums
    (342–1,654) are smaller than the original library sizes in ``obs["n_counts"]``.
    """
    adata = _pbmc68k_log1p()
    approx = approximate_counts(adata.X, max_error=max_error)
    adata.X = approx.counts
    adata.obs["count_rounding_error"] = approx.rounding_error.astype(np.float32)
    adata.uns["approximate_counts"] = {
        "method": "expm1(raw.X) / per-cell smallest non-zero expm1 value, rounded",
        **approx.summary(),
    }
    adata.uns["cellzoo"] = _cellzoo_meta("pbmc68k_reduced_counts", "counts", "bulk_labels")
    adata.uns["cellzoo"]["markers"] = pbmc_markers(adata.var_names)
    return adata


def krumsiek11() -> anndata.AnnData:
    """Simulated myeloid differentiation (Krumsiek et al. 2011): 640 cells × 11 transcription factors.

    Continuous simulated expression levels, mostly in [0, 1] with small Gaussian noise (values
    down to -0.016): neither counts nor log1p, so it is declared ``"scaled"`` (the contract's
    state for matrices with negative values). Labels in ``obs["cell_type"]`` (progenitor, Ery,
    Mk, Mo, Neu). scanpy's file repeats cell names; they are made unique here.
    """
    import scanpy as sc

    with warnings.catch_warnings():
        # the duplicate names it warns about are fixed on the next line
        warnings.filterwarnings("ignore", message="Observation names are not unique")
        adata = sc.datasets.krumsiek11()
    adata.obs_names_make_unique()
    adata.X = np.asarray(adata.X, dtype=np.float32)
    adata.uns["cellzoo"] = _cellzoo_meta("krumsiek11", "scaled", "cell_type")
    return adata
