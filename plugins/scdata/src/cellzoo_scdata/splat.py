"""Splat-model simulation of labelled UMI counts with known marker genes (Zappia et al. 2017).

The model, in the order it is drawn (names as in Splatter's ``SplatParams``):

1. gene base means ``λ_g ~ Gamma(mean_shape, rate=mean_rate)``;
2. per group ``k`` and gene ``g``: with probability ``de_prob`` the gene is differentially
   expressed, with factor ``f_kg ~ LogNormal(de_fac_loc, de_fac_scale)``, inverted (``1/f``,
   down-regulation) with probability ``de_down_prob``; otherwise ``f_kg = 1``;
3. per cell ``c``: a group ``k(c)`` drawn with ``group_probs`` and a library size
   ``L_c ~ LogNormal(lib_loc, lib_scale)``;
4. cell means ``μ_cg = L_c · λ_g f_kg / Σ_g' λ_g' f_kg'`` (the group's mean profile normalised to
   proportions, scaled by the library size);
5. biological coefficient of variation ``bcv_cg = (bcv_common + 1/√μ_cg) · √(bcv_df / χ²_g)``
   with one ``χ²_g ~ χ²(bcv_df)`` per gene, and trended means
   ``μ'_cg ~ Gamma(shape=1/bcv², scale=μ_cg · bcv²)``;
6. counts ``x_cg ~ Poisson(μ'_cg)`` (together with 5: a gamma–Poisson, i.e. negative binomial);
7. optional dropout: a count is zeroed with probability
   ``1 / (1 + exp(-dropout_shape · (log μ'_cg - dropout_mid)))``.

Ground truth: a group's **markers** are the genes whose factor in that group is above 1
(up-regulated), ranked by factor, largest first.

Determinism. Gene-level draws (1, 2 and the χ² of 5) come from ``SeedSequence(seed)`` child 0.
Cells are generated in fixed tiles of :data:`TILE_CELLS` cells; tile ``t`` draws from child
``(1, t)``. The tile layout depends only on ``n_cells``, never on the caller's ``chunk_size``, so
the same seed gives the same matrix however it is chunked, in memory or written to disk.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from cellzoo.errors import ConfigError

if TYPE_CHECKING:
    import anndata
    import pandas as pd

#: cells per generation tile: fixed, so the random streams never depend on the caller's chunking
TILE_CELLS = 1_000
#: HDF5 chunk length (elements) of the written X arrays; large enough that appends stay fast
_H5_CHUNK = 1 << 18


@dataclass(frozen=True)
class SplatParams:
    """Parameters of the simulation; defaults are Splatter's except where the README says otherwise."""

    n_cells: int = 2_000
    n_genes: int = 1_000
    n_groups: int = 5
    group_probs: tuple[float, ...] | None = None
    mean_shape: float = 0.6
    mean_rate: float = 0.3
    lib_loc: float = 8.0
    lib_scale: float = 0.2
    de_prob: float = 0.1
    de_down_prob: float = 0.5
    de_fac_loc: float = 0.1
    de_fac_scale: float = 0.4
    bcv_common: float = 0.1
    bcv_df: float = 60.0
    dropout: bool = False
    dropout_mid: float = 0.0
    dropout_shape: float = -1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.group_probs is not None:
            object.__setattr__(self, "group_probs", tuple(float(p) for p in self.group_probs))
        problems = []
        for key in ("n_cells", "n_genes", "n_groups"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                problems.append(f"{key}={value!r} must be a positive integer")
        for key in ("mean_shape", "mean_rate", "bcv_df"):
            if not getattr(self, key) > 0:
                problems.append(f"{key}={getattr(self, key)!r} must be positive")
        for key in ("lib_scale", "de_fac_scale", "bcv_common"):
            if not getattr(self, key) >= 0:
                problems.append(f"{key}={getattr(self, key)!r} must be zero or positive")
        for key in ("de_prob", "de_down_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                problems.append(f"{key}={getattr(self, key)!r} must be a probability in [0, 1]")
        if self.group_probs is not None:
            probs = np.asarray(self.group_probs)
            if len(probs) != self.n_groups:
                problems.append(f"group_probs has {len(probs)} entries for n_groups={self.n_groups}")
            elif (probs < 0).any() or not np.isclose(probs.sum(), 1.0, atol=1e-6):
                problems.append(f"group_probs={self.group_probs!r} must be non-negative and sum to 1")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            problems.append(f"seed={self.seed!r} must be a non-negative integer")
        if problems:
            raise ConfigError("invalid splat parameters: " + "; ".join(problems))

    @property
    def groups(self) -> list[str]:
        return [f"Group{k + 1}" for k in range(self.n_groups)]

    @property
    def genes(self) -> list[str]:
        return [f"Gene{g + 1}" for g in range(self.n_genes)]

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["group_probs"] = list(self.group_probs) if self.group_probs is not None else None
        return out


@dataclass(frozen=True)
class GeneModel:
    """The gene-level draws shared by every cell: base means, DE factors, BCV χ² and group profiles."""

    base_mean: np.ndarray  # genes
    de_factors: np.ndarray  # genes × groups
    bcv_chisq: np.ndarray  # genes
    proportions: np.ndarray  # groups × genes, rows sum to 1

    def markers(self, params: SplatParams) -> dict[str, list[str]]:
        """Per group, the up-regulated genes (factor > 1), largest factor first."""
        genes = np.asarray(params.genes, dtype=object)
        out = {}
        for k, group in enumerate(params.groups):
            factors = self.de_factors[:, k]
            up = np.flatnonzero(factors > 1.0)
            order = up[np.lexsort((up, -factors[up]))]  # ties: gene order
            out[group] = [str(g) for g in genes[order]]
        return out


def gene_model(params: SplatParams) -> GeneModel:
    """Draw the gene-level quantities (steps 1, 2 and the χ² of step 5)."""
    rng = np.random.default_rng(np.random.SeedSequence(params.seed, spawn_key=(0,)))
    G, K = params.n_genes, params.n_groups
    base = rng.gamma(params.mean_shape, 1.0 / params.mean_rate, size=G)
    factors = np.ones((G, K))
    for k in range(K):  # one group at a time, as Splatter does
        selected = rng.random(G) < params.de_prob
        n = int(selected.sum())
        fac = rng.lognormal(params.de_fac_loc, params.de_fac_scale, size=n)
        down = rng.random(n) < params.de_down_prob
        factors[selected, k] = np.where(down, 1.0 / fac, fac)
    chisq = rng.chisquare(params.bcv_df, size=G)
    profiles = base[None, :] * factors.T
    proportions = profiles / profiles.sum(axis=1, keepdims=True)
    return GeneModel(base, factors, chisq, proportions)


def _tile_bounds(n_cells: int) -> list[tuple[int, int]]:
    return [(start, min(start + TILE_CELLS, n_cells)) for start in range(0, n_cells, TILE_CELLS)]


def _group_probs(params: SplatParams) -> np.ndarray:
    if params.group_probs is None:
        return np.full(params.n_groups, 1.0 / params.n_groups)
    probs = np.asarray(params.group_probs, dtype=np.float64)
    return probs / probs.sum()


def simulate_tile(params: SplatParams, model: GeneModel, tile: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Counts (CSR float32), group codes and library sizes of tile ``tile`` (steps 3–7)."""
    start, stop = _tile_bounds(params.n_cells)[tile]
    n = stop - start
    rng = np.random.default_rng(np.random.SeedSequence(params.seed, spawn_key=(1, tile)))
    groups = rng.choice(params.n_groups, size=n, p=_group_probs(params))
    lib = rng.lognormal(params.lib_loc, params.lib_scale, size=n)
    # a floor keeps 1/√μ finite for a gene whose gamma base mean underflowed to 0
    mu = np.maximum(model.proportions[groups] * lib[:, None], 1e-12)
    bcv = (params.bcv_common + 1.0 / np.sqrt(mu)) * np.sqrt(params.bcv_df / model.bcv_chisq)[None, :]
    bcv2 = bcv * bcv
    trended = rng.gamma(1.0 / bcv2, mu * bcv2)
    counts = rng.poisson(trended).astype(np.float32)
    if params.dropout:
        with np.errstate(divide="ignore", over="ignore"):
            drop_prob = 1.0 / (1.0 + np.exp(-params.dropout_shape * (np.log(trended) - params.dropout_mid)))
        counts[rng.random(counts.shape) < drop_prob] = 0.0
    return sp.csr_matrix(counts), groups, lib


def iter_splat_chunks(
    params: SplatParams, chunk_size: int = 10_000, model: GeneModel | None = None
) -> Iterator[tuple[sp.csr_matrix, np.ndarray, np.ndarray]]:
    """Yield ``(counts, group_codes, library_sizes)`` for consecutive blocks of ``chunk_size`` cells.

    Tiles are generated one at a time and regrouped, so at most about one chunk plus one tile of
    cells is in memory; the values do not depend on ``chunk_size``.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ConfigError(f"chunk_size={chunk_size!r} must be a positive integer (cells per chunk)")
    model = model or gene_model(params)
    pending: list[tuple[sp.csr_matrix, np.ndarray, np.ndarray]] = []
    n_pending = 0
    for tile in range(len(_tile_bounds(params.n_cells))):
        pending.append(simulate_tile(params, model, tile))
        n_pending += pending[-1][0].shape[0]
        while n_pending >= chunk_size:
            X, g, lib = _stack(pending)
            yield X[:chunk_size], g[:chunk_size], lib[:chunk_size]
            pending = [(X[chunk_size:], g[chunk_size:], lib[chunk_size:])]
            n_pending -= chunk_size
    if n_pending:
        yield _stack(pending)


def _stack(parts: Sequence[tuple[sp.csr_matrix, np.ndarray, np.ndarray]]):
    if len(parts) == 1:
        return parts[0]
    return (
        sp.vstack([p[0] for p in parts], format="csr"),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


# -- AnnData pieces ------------------------------------------------------------------------------


def _obs(params: SplatParams, codes: np.ndarray, lib: np.ndarray, start: int = 0) -> pd.DataFrame:
    import pandas as pd

    names = pd.Index([f"Cell{i + 1}" for i in range(start, start + len(codes))])
    return pd.DataFrame(
        {
            "group": pd.Categorical.from_codes(codes, categories=params.groups),
            "library_size": lib.astype(np.float32),
        },
        index=names,
    )


def _var(params: SplatParams, model: GeneModel) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({"base_mean": model.base_mean.astype(np.float32)}, index=pd.Index(params.genes))


def _uns(params: SplatParams, model: GeneModel) -> dict[str, Any]:
    markers = model.markers(params)
    return {
        "splat": {
            "params": {k: v for k, v in params.to_json().items() if v is not None},
            "groups": list(params.groups),
            "markers": markers,
            "de_factors": model.de_factors.astype(np.float64),
        },
        # the markers task reads the truth here, whatever the dataset
        "cellzoo": {"dataset": "splat", "input_state": "counts", "label_key": "group", "markers": markers},
    }


def splat(
    n_cells: int = 2_000,
    n_genes: int = 1_000,
    n_groups: int = 5,
    de_prob: float = 0.1,
    de_fac_loc: float = 0.1,
    de_fac_scale: float = 0.4,
    lib_loc: float = 8.0,
    lib_scale: float = 0.2,
    dropout: bool = False,
    dropout_mid: float = 0.0,
    dropout_shape: float = -1.0,
    seed: int = 0,
    group_probs: Sequence[float] | None = None,
    chunk_size: int = 10_000,
    **more: Any,
) -> anndata.AnnData:
    """Simulated counts (sparse CSR float32) with the group in ``obs["group"]`` and the truth in ``uns["splat"]``.

    ``uns["splat"]["markers"]`` maps each group to its up-regulated genes ranked by DE factor;
    ``uns["splat"]["de_factors"]`` is the genes × groups factor matrix (columns in
    ``uns["splat"]["groups"]`` order). Further :class:`SplatParams` fields (``mean_shape``,
    ``mean_rate``, ``de_down_prob``, ``bcv_common``, ``bcv_df``) are accepted as keywords.
    ``chunk_size`` only bounds how many cells are assembled at a time; it never changes the data.
    """
    import anndata as ad

    params = make_params(
        n_cells=n_cells,
        n_genes=n_genes,
        n_groups=n_groups,
        de_prob=de_prob,
        de_fac_loc=de_fac_loc,
        de_fac_scale=de_fac_scale,
        lib_loc=lib_loc,
        lib_scale=lib_scale,
        dropout=dropout,
        dropout_mid=dropout_mid,
        dropout_shape=dropout_shape,
        seed=seed,
        group_probs=group_probs,
        **more,
    )
    model = gene_model(params)
    chunks = list(iter_splat_chunks(params, chunk_size, model))
    X, codes, lib = _stack(chunks)
    return ad.AnnData(X=X, obs=_obs(params, codes, lib), var=_var(params, model), uns=_uns(params, model))


def make_params(**kwargs: Any) -> SplatParams:
    """:class:`SplatParams` from keywords; an unknown keyword is a :class:`ConfigError` listing the valid ones."""
    fields = {f.name for f in dataclasses.fields(SplatParams)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ConfigError(
            f"splat has no parameter {', '.join(map(repr, unknown))}; parameters: {', '.join(sorted(fields))}"
        )
    if kwargs.get("group_probs") is not None:
        kwargs["group_probs"] = tuple(kwargs["group_probs"])
    return SplatParams(**kwargs)


def write_splat_h5ad(path: str | os.PathLike[str], n_cells: int, *, chunk_size: int = 10_000, **params: Any) -> Path:
    """Simulate ``n_cells`` cells and write them to an ``.h5ad`` chunk by chunk; returns the path.

    The counts go straight from each chunk into a resizable CSR group (anndata's sparse dataset
    ``append``), so the full matrix is never in memory, dense or sparse: peak memory is one chunk
    plus one tile plus the per-cell ``obs`` columns. The file equals ``splat(n_cells, ...).write_h5ad``
    in content, reads with ``anndata.read_h5ad(path, backed="r")``, and is written to a temporary
    name and renamed, so a failure leaves no partial file.
    """
    import h5py
    import pandas as pd

    try:
        from anndata.io import sparse_dataset, write_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import sparse_dataset, write_elem

    from cellzoo import atomic_path

    p = make_params(n_cells=n_cells, **params)
    model = gene_model(p)
    path = Path(path)
    obs_parts = []
    with atomic_path(path, suffix=".h5ad") as tmp, h5py.File(tmp, "w") as f:
        start = 0
        dataset = None
        for X, codes, lib in iter_splat_chunks(p, chunk_size, model):
            if dataset is None:
                write_elem(f, "X", X, dataset_kwargs={"chunks": (_H5_CHUNK,), "indptr_dtype": np.int64})
                dataset = sparse_dataset(f["X"])
            else:
                dataset.append(X)
            obs_parts.append(_obs(p, codes, lib, start))
            start += X.shape[0]
        write_elem(f, "obs", pd.concat(obs_parts))
        write_elem(f, "var", _var(p, model))
        write_elem(f, "uns", _uns(p, model))
        for key in ("obsm", "varm", "obsp", "varp", "layers"):
            write_elem(f, key, {})
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
    return path
