"""The input contract: which state of the expression matrix a model consumes, checked on every call.

States a model can declare:

* ``"counts"`` — raw integer UMI counts;
* ``"log1p_norm"`` — ``log1p`` of counts normalised per cell to ``target_sum`` (default 1e4,
  the convention of scanpy's ``normalize_total`` + ``log1p`` and of CellTypist);
* ``"any"`` — whatever finite matrix it is given (controls).

:func:`detect_state` additionally recognises ``"scaled"`` (has negative values, e.g. z-scored by
``sc.pp.scale``) and ``"nonnegative"`` (non-negative, non-integer and not recognisably
log1p-normalised, e.g. CPM without the log). Detection looks at a seeded random sample of rows —
not just the first row, which is how CellTypist-style checks get fooled.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..errors import ArtifactError, ConfigError, InputError

if TYPE_CHECKING:
    import anndata

logger = logging.getLogger(__name__)

#: states a model may declare in its contract
STATES = ("counts", "log1p_norm", "any")
#: states :func:`detect_state` can report
DETECTED_STATES = ("counts", "log1p_norm", "scaled", "nonnegative")

_DESCRIBE = {
    "counts": "raw integer counts",
    "log1p_norm": "log1p-normalised expression",
    "scaled": "scaled data with negative values (e.g. z-scored by sc.pp.scale)",
    "nonnegative": "non-negative values that are neither integer counts nor log1p-normalised (e.g. CPM without log)",
}
_RAW_COUNTS_HINT = "provide raw counts in adata.X, adata.layers['counts'] or adata.raw"
#: no per-cell normalisation puts a single gene above 1e8, so log1p data never exceeds this
_LOG1P_MAX = float(np.log1p(1e8))
#: stored values within this distance of an integer count as integers (float32 round-trips)
_INT_ATOL = 1e-3
_CHUNK_ROWS = 4096


class InputStateWarning(UserWarning):
    """The data satisfies the contract but looks unusual (e.g. an unexpected target sum)."""


@dataclass(frozen=True)
class InputContract:
    """The input state a model consumes; recorded in every artifact's ``config.json``."""

    state: str = "counts"
    target_sum: float | None = 1e4

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ConfigError(f"input state {self.state!r} is not one of {', '.join(STATES)}")
        if self.target_sum is not None:
            if isinstance(self.target_sum, bool) or not isinstance(self.target_sum, (int, float)):
                raise ConfigError(f"target_sum must be a positive number, got {self.target_sum!r}")
            if not np.isfinite(self.target_sum) or self.target_sum <= 0:
                raise ConfigError(f"target_sum must be a positive number, got {self.target_sum!r}")
            object.__setattr__(self, "target_sum", float(self.target_sum))
        elif self.state == "log1p_norm":
            raise ConfigError("a log1p_norm contract needs a target_sum (the per-cell total before log1p), e.g. 1e4")

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "target_sum": self.target_sum}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputContract:
        if not isinstance(data, Mapping):
            raise ArtifactError(
                f"input contract must be a JSON object like {{'state': 'counts', 'target_sum': 10000.0}}, got {data!r}"
            )
        unknown = sorted(set(data) - {"state", "target_sum"})
        if unknown:
            raise ArtifactError(f"input contract has unknown keys {unknown}; expected 'state' and 'target_sum'")
        if "state" not in data:
            raise ArtifactError(f"input contract {dict(data)!r} lacks 'state' (one of {', '.join(STATES)})")
        try:
            return cls(state=data["state"], target_sum=data.get("target_sum", 1e4))
        except ConfigError as exc:
            raise ArtifactError(f"input contract {dict(data)!r} is invalid: {exc}") from exc


# -- scanning the matrix ---------------------------------------------------------------------


def _as_2d(X: Any) -> Any:
    """``X`` as an in-memory ndarray or CSR/CSC matrix (backed AnnData matrices are read in)."""
    if isinstance(X, np.matrix):
        return np.asarray(X)
    if sp.issparse(X):
        return X if X.format in ("csr", "csc") else X.tocsr()
    if isinstance(X, np.ndarray):
        return X
    if hasattr(X, "to_memory"):  # anndata's backed sparse dataset
        return _as_2d(X.to_memory())
    if hasattr(X, "shape") and hasattr(X, "dtype"):  # an h5py dataset
        return np.asarray(X[()])
    return np.asarray(X)


def _stored_values(X: Any):
    """Yield ``(values, rows_of)`` blocks covering every stored value of ``X``.

    ``rows_of(mask)`` gives the row of each value selected by ``mask`` (computed only when needed:
    for a dense block a per-value row array would double the memory of the scan).
    """
    X = _as_2d(X)
    if sp.issparse(X):
        if X.format == "csr":
            indptr = X.indptr

            def rows_of(mask):
                return np.searchsorted(indptr, np.flatnonzero(mask), side="right") - 1

        else:
            indices = X.indices

            def rows_of(mask):
                return indices[mask]

        yield np.asarray(X.data), rows_of
        return
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        block = np.asarray(X[start : start + _CHUNK_ROWS])
        n_cols = block.shape[1]
        yield block.ravel(), lambda mask, start=start, n_cols=n_cols: start + np.flatnonzero(mask) // n_cols


@dataclass
class _Scan:
    nonfinite: int = 0
    nonfinite_rows: np.ndarray | None = None
    negative: int = 0
    min_value: float = 0.0
    nonint: int = 0
    nonint_example: float | None = None


def _scan(X: Any) -> _Scan:
    """Count the bad values of the whole matrix in one vectorised pass over row blocks."""
    scan = _Scan()
    bad_rows: list[np.ndarray] = []
    for values, rows_of in _stored_values(X):
        if values.size == 0:
            continue
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise InputError(f"the expression matrix has dtype {values.dtype}; expected a real numeric matrix")
        if np.issubdtype(values.dtype, np.floating):
            finite = np.isfinite(values)
            if not finite.all():
                scan.nonfinite += int((~finite).sum())
                bad_rows.append(np.unique(rows_of(~finite)))
                values = values[finite]
            if values.size == 0:
                continue
            frac = np.abs(values - np.rint(values)) > _INT_ATOL
            n = int(frac.sum())
            if n and scan.nonint_example is None:
                scan.nonint_example = float(values[np.argmax(frac)])
            scan.nonint += n
        neg = values < 0
        scan.negative += int(neg.sum())
        scan.min_value = min(scan.min_value, float(values.min()))
    if bad_rows:
        scan.nonfinite_rows = np.unique(np.concatenate(bad_rows))
    return scan


def _sample(X: Any, n_rows: int, seed: int) -> sp.csr_matrix:
    """A seeded random sample of rows as CSR with non-finite values dropped.

    Backed matrices are read only at the sampled rows.
    """
    if isinstance(X, np.matrix) or (sp.issparse(X) and X.format not in ("csr", "csc")):
        X = _as_2d(X)  # np.matrix rows stay 2-D matrices; COO cannot be indexed
    n = X.shape[0]
    if n > n_rows:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=n_rows, replace=False))
        S = _as_2d(X[idx])
    else:
        S = _as_2d(X)
    S = sp.csr_matrix(S, dtype=np.float64)
    if S.nnz and not np.isfinite(S.data).all():
        S.data[~np.isfinite(S.data)] = 0.0
    S.eliminate_zeros()
    return S


def _row_minima(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The smallest stored value of each non-empty CSR row."""
    nonempty = np.diff(indptr) > 0
    return np.minimum.reduceat(values, indptr[:-1][nonempty])


def _looks_log1p(S: sp.csr_matrix) -> bool:
    """Whether non-negative non-integer values are log1p of (per-cell scaled) counts.

    Two signatures, either suffices: ``expm1`` row sums all equal one target (normalised over all
    genes), or ``expm1`` values of a cell are integer multiples of its smallest one (counts times a
    size factor) — true even after subsetting genes, when the row sums no longer agree.
    """
    if S.nnz == 0 or S.data.max() > _LOG1P_MAX:
        return False
    E = np.expm1(S.data)
    sums = np.add.reduceat(E, S.indptr[:-1][np.diff(S.indptr) > 0])
    median = np.median(sums)
    if median > 0 and np.median(np.abs(sums / median - 1.0)) < 1e-2 and len(sums) > 1:
        return True
    counts = np.diff(S.indptr)
    ratio = E / np.repeat(_row_minima(S.indptr, E), counts[counts > 0])
    small = ratio <= 50  # far above, rounding of the stored values blurs the integers
    if not small.any():
        return False
    ratio = ratio[small]
    # values are often stored rounded (3 decimals in scanpy's pbmc68k_reduced); allow for it
    tol = 0.05 + 2e-3 * ratio
    return float(np.mean(np.abs(ratio - np.rint(ratio)) <= tol)) >= 0.9


def detect_state(X: Any, n_rows: int = 500, seed: int = 0) -> str:
    """Guess the state of ``X``: ``"counts"``, ``"log1p_norm"``, ``"scaled"`` or ``"nonnegative"``.

    Looks at ``n_rows`` rows drawn with ``seed`` (all rows when there are fewer), dense or sparse.
    Non-finite values are ignored here; :func:`validate` reports them.
    """
    S = _sample(X, n_rows, seed)
    values = S.data
    if values.size == 0:
        return "counts"
    if values.min() < 0:
        return "scaled"
    if np.all(np.abs(values - np.rint(values)) <= _INT_ATOL):
        return "counts"
    return "log1p_norm" if _looks_log1p(S) else "nonnegative"


# -- validation --------------------------------------------------------------------------------


def _first(rows: np.ndarray, k: int = 5) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:k])
    return shown + (", …" if len(rows) > k else "")


def validate(X: Any, state: str, *, target_sum: float | None = 1e4, where: str = "the matrix") -> None:
    """Raise :class:`InputError` unless ``X`` is a valid matrix in ``state``.

    ``where`` names the matrix in messages (``"adata.X"``, ``"adata.layers['counts']"``). A
    log1p_norm matrix whose ``expm1`` row sums are far from ``target_sum`` only warns
    (:class:`InputStateWarning`): data subset to highly variable genes after normalisation
    legitimately sums to less.
    """
    if state not in STATES:
        raise ConfigError(f"cannot validate against state {state!r}; contract states are {', '.join(STATES)}")
    X = _as_2d(X)
    if X.ndim != 2:
        raise InputError(f"{where} must be a 2-D cells × genes matrix, got shape {X.shape}")
    scan = _scan(X)
    if scan.nonfinite:
        rows = scan.nonfinite_rows
        raise InputError(
            f"{where} has {scan.nonfinite} NaN or infinite values in {len(rows)} cells (rows {_first(rows)}). "
            "They usually come from dividing by a zero total during normalisation; drop those cells (the rows are "
            "positions in adata.obs_names) or redo the preprocessing from raw counts"
        )
    if state == "any":
        return
    if scan.negative:
        raise InputError(
            f"{where} has {scan.negative} negative values (min {scan.min_value:.4g}) but {state} data cannot be "
            f"negative: it looks scaled (e.g. z-scored by sc.pp.scale). This model needs {_DESCRIBE[state]}; "
            f"{_RAW_COUNTS_HINT}"
        )
    if state == "counts":
        if scan.nonint:
            detected = detect_state(X)
            if detected == "log1p_norm":
                raise InputError(
                    f"{where} is declared as raw counts but looks already log-transformed (non-integer values such "
                    f"as {scan.nonint_example:.4g} whose expm1 are integer multiples of a per-cell factor). This "
                    f"model needs raw integer counts; {_RAW_COUNTS_HINT}"
                )
            raise InputError(
                f"{where} is declared as raw counts but has {scan.nonint} non-integer values (e.g. "
                f"{scan.nonint_example:.4g}). This model needs raw integer UMI counts; {_RAW_COUNTS_HINT}. "
                "Soft counts from ambient-RNA correction can be rounded with np.rint first"
            )
        return
    # log1p_norm
    S = _sample(X, 500, 0)
    if S.nnz and not scan.nonint:
        raise InputError(
            f"{where} is declared as log1p-normalised but all its values are integers: it looks like raw counts. "
            "Declare it as counts (adata.uns['cellzoo']['input_state'] = 'counts'), and cellzoo normalises it"
        )
    if S.nnz and S.data.max() > _LOG1P_MAX:
        raise InputError(
            f"{where} is declared as log1p-normalised but has values up to {S.data.max():.4g}, beyond any log1p "
            "of normalised counts: it looks normalised but not log-transformed. Apply sc.pp.log1p, or "
            f"{_RAW_COUNTS_HINT}"
        )
    if S.nnz and target_sum is not None:
        _warn_target_sum(S, target_sum, where)


def _warn_target_sum(S: sp.csr_matrix, target_sum: float, where: str) -> None:
    E = S.copy()
    E.data = np.expm1(E.data)
    sums = np.asarray(E.sum(axis=1)).ravel()
    sums = sums[sums > 0]
    median = float(np.median(sums))
    if 0.8 * target_sum <= median <= 1.25 * target_sum:
        return
    fix = f"sc.pp.normalize_total(adata, target_sum={target_sum:g}); sc.pp.log1p(adata)"
    stats = f"expm1 row sums have median {median:.4g} (range {sums.min():.4g}–{sums.max():.4g})"
    if np.median(np.abs(_row_minima(E.indptr, E.data) - 1.0)) < 1e-2:
        message = (
            f"{where} looks like log1p of unnormalised counts (the smallest expm1 value of most cells is 1; "
            f"{stats}), not normalised to the model's target sum {target_sum:.4g}. Normalise the counts before "
            f"the log: {fix}"
        )
    else:
        message = (
            f"{where} is log1p data whose {stats}, not the model's target sum {target_sum:.4g}: it seems to be "
            f"normalised to about {median:.4g} per cell. That is expected if genes were subset after "
            f"normalisation (e.g. to highly variable genes); otherwise renormalise from counts with {fix}"
        )
    warnings.warn(
        message,
        InputStateWarning,
        stacklevel=3,
    )


# -- conversion ---------------------------------------------------------------------------------


def _float32(X: Any) -> Any:
    X = _as_2d(X)
    if sp.issparse(X):
        return X if X.dtype == np.float32 else X.astype(np.float32)
    return np.asarray(X, dtype=np.float32)


def scale_to_total(X: Any, target_sum: float) -> Any:
    """Every cell (row) of counts scaled to sum to ``target_sum``, no log; a zero-count cell stays all zeros.

    Float32; a sparse matrix stays sparse (CSR). The library-size normalisation of scGAN and ACTIVA
    (their "LSN", per cell).
    """
    return _scaled(X, target_sum).astype(np.float32)


def _scaled(X: Any, target_sum: float) -> Any:
    # float64 copy, so the caller's matrix is left alone and log1p after it loses nothing
    X = _as_2d(X)
    if sp.issparse(X):
        X = X.tocsr().astype(np.float64)
        totals = np.asarray(X.sum(axis=1)).ravel()
        scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        X.data *= np.repeat(scale, np.diff(X.indptr))
        return X
    X = np.asarray(X, dtype=np.float64)
    totals = X.sum(axis=1)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return X * scale[:, None]


def _log1p_normalise(X: Any, target_sum: float) -> Any:
    """Counts → log1p(counts / total * target_sum); a zero-count cell stays all zeros."""
    X = _scaled(X, target_sum)
    if sp.issparse(X):
        np.log1p(X.data, out=X.data)
        return X.astype(np.float32)
    return np.log1p(X).astype(np.float32)


def to_input_state(X: Any, from_state: str, contract: InputContract) -> Any:
    """Turn ``X`` (in ``from_state``; ``"auto"`` detects it) into the contract's state, as float32.

    Counts become log1p_norm (sparse stays sparse); a matrix already in the contract's state is
    validated and passed through. Going back to counts from anything else is impossible.
    """
    if contract.state == "any":
        validate(X, "any")
        return _float32(X)
    if from_state == "auto":
        from_state = detect_state(X)
    if from_state not in DETECTED_STATES:
        raise ConfigError(f"unknown input state {from_state!r}; expected one of {', '.join(DETECTED_STATES)} or 'auto'")
    if from_state == contract.state:
        validate(X, from_state, target_sum=contract.target_sum)
        return _float32(X)
    if from_state == "counts" and contract.state == "log1p_norm":
        validate(X, "counts")
        return _log1p_normalise(X, contract.target_sum)
    raise InputError(
        f"cannot turn {_DESCRIBE[from_state]} into {_DESCRIBE[contract.state]}: the model needs "
        f"{contract.state} and only raw counts can be converted; {_RAW_COUNTS_HINT}"
    )


# -- choosing the matrix of an AnnData ------------------------------------------------------------


def declared_state(adata: anndata.AnnData) -> str | None:
    """The state of ``adata.X`` declared in ``adata.uns['cellzoo']['input_state']``, if any."""
    meta = adata.uns.get("cellzoo")
    if not isinstance(meta, Mapping):
        return None
    state = meta.get("input_state")
    if state is None or str(state) == "auto":
        return None
    state = str(state)
    if state not in DETECTED_STATES:
        raise InputError(
            f"adata.uns['cellzoo']['input_state'] is {state!r}, not one of {', '.join(DETECTED_STATES)}; "
            "fix it or delete the key to let cellzoo detect the state"
        )
    return state


def _candidates(adata: anndata.AnnData):
    """Matrices that may hold the data in another state: ``layers['counts']``, then ``.raw``."""
    if "counts" in adata.layers:
        yield "adata.layers['counts']", adata.layers["counts"]
    raw = adata.raw
    if raw is not None:
        if raw.n_vars == adata.n_vars and (raw.var_names == adata.var_names).all():
            yield "adata.raw.X", raw.X
        elif adata.var_names.isin(raw.var_names).all():
            yield "adata.raw.X", raw.X[:, raw.var_names.get_indexer(adata.var_names)]
        else:
            logger.info("adata.raw lacks some of adata.var_names; not using it")


def prepare_input(adata: anndata.AnnData, contract: InputContract) -> Any:
    """The matrix of ``adata`` in the contract's state, validated, float32 (sparse stays sparse).

    ``adata.X`` is used when it is in (or convertible to) the wanted state — its state is the one
    declared in ``adata.uns['cellzoo']['input_state']``, else detected. Otherwise raw counts (or,
    for a log1p_norm model, log1p data) are taken from ``adata.layers['counts']`` or ``adata.raw``
    (restricted to ``adata.var_names``); the chosen source is logged.
    """
    X = adata.X
    if contract.state == "any":
        validate(X, "any", where="adata.X")
        return _float32(X)
    declared = declared_state(adata)
    state = declared or detect_state(X)
    where = "adata.X" + (f" (declared {declared!r} in adata.uns['cellzoo'])" if declared else "")
    usable = ("counts",) if contract.state == "counts" else ("counts", "log1p_norm")
    if state in usable:
        return _convert(X, state, contract, where, checked_sum=_declared_target_sum(adata) == contract.target_sum)
    found = [f"adata.X looks like {_DESCRIBE[state]}"]
    for name, M in _candidates(adata):
        alt = detect_state(M)
        if alt in usable:
            logger.info("using %s (%s) because adata.X holds %s", name, alt, _DESCRIBE[state])
            return _convert(M, alt, contract, name)
        found.append(f"{name} looks like {_DESCRIBE[alt]}")
    if "counts" not in adata.layers:
        found.append("there is no adata.layers['counts']")
    if adata.raw is None:
        found.append("there is no adata.raw")
    raise InputError(
        f"this model needs {_DESCRIBE[contract.state]} but {'; '.join(found)}. Only raw counts can be "
        f"converted: {_RAW_COUNTS_HINT} (same genes as adata.var_names)"
    )


def _declared_target_sum(adata: anndata.AnnData) -> float | None:
    """``adata.uns['cellzoo']['target_sum']``: what the data were normalised to before any gene subsetting."""
    meta = adata.uns.get("cellzoo")
    value = meta.get("target_sum") if isinstance(meta, Mapping) else None
    return float(value) if value is not None else None


def _convert(X: Any, state: str, contract: InputContract, where: str, checked_sum: bool = False) -> Any:
    if state == contract.state:
        # a declared target sum equal to the model's is trusted: row sums of HVG-subset data cannot show it
        validate(X, state, target_sum=None if checked_sum else contract.target_sum, where=where)
        return _float32(X)
    validate(X, "counts", where=where)
    return _log1p_normalise(X, contract.target_sum)
