"""The one prediction pipeline: choose the matrix once, then per chunk validate, convert, align, run, write.

Every prediction of an ``annotate`` model goes through :func:`run_chunks`:

1. **the matrix** — :func:`choose_source` picks, once, the first of ``adata.X``,
   ``layers['counts']`` and ``raw.X`` whose state (declared in ``uns['cellzoo']['input_state']``
   or detected) can be brought to the model's input state (:mod:`cellzoo.data.contract`);
2. **per chunk of rows** — :class:`ChunkPreparer` checks the values, converts counts to
   log1p-normalised expression over all genes of the matrix, aligns the genes to the model's
   manifest (:mod:`cellzoo.data.genes`) and hands float32 rows to
3. **a backend** — anything with ``output_names`` and ``run(x) -> {name: array}``: the model's
   own ``_predict_proba`` (:class:`FunctionBackend`, used by ``Annotator.predict``), its torch
   module (``cellzoo.training.TorchBackend``) or an onnxruntime session
   (``cellzoo.runtime.annotate.OnnxBackend``); the backends live in the layers that may import
   them, this loop imports none of them;
4. **the results** — :class:`ArrayResults` (numpy arrays), :class:`MemoryResults` (into an
   AnnData) or :class:`H5adResults` (in place, through h5py, into a copy of the ``.h5ad``: ``X``
   is never read whole nor rewritten). Their keys are spelled only in :func:`result_keys`.

A cell whose prepared row holds no non-zero value — no counts, or none of the model's genes
expressed — carries no information for the model: :func:`finish_run` labels it
:data:`UNASSIGNED` (its probabilities are kept as computed), flags it in
``obs["cellzoo_<model>_no_signal"]`` and warns with the count (:class:`NoSignalWarning`), whichever
backend ran.

A reader thread may prepare the next chunks while the backend runs the current one
(:func:`prefetched`).
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, ProtocolError
from .contract import InputContract, _log1p_normalise, declared_state, detect_state, validate
from .genes import GeneAlignment, GeneManifest, align_genes, apply_alignment

if TYPE_CHECKING:
    import anndata
    import h5py

#: bytes of one dense float32 chunk the automatic chunk size aims at
CHUNK_BYTES = 32 * 2**20
MIN_CHUNK, MAX_CHUNK = 64, 8192
#: rows sampled (in a few blocks spread over the file) to detect the state of a matrix on disk
SAMPLE_ROWS, SAMPLE_BLOCKS = 500, 5
#: a CSC matrix cannot be read by rows; up to this many stored values it is read whole
CSC_MAX_NNZ = 50_000_000
#: per-cell outputs up to this size are held in memory while the input file is copied (overlapped)
IN_MEMORY_RESULTS_BYTES = 256 * 2**20
_DONE = object()
#: the label of a cell that carries no information for the model (no counts, or none of its genes expressed)
UNASSIGNED = "unassigned"


class NoSignalWarning(UserWarning):
    """Some cells express none of the model's genes: they are labelled ``"unassigned"``, not given a type."""


class ReplacedResultsWarning(UserWarning):
    """Annotating an AnnData replaced the results an earlier run had written into it."""


def auto_chunk_size(*widths: int) -> int:
    """Rows per chunk so that a dense float32 chunk of the widest matrix is about 32 MiB."""
    rows = CHUNK_BYTES // (4 * max(1, *widths))
    rows = max(MIN_CHUNK, min(MAX_CHUNK, rows))
    return int(rows // MIN_CHUNK * MIN_CHUNK)


# ---------------------------------------------------------------------------------------------
# where the results go: the keys, spelled once
# ---------------------------------------------------------------------------------------------


def result_key(model: str, what: str) -> str:
    """``cellzoo_<model>_<what>``: the name of every result a model writes (DESIGN.md, "Data")."""
    return f"cellzoo_{model}_{what}"


def result_keys(arch: str, outputs: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{what: (AnnData attribute, key)}`` for the results of model ``arch`` with per-cell ``outputs``.

    Labels go to ``obs``, with the per-cell QC flag ``no_signal`` (the cells labelled
    :data:`UNASSIGNED`), every per-cell output (``proba``, ``attention``, …) to ``obsm``, the
    class names (and the genes an attention matrix is over) to ``uns``.
    """
    keys = {
        "label": ("obs", result_key(arch, "label")),
        "no_signal": ("obs", result_key(arch, "no_signal")),
        "classes": ("uns", result_key(arch, "classes")),
    }
    for name in outputs:
        keys[name] = ("obsm", result_key(arch, name))
        if name == "attention":
            keys["attention_genes"] = ("uns", result_key(arch, "attention_genes"))
    return keys


# ---------------------------------------------------------------------------------------------
# where the matrix comes from
# ---------------------------------------------------------------------------------------------


@dataclass
class MatrixSource:
    """A cells × genes matrix that can be read by row ranges.

    ``matrix`` is the matrix itself when it is in memory: its state is then detected on a seeded
    random sample of rows (as :func:`cellzoo.data.contract.detect_state` does); a matrix on disk is
    sampled in a few contiguous blocks instead. ``target_sum`` is the per-cell total the data
    declare they were normalised to (``uns['cellzoo']['target_sum']``).
    """

    where: str
    n_obs: int
    var_names: list[str]
    read: Callable[[int, int], Any]
    declared: str | None = None
    matrix: Any = None
    target_sum: float | None = None

    def sample(self) -> Any:
        """What the state is detected on: the matrix in memory, or a few blocks of rows spread over it."""
        if self.matrix is not None:
            return self.matrix
        n = self.n_obs
        per = max(1, SAMPLE_ROWS // SAMPLE_BLOCKS)
        starts = sorted({int(s) for s in np.linspace(0, max(0, n - per), SAMPLE_BLOCKS)})
        blocks = [self.read(s, min(n, s + per)) for s in starts]
        if any(sp.issparse(b) for b in blocks):
            return sp.vstack([sp.csr_matrix(b) for b in blocks], format="csr")
        return np.concatenate([np.asarray(b) for b in blocks])

    def state(self) -> str:
        return self.declared or detect_state(self.sample())


def h5_reader(elem: Any, where: str, path: Path) -> tuple[tuple[int, int], Callable[[int, int], Any]]:
    """The shape of the matrix ``elem`` of an open ``.h5ad`` and a function reading its rows ``a:b``."""
    import h5py
    from anndata.io import sparse_dataset

    if isinstance(elem, h5py.Dataset):
        if elem.ndim != 2:
            raise InputError(f"{path}: {where} has shape {elem.shape}; expected a cells × genes matrix")
        return tuple(elem.shape), lambda a, b: elem[a:b]
    encoding = elem.attrs.get("encoding-type")
    if encoding not in ("csr_matrix", "csc_matrix"):
        raise InputError(f"{path}: {where} is stored as {encoding!r}, which cellzoo cannot read by rows")
    matrix = sparse_dataset(elem)
    if encoding == "csc_matrix":
        nnz = int(elem["data"].shape[0])
        if nnz > CSC_MAX_NNZ:
            raise InputError(
                f"{path}: {where} is stored column by column (CSC) with {nnz:,} values, so it cannot be read by cells "
                "without loading it all. Convert it once: adata = anndata.read_h5ad(path); adata.X = adata.X.tocsr(); "
                "adata.write_h5ad(path)"
            )
        loaded: list[Any] = []

        def read_csc(a: int, b: int) -> Any:
            if not loaded:  # only when this matrix is the one used (or sampled)
                loaded.append(matrix.to_memory().tocsr())
            return loaded[0][a:b]

        return tuple(matrix.shape), read_csc
    return tuple(matrix.shape), lambda a, b: matrix[a:b]


def var_gene_names(var: Any, gene_column: str | None, where: str) -> list[str]:
    """The gene names of a ``var`` table: its index, or its column ``gene_column`` (``--gene-column``).

    ``where`` names the table in the error for a column it does not have (``"var of data.h5ad"``).
    """
    if gene_column is None:
        return [str(v) for v in var.index]
    if gene_column not in var.columns:
        cols = ", ".join(map(str, var.columns[:20])) or "(none)"
        raise InputError(f"--gene-column {gene_column!r} is not a column of {where} (columns: {cols})")
    return [str(v) for v in var[gene_column]]


def _h5_var_names(group: Any, gene_column: str | None, path: Path, where: str) -> list[str]:
    from anndata.io import read_elem

    return var_gene_names(read_elem(group), gene_column, f"{where} of {path}")


def open_h5ad(path: Path) -> h5py.File:
    """``path`` open for reading with h5py; a file that is not HDF5 (or is cut short) is an error saying so."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        text = str(exc)
        if "file signature not found" in text:
            why = (
                "it is not an HDF5 file, which every .h5ad is. Is it another format (.loom, .csv, .mtx, a 10x .h5)? "
                "Read it with scanpy or anndata and write it with adata.write_h5ad(path)"
            )
        elif "truncated file" in text:
            detail = text[text.find("(") + 1 : text.rfind(")")] if "(" in text else text
            why = f"the file is truncated ({detail}): it was not completely written or copied; write or copy it again"
        else:
            why = f"{text}; is it an .h5ad written by anndata or scanpy?"
        raise InputError(f"{path} cannot be read as an .h5ad file: {why}") from exc


def check_h5ad(f: h5py.File, path: Path) -> None:
    """An open HDF5 file is an AnnData ``.h5ad`` the pipeline can read: it has ``X``, ``obs`` and ``var``."""
    import h5py

    missing = [name for name in ("X", "obs", "var") if name not in f]
    if missing:
        raise InputError(
            f"{path} is not an AnnData .h5ad file with an expression matrix: it has no {', '.join(missing)} (an .h5ad "
            f"written by anndata or scanpy has X, obs and var; it holds {', '.join(sorted(f.keys())) or 'nothing'}). "
            "Write the cells × genes matrix into adata.X and save it with adata.write_h5ad(path)"
        )
    if not isinstance(f["obs"], h5py.Group) or f["obs"].attrs.get("encoding-type") != "dataframe":
        raise InputError(
            f"{path} was written by an old anndata (before 0.7), whose obs cannot take new columns in place; read it "
            "with anndata and write it again: anndata.read_h5ad(path).write_h5ad(new_path)"
        )


def read_h5ad_checked(path: Path) -> anndata.AnnData:
    """The whole ``.h5ad`` at ``path`` in memory, after the checks (and with the errors) of the streaming reader."""
    import anndata

    with open_h5ad(path) as f:
        check_h5ad(f, path)
    try:
        return anndata.read_h5ad(path)
    except Exception as exc:  # h5py and anndata raise many types for a damaged file
        raise InputError(
            f"{path} cannot be read as an AnnData .h5ad file ({type(exc).__name__}: {exc}); is it a file written by "
            "anndata or scanpy, and complete?"
        ) from exc


def require_anndata(adata: Any, what: str) -> None:
    """``adata`` is an AnnData, or an :class:`InputError` saying how to make one of a matrix."""
    import anndata

    if isinstance(adata, anndata.AnnData):
        return
    kind = type(adata).__name__
    if hasattr(adata, "columns") and hasattr(adata, "index"):  # a DataFrame: its columns name the genes
        how = "adata = anndata.AnnData(df) takes the genes from its columns and the cells from its index"
    elif isinstance(adata, np.ndarray) or sp.issparse(adata) or hasattr(adata, "shape"):
        how = (
            "wrap the cells × genes matrix X: adata = anndata.AnnData(X); adata.var_names = gene_names (the genes "
            "of its columns, which the model matches to its own)"
        )
    else:
        how = "read an .h5ad with anndata.read_h5ad(path), or wrap a cells × genes matrix X with anndata.AnnData(X)"
    raise InputError(f"{what} takes an AnnData (cells × genes, gene names in var_names), not a {kind}: {how}")


def h5_sources(
    f: h5py.File,
    path: Path,
    gene_column: str | None = None,
    reader: Callable[..., Any] = h5_reader,
    raw: str = "all",
) -> list[MatrixSource]:
    """The candidate matrices of an open ``.h5ad`` (``X``, ``layers['counts']``, ``raw/X``), read by rows.

    ``raw`` as in :func:`memory_sources`: ``"all"`` genes of ``raw/X``, or ``"var_names"`` (its
    columns for ``var_names``, used only when it has them all).
    """
    import pandas as pd
    from anndata.io import read_elem

    check_h5ad(f, path)
    declared = target_sum = None
    if "uns" in f and "cellzoo" in f["uns"]:
        meta = read_elem(f["uns"]["cellzoo"])
        declared = declared_state(types.SimpleNamespace(uns={"cellzoo": meta}))
        target_sum = _target_sum(meta)
    var_names = _h5_var_names(f["var"], gene_column, path, "var")
    sources = []
    shape, read = reader(f["X"], "X", path)
    sources.append(MatrixSource("adata.X", shape[0], var_names, read, declared, target_sum=target_sum))
    if "layers" in f and "counts" in f["layers"]:
        shape, read = reader(f["layers"]["counts"], "layers['counts']", path)
        sources.append(MatrixSource("adata.layers['counts']", shape[0], var_names, read))
    if "raw" in f and "X" in f["raw"] and "var" in f["raw"]:
        raw_names = _h5_var_names(f["raw"]["var"], gene_column, path, "raw/var")
        shape, read = reader(f["raw"]["X"], "raw.X", path)
        if raw == "all":
            sources.append(MatrixSource("adata.raw.X", shape[0], raw_names, read))
        elif raw_names == var_names:
            sources.append(MatrixSource("adata.raw.X", shape[0], var_names, read))
        elif set(var_names) <= set(raw_names):
            columns = pd.Index(raw_names).get_indexer(var_names)
            sources.append(MatrixSource("adata.raw.X", shape[0], var_names, lambda a, b: read(a, b)[:, columns]))
    for other in sources[1:]:
        if other.n_obs != sources[0].n_obs:
            raise InputError(f"{path}: {other.where} has {other.n_obs} rows but adata.X has {sources[0].n_obs}")
    return sources


def _target_sum(meta: Any) -> float | None:
    value = meta.get("target_sum") if isinstance(meta, Mapping) else None
    return float(value) if value is not None else None


def memory_sources(adata: anndata.AnnData, gene_column: str | None = None, raw: str = "all") -> list[MatrixSource]:
    """The candidate matrices of an AnnData in memory.

    ``raw="all"`` takes ``raw.X`` over all its genes (counts are normalised over every gene of the
    cell, then the model's are selected: what ``cellzoo run`` does); ``raw="var_names"`` takes it
    restricted to ``adata.var_names`` and only when it has them all (what
    :func:`cellzoo.data.contract.prepare_input` — and so an annotator's ``fit`` — does).
    """

    require_anndata(adata, "annotating cells")

    def names(var: Any, where: str) -> list[str]:
        return var_gene_names(var, gene_column, where)

    X = _indexable(adata.X)
    meta = adata.uns.get("cellzoo")
    var_names = names(adata.var, "adata.var")
    sources = [
        MatrixSource(
            "adata.X",
            adata.n_obs,
            var_names,
            lambda a, b: X[a:b],
            declared_state(adata),
            matrix=X,
            target_sum=_target_sum(meta),
        )
    ]
    if "counts" in adata.layers:
        counts = _indexable(adata.layers["counts"])
        sources.append(
            MatrixSource("adata.layers['counts']", adata.n_obs, var_names, lambda a, b: counts[a:b], matrix=counts)
        )
    if adata.raw is not None:
        R = _indexable(adata.raw.X)
        if raw == "all":
            raw_names = names(adata.raw.var, "adata.raw.var")
            sources.append(MatrixSource("adata.raw.X", adata.n_obs, raw_names, lambda a, b: R[a:b], matrix=R))
        elif adata.raw.n_vars == adata.n_vars and (adata.raw.var_names == adata.var_names).all():
            sources.append(MatrixSource("adata.raw.X", adata.n_obs, var_names, lambda a, b: R[a:b], matrix=R))
        elif adata.var_names.isin(adata.raw.var_names).all():
            R = R[:, adata.raw.var_names.get_indexer(adata.var_names)]
            sources.append(MatrixSource("adata.raw.X", adata.n_obs, var_names, lambda a, b: R[a:b], matrix=R))
    return sources


def _indexable(M: Any) -> Any:
    """``M`` in a form whose rows can be sliced (np.matrix → ndarray, COO and others → CSR)."""
    if isinstance(M, np.matrix):
        return np.asarray(M)
    if sp.issparse(M) and M.format not in ("csr", "csc"):
        return M.tocsr()
    return M


_DESCRIBE = {
    "counts": "raw integer counts",
    "log1p_norm": "log1p-normalised expression",
    "scaled": "scaled data with negative values (e.g. z-scored)",
    "nonnegative": "non-negative values that are neither counts nor log1p-normalised",
}


def choose_source(sources: Sequence[MatrixSource], model_state: str, where: str) -> tuple[MatrixSource, str]:
    """The first matrix whose state can be brought to ``model_state``, and that state (decided once per run)."""
    if model_state == "any":
        return sources[0], "any"
    usable = ("counts",) if model_state == "counts" else ("counts", "log1p_norm")
    found = []
    for source in sources:
        state = source.state()
        if state in usable:
            return source, state
        found.append(f"{source.where} looks like {_DESCRIBE[state]}")
    if not any(s.where == "adata.layers['counts']" for s in sources):
        found.append("there is no layers['counts']")
    if not any(s.where == "adata.raw.X" for s in sources):
        found.append("there is no raw")
    need = _DESCRIBE[model_state] if model_state != "log1p_norm" else "raw counts or log1p-normalised expression"
    raise InputError(
        f"{where}: the model needs {need} but {'; '.join(found)}. Provide raw counts in X, layers['counts'] or raw "
        "(same genes as var_names)"
    )


# ---------------------------------------------------------------------------------------------
# turning a chunk into the model's input
# ---------------------------------------------------------------------------------------------


class ChunkPreparer:
    """Check, convert and align one chunk of rows; everything decided once, up front.

    ``dense`` hands the backend a C-contiguous float32 array; otherwise a sparse chunk stays
    sparse (float32). ``whole`` says the chunk is the whole matrix (messages then name the
    matrix, not a range of its cells).
    """

    def __init__(
        self,
        source: MatrixSource,
        state: str,
        contract: InputContract,
        alignment: GeneAlignment,
        where: str,
        cell_names: Callable[[np.ndarray], list[str]],
        *,
        dense: bool = True,
    ):
        self.source, self.state, self.contract, self.alignment, self.where = source, state, contract, alignment, where
        self.cell_names, self.dense = cell_names, dense
        # a declared target sum equal to the model's is trusted: row sums of HVG-subset data cannot show it
        self._warned = source.target_sum is not None and source.target_sum == contract.target_sum

    def __call__(self, block: Any, start: int) -> Any:
        self._check_finite(block, start)
        if self.source.declared and self.source.where == "adata.X":
            name = f"adata.X (declared {self.source.declared!r} in adata.uns['cellzoo'])"
        else:
            name = self.source.where
        whole = start == 0 and block.shape[0] == self.source.n_obs
        where = name if whole else f"{name} (cells {start}–{start + block.shape[0] - 1})"
        if self.contract.state == "any":
            X = block
        elif self.state == self.contract.state:
            # the target-sum check only warns; once is enough for a whole file
            validate(block, self.state, target_sum=None if self._warned else self.contract.target_sum, where=where)
            self._warned = True
            X = block
        else:  # counts → log1p_norm over all genes of the cell, before selecting the model's
            validate(block, "counts", where=where)
            X = _log1p_normalise(block, self.contract.target_sum)
        X = apply_alignment(_rows(X), self.alignment)
        if self.dense:
            X = X.toarray() if sp.issparse(X) else np.asarray(X)
            return np.ascontiguousarray(X, dtype=np.float32)
        if sp.issparse(X):
            return X if X.dtype == np.float32 else X.astype(np.float32)
        return np.asarray(X, dtype=np.float32)

    def _check_finite(self, block: Any, start: int) -> None:
        block = _rows(block)
        values = block.data if sp.issparse(block) else np.asarray(block)
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise InputError(f"the expression matrix has dtype {values.dtype}; expected a real numeric matrix")
        if not np.issubdtype(values.dtype, np.floating) or np.isfinite(values).all():
            return
        if sp.issparse(block):
            csr = sp.csr_matrix(block)
            bad = np.flatnonzero(~np.isfinite(csr.data))
            rows = np.unique(np.searchsorted(csr.indptr, bad, side="right") - 1)
        else:
            rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
        rows = rows + start
        names = self.cell_names(rows[:5])
        shown = ", ".join(f"{n!r} (row {r})" for n, r in zip(names, rows[:5]))
        raise InputError(
            f"{self.where}: {self.source.where} has NaN or infinite values in {len(rows)}+ cells, e.g. {shown}. They "
            "usually come from dividing by a zero total during normalisation; drop those cells or redo the "
            "preprocessing from raw counts"
        )


def _rows(block: Any) -> Any:
    """A block of rows as an ndarray or CSR/CSC matrix (np.matrix and other sparse formats converted)."""
    if isinstance(block, np.matrix):
        return np.asarray(block)
    if sp.issparse(block):
        return block if block.format in ("csr", "csc") else block.tocsr()
    if hasattr(block, "to_memory"):  # a backed sparse dataset
        return block.to_memory()
    return block


# ---------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------


class Backend(Protocol):
    """What runs the model on prepared rows.

    ``output_names`` are the per-cell outputs ``run`` returns (``proba`` first among them, or the
    first output gives the labels); ``dense`` says whether ``run`` needs a dense float32 array;
    ``row_wise`` whether each cell's outputs depend on that cell alone (then the rows may be split
    into chunks; otherwise the whole matrix is one chunk).
    """

    output_names: tuple[str, ...]
    dense: bool
    row_wise: bool

    def run(self, x: Any) -> dict[str, np.ndarray]: ...


@dataclass
class FunctionBackend:
    """A backend around a plain function ``x -> {output: array}`` (e.g. an annotator's ``_predict_proba``)."""

    fn: Callable[[Any], Mapping[str, np.ndarray]]
    output_names: tuple[str, ...] = ("proba",)
    dense: bool = False
    row_wise: bool = False

    def run(self, x: Any) -> dict[str, np.ndarray]:
        return dict(self.fn(x))


def proba_output(backend: Backend) -> str:
    return "proba" if "proba" in backend.output_names else backend.output_names[0]


# ---------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------


class Results:
    """Collects per-chunk outputs; subclasses keep them as arrays or put them into an AnnData / .h5ad."""

    def write(self, start: int, stop: int, outputs: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError

    def finish(self, labels: Any, extras: Mapping[str, np.ndarray], no_signal: np.ndarray | None = None) -> None:
        """Store the labels (a categorical), the per-run extras (``classes``, ``attention_genes``) and the
        per-cell flag of the cells without signal (:func:`finish_run`)."""


class ArrayResults(Results):
    """The outputs as float32 arrays of all cells (``arrays[name]``), for ``Annotator.predict``."""

    def __init__(self, n_obs: int, widths: Mapping[str, int]):
        self.n_obs, self.widths = n_obs, dict(widths)
        self.arrays: dict[str, np.ndarray] = {}

    def write(self, start: int, stop: int, outputs: Mapping[str, np.ndarray]) -> None:
        for name, width in self.widths.items():
            value = np.asarray(outputs[name])
            if start == 0 and stop == self.n_obs:  # one chunk: the backend's array as it is
                self.arrays[name] = value
                continue
            if name not in self.arrays:
                dtype = value.dtype if np.issubdtype(value.dtype, np.floating) else np.float32
                self.arrays[name] = np.empty((self.n_obs, width), dtype=dtype)
            self.arrays[name][start:stop] = value


def warn_replaced(adata: anndata.AnnData, keys: Sequence[tuple[str, str]]) -> None:
    """Warn, naming them, when results about to be written into ``adata`` replace ones already there."""
    present = {"obs": adata.obs.columns, "obsm": adata.obsm.keys(), "uns": adata.uns.keys()}
    replaced = [f"{attr}[{key!r}]" for attr, key in dict.fromkeys(keys) if key in present[attr]]
    if replaced:
        warnings.warn(
            f"replacing {', '.join(replaced)}, written into this AnnData by an earlier run; copy them to other keys "
            "first to keep both",
            ReplacedResultsWarning,
            stacklevel=4,
        )


class MemoryResults(ArrayResults):
    """Outputs written into an AnnData in memory under :func:`result_keys`."""

    def __init__(self, adata: anndata.AnnData, keys: Mapping[str, tuple[str, str]], widths: Mapping[str, int]):
        super().__init__(adata.n_obs, widths)
        self.adata, self.keys = adata, keys

    def finish(self, labels: Any, extras: Mapping[str, np.ndarray], no_signal: np.ndarray | None = None) -> None:
        written = [self.keys["label"], *(self.keys[name] for name in self.arrays), *(self.keys[w] for w in extras)]
        if no_signal is not None:
            written.append(self.keys["no_signal"])
        warn_replaced(self.adata, written)
        self.adata.obs[self.keys["label"][1]] = labels
        if no_signal is not None:
            self.adata.obs[self.keys["no_signal"][1]] = np.asarray(no_signal, dtype=bool)
        for name, array in self.arrays.items():
            self.adata.obsm[self.keys[name][1]] = np.asarray(array, dtype=np.float32)
        for what, value in extras.items():
            self.adata.uns[self.keys[what][1]] = value


class H5adResults(Results):
    """Outputs written chunk by chunk, through h5py, into an ``.h5ad`` open for writing (``X`` untouched)."""

    def __init__(self, f: h5py.File, keys: Mapping[str, tuple[str, str]], n_obs: int, widths: Mapping[str, int],
                 chunk: int):  # fmt: skip
        self.f, self.keys = f, keys
        self.copy_seconds = 0.0
        obsm = h5_group(f, "obsm")
        self.datasets = {}
        for name, width in widths.items():
            key = keys[name][1]
            ds = obsm.create_dataset(
                key, shape=(n_obs, width), dtype=np.float32, chunks=(max(1, min(chunk, n_obs)), width)
            )
            ds.attrs["encoding-type"] = "array"
            ds.attrs["encoding-version"] = "0.2.0"
            self.datasets[name] = ds

    def write(self, start: int, stop: int, outputs: Mapping[str, np.ndarray]) -> None:
        for name, ds in self.datasets.items():
            ds[start:stop] = outputs[name]

    def finish(self, labels: Any, extras: Mapping[str, np.ndarray], no_signal: np.ndarray | None = None) -> None:
        h5_put(self.f, "obs", self.keys["label"][1], labels)
        if no_signal is not None:
            h5_put(self.f, "obs", self.keys["no_signal"][1], np.asarray(no_signal, dtype=bool))
        for what, value in extras.items():
            h5_put(self.f, "uns", self.keys[what][1], value)


class _InCopyResults(ArrayResults):
    """Outputs held in memory (and the labels and extras of ``finish``) until the copy is written."""

    def __init__(self, n_obs: int, widths: Mapping[str, int]):
        super().__init__(n_obs, widths)
        self.finished: tuple[Any, Mapping[str, Any], np.ndarray | None] | None = None
        self.copy_seconds = 0.0

    def finish(self, labels: Any, extras: Mapping[str, np.ndarray], no_signal: np.ndarray | None = None) -> None:
        self.finished = (labels, extras, no_signal)


@contextmanager
def results_in_copy(
    data: Path,
    tmp: Path,
    keys: Mapping[str, tuple[str, str]],
    n_obs: int,
    widths: Mapping[str, int],
    chunk: int,
    remove: Sequence[tuple[str, str]] = (),
) -> Iterator[Results]:
    """Results written in place into ``tmp``, a copy of the ``.h5ad`` ``data`` (``X`` is not rewritten).

    When the outputs fit in :data:`IN_MEMORY_RESULTS_BYTES` (labels and probabilities of a few
    million cells) a thread copies the file while the chunks run, and the outputs are written
    into the copy at the end; larger outputs (attention) are streamed into a copy made first.
    ``remove`` are keys of an earlier run deleted from the copy. ``copy_seconds`` is set on the
    results.
    """
    import h5py

    def copy() -> float:
        t0 = time.perf_counter()
        shutil.copyfile(data, tmp)
        return time.perf_counter() - t0

    if 4 * n_obs * sum(widths.values()) > IN_MEMORY_RESULTS_BYTES:
        seconds = copy()
        with h5py.File(tmp, "r+") as out:
            for attr, key in remove:
                h5_remove(out, attr, key)
            results = H5adResults(out, keys, n_obs, widths, chunk)
            results.copy_seconds = seconds
            yield results
        return
    held = _InCopyResults(n_obs, widths)
    copied: list[Any] = []
    # the copy is I/O in the kernel (sendfile), so it overlaps the chunks instead of preceding them
    thread = threading.Thread(target=lambda: copied.append(_outcome(copy)), name="cellzoo-copy", daemon=True)
    thread.start()
    try:
        yield held
    finally:
        thread.join()
    if isinstance(copied[0], BaseException):
        raise copied[0]
    held.copy_seconds = copied[0]
    if held.finished is None:
        raise ProtocolError("results_in_copy: the run ended without finish(); nothing was written")
    with h5py.File(tmp, "r+") as out:
        for attr, key in remove:
            h5_remove(out, attr, key)
        results = H5adResults(out, keys, n_obs, widths, chunk)
        results.write(0, n_obs, held.arrays)
        results.finish(*held.finished)


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BaseException as exc:  # re-raised by the consumer, in its own thread
        return exc


def h5_group(f: h5py.File, name: str) -> Any:
    """Group ``name`` of an open ``.h5ad`` (created as an empty AnnData dict when absent)."""
    if name not in f:
        group = f.create_group(name)
        group.attrs["encoding-type"] = "dict"
        group.attrs["encoding-version"] = "0.1.0"
    return f[name]


def h5_put(f: h5py.File, attr: str, key: str, value: Any) -> None:
    """Write one element (an obs column, an obsm array, an uns value) in place into an ``.h5ad``."""
    from anndata.io import write_elem

    h5_remove(f, attr, key)
    if attr == "obs":
        obs = f["obs"]
        write_elem(obs, key, value)
        order = [str(c) for c in np.atleast_1d(obs.attrs.get("column-order", np.array([], dtype=object)))]
        obs.attrs["column-order"] = np.array([*order, key], dtype=object)
    else:
        write_elem(h5_group(f, attr), key, value)


def h5_members(f: h5py.File, attr: str) -> set[str]:
    """The keys of ``obs`` (its columns), ``obsm`` or ``uns`` of an open ``.h5ad``."""
    if attr not in f:
        return set()
    group = f[attr]
    members = set(group.keys())
    if group.attrs.get("encoding-type") == "dataframe":
        members.discard(str(group.attrs.get("_index", "_index")))
        members |= {str(c) for c in np.atleast_1d(group.attrs.get("column-order", np.array([], dtype=object)))}
    return members


def h5_remove(f: h5py.File, attr: str, key: str) -> None:
    if attr not in f or key not in f[attr]:
        return
    group = f[attr]
    del group[key]
    if attr == "obs":
        order = [str(c) for c in np.atleast_1d(group.attrs.get("column-order", np.array([], dtype=object)))]
        group.attrs["column-order"] = np.array([c for c in order if c != key], dtype=object)


def h5_cell_names(f: h5py.File) -> Callable[[np.ndarray], list[str]]:
    """Names of cells by row (only to decorate error messages)."""

    def names(rows: np.ndarray) -> list[str]:
        try:
            obs = f["obs"]
            index = obs[obs.attrs.get("_index", "_index")]
            values = [index[int(r)] for r in rows]
            return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        except Exception:  # names only decorate an error message; rows alone still say which cells
            return [f"row {int(r)}" for r in rows]

    return names


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What is decided once, before the first chunk: the matrix, its state, the gene alignment."""

    source: MatrixSource
    state: str
    alignment: GeneAlignment
    contract: InputContract


def plan(
    sources: Sequence[MatrixSource], contract: InputContract, manifest: GeneManifest, min_overlap: float, where: str
) -> Plan:
    """Choose the matrix and align its genes to ``manifest`` (errors say what to do)."""
    if sources[0].n_obs == 0:
        raise InputError(f"{where} has 0 cells; there is nothing to annotate")
    source, state = choose_source(sources, contract.state, where)
    alignment = align_genes(source.var_names, manifest, min_overlap=min_overlap)
    return Plan(source, state, alignment, contract)


def chunk_rows(backend: Backend, n_obs: int, chunk_size: int | None, *widths: int) -> int:
    """Rows per chunk: all of them unless the backend is row-wise; else ``chunk_size`` or about 32 MiB."""
    if not backend.row_wise:
        return max(1, n_obs)
    chunk = int(chunk_size) if chunk_size else auto_chunk_size(*widths)
    if chunk < 1:
        from ..errors import ConfigError

        raise ConfigError(f"chunk_size must be at least 1, got {chunk_size!r}")
    return chunk


def _batches(read: Callable[[int, int], Any], prepare: ChunkPreparer, n: int, chunk: int) -> Iterator[Any]:
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        t0 = time.perf_counter()
        x = prepare(read(start, stop), start)
        yield start, stop, x, time.perf_counter() - t0


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetched(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items`` produced by a reader thread at most ``depth`` ahead of the consumer (0: no thread)."""
    if depth <= 0:
        yield from items
        return
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name="cellzoo-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)


@dataclass
class ChunkRun:
    """What :func:`run_chunks` did: the class code of every cell, which cells had no signal, where the time went.

    ``codes`` are the argmax of the probabilities, also for the cells of ``no_signal`` (whose
    prepared row holds no non-zero value: no counts, or none of the model's ``n_genes`` genes);
    :func:`finish_run` labels those :data:`UNASSIGNED`.
    """

    codes: np.ndarray
    infer_seconds: float
    prepare_seconds: float
    no_signal: np.ndarray | None = None
    n_genes: int = 0

    @property
    def n_no_signal(self) -> int:
        return 0 if self.no_signal is None else int(np.count_nonzero(self.no_signal))


def silent_rows(x: Any) -> np.ndarray:
    """Which rows of a prepared chunk (cells × the model's genes) hold no non-zero value."""
    if sp.issparse(x):
        return np.asarray((x != 0).sum(axis=1)).ravel() == 0
    return ~np.any(np.asarray(x) != 0, axis=1)


def run_chunks(
    backend: Backend,
    source: MatrixSource,
    prepare: ChunkPreparer,
    results: Results,
    outputs: Sequence[str],
    chunk: int,
    prefetch: int = 0,
    on_chunk: Callable[[int, int], None] | None = None,
) -> ChunkRun:
    """Read, prepare, run and write ``source`` chunk by chunk; labels are the argmax of the proba output."""
    n = source.n_obs
    proba_name = proba_output(backend)
    codes = np.empty(n, dtype=np.int32)
    silent = np.zeros(n, dtype=bool)
    infer = prep = 0.0
    for start, stop, x, seconds in prefetched(_batches(source.read, prepare, n, chunk), prefetch):
        prep += seconds
        silent[start:stop] = silent_rows(x)
        t0 = time.perf_counter()
        out = backend.run(x)
        infer += time.perf_counter() - t0
        codes[start:stop] = np.argmax(out[proba_name], axis=1)
        results.write(start, stop, {name: out[name] for name in outputs})
        if on_chunk is not None:
            on_chunk(stop, n)
    return ChunkRun(codes, infer, prep, no_signal=silent, n_genes=len(prepare.alignment.index))


def check_widths(widths: Mapping[str, int], proba_name: str, classes: Sequence[str] | None, what: str) -> None:
    """Every output is 1 × k per cell and the proba output has one column per class."""
    if classes is not None and widths[proba_name] != len(classes):
        raise ProtocolError(
            f"{what}: output {proba_name!r} has {widths[proba_name]} columns but {len(classes)} labels are "
            "named; give --labels with one class per output column"
        )


def labels_of_codes(codes: np.ndarray, classes: Sequence[str], no_signal: np.ndarray | None = None) -> Any:
    """The labels as a categorical over every class (so unseen classes stay listed).

    The cells of ``no_signal`` are :data:`UNASSIGNED`, a category added only when some cell is.
    """
    import pandas as pd

    categories = list(classes)
    if no_signal is not None and np.any(no_signal):
        if UNASSIGNED not in categories:
            categories.append(UNASSIGNED)
        codes = np.where(no_signal, categories.index(UNASSIGNED), codes)
    return pd.Categorical.from_codes(codes, categories=categories)


def finish_run(
    results: Results,
    done: ChunkRun,
    classes: Sequence[str],
    extras: Mapping[str, Any],
    keys: Mapping[str, tuple[str, str]],
) -> Any:
    """End a run: the labels (cells without signal :data:`UNASSIGNED`), stored with the extras and the
    no-signal flag; a :class:`NoSignalWarning` gives the count of those cells. Returns the labels."""
    labels = labels_of_codes(done.codes, classes, done.no_signal)
    if done.n_no_signal:
        where = f"obs[{keys['no_signal'][1]!r}]"
        n = len(done.codes)
        warnings.warn(
            f"{done.n_no_signal:,} of {n:,} cells express none of the model's {done.n_genes:,} genes (no counts, or "
            f"none of its genes in the data), so they carry no information to classify: they are labelled "
            f"{UNASSIGNED!r}, not given a cell type, and flagged in {where} (their probabilities are kept but mean "
            "nothing). Filter such cells (e.g. scanpy.pp.filter_cells(adata, min_counts=1)) or check the gene names",
            NoSignalWarning,
            stacklevel=3,
        )
    results.finish(labels, extras, done.no_signal)
    return labels
