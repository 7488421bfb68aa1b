"""Tiny synthetic data sets with structure a real model can learn, for fast tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    import anndata

#: realistic class names (spaces, '+', mixed case) so label handling is exercised, not just "type_0"
CELL_TYPES = ("B cell", "CD4+ T cell", "CD14+ Monocyte", "NK cell", "Dendritic", "CD8+ T cell", "Megakaryocyte")


def tiny_annotate_adata(
    n_cells: int = 60,
    n_genes: int = 30,
    n_classes: int = 3,
    seed: int = 0,
    *,
    sparse: bool = False,
    label_key: str = "cell_type",
) -> anndata.AnnData:
    """Raw counts (float32 integers) with ``obs[label_key]`` and class-specific marker genes.

    Every class has its own block of marker genes expressed about eight times above the shared
    background, and cells differ in library size, so a model that normalises and learns
    anything gets well above chance while a broken one does not. Classes are balanced (round
    robin, then shuffled); no cell has zero counts. ``adata.uns["cellzoo"]`` declares the state
    and, under ``"markers"``, each class's marker genes (the truth the ``markers`` task scores).
    """
    import anndata
    import pandas as pd
    import scipy.sparse as sp

    if n_classes < 1 or n_cells < n_classes or n_genes < n_classes:
        raise ConfigError(
            f"tiny_annotate_adata needs n_cells >= n_classes >= 1 and n_genes >= n_classes, got "
            f"n_cells={n_cells}, n_genes={n_genes}, n_classes={n_classes}"
        )
    rng = np.random.default_rng(seed)
    codes = np.arange(n_cells) % n_classes
    rng.shuffle(codes)
    names = CELL_TYPES[:n_classes] if n_classes <= len(CELL_TYPES) else tuple(f"type_{k}" for k in range(n_classes))

    background = rng.gamma(shape=2.0, scale=1.0, size=n_genes)
    per_class = max(1, min(5, n_genes // (n_classes + 1)))
    rates = np.tile(background, (n_classes, 1))
    for k in range(n_classes):
        rates[k, k * per_class : (k + 1) * per_class] = 8.0 * background[k * per_class : (k + 1) * per_class] + 2.0
    library = rng.lognormal(mean=0.0, sigma=0.3, size=n_cells)
    counts = rng.poisson(rates[codes] * library[:, None]).astype(np.float32)
    empty = counts.sum(axis=1) == 0
    counts[empty, -1] = 1.0

    obs = pd.DataFrame(
        {label_key: pd.Categorical(np.asarray(names, dtype=object)[codes], categories=list(names))},
        index=[f"cell_{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene_{j:03d}" for j in range(n_genes)])
    X = sp.csr_matrix(counts) if sparse else counts
    adata = anndata.AnnData(X=X, obs=obs, var=var)
    markers = {str(names[k]): list(var.index[k * per_class : (k + 1) * per_class]) for k in range(n_classes)}
    adata.uns["cellzoo"] = {
        "dataset": "tiny_annotate",
        "input_state": "counts",
        "label_key": label_key,
        "markers": markers,
    }
    return adata


def log1p_normalised(adata: anndata.AnnData, target_sum: float = 1e4) -> anndata.AnnData:
    """A copy whose ``.X`` is log1p of counts scaled per cell to ``target_sum`` (declared in ``uns``)."""
    import scipy.sparse as sp

    out = adata.copy()
    X = out.X.toarray() if sp.issparse(out.X) else np.asarray(out.X, dtype=np.float64)
    totals = X.sum(axis=1, keepdims=True)
    out.X = np.log1p(X / np.where(totals > 0, totals, 1.0) * target_sum).astype(np.float32)
    out.uns["cellzoo"] = {**out.uns.get("cellzoo", {}), "input_state": "log1p_norm"}
    return out


def z_scored(adata: anndata.AnnData) -> anndata.AnnData:
    """A copy whose ``.X`` is per-gene z-scored log1p data (what ``sc.pp.scale`` gives), undeclared."""
    out = log1p_normalised(adata)
    X = np.asarray(out.X, dtype=np.float64)
    std = X.std(axis=0)
    out.X = ((X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)
    out.uns["cellzoo"] = {k: v for k, v in out.uns["cellzoo"].items() if k != "input_state"}
    return out


def tiny_images(n: int = 4, size: int = 32, seed: int = 0, *, channels: int = 3) -> list[np.ndarray]:
    """Smooth synthetic RGB (or grey) images, float32 in [0, 1]: a few coloured Gaussian blobs and
    a sinusoidal texture on a gradient — structure an up-scaler can learn, unlike white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    images = []
    for _ in range(n):
        image = np.zeros((size, size, channels))
        for c in range(channels):
            image[..., c] = 0.3 * (rng.random() * xx + rng.random() * yy)
        for _ in range(4):
            cy, cx, width = rng.random(), rng.random(), 0.05 + 0.15 * rng.random()
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
            image += blob[..., None] * rng.random(channels) * 0.6
        freq, phase = 2 + 6 * rng.random(), rng.random() * 2 * np.pi
        image += 0.1 * np.sin(2 * np.pi * freq * (xx + yy) + phase)[..., None]
        image = (image - image.min()) / max(image.max() - image.min(), 1e-9)
        images.append(image.astype(np.float32))
    return images
