"""Annotate an ``.h5ad`` with an exported model, streaming it in chunks.

:func:`annotate_h5ad` never loads the expression matrix: it reads it chunk by chunk through
h5py (a sparse ``X`` through anndata's backed sparse dataset), so a million-cell file fits in a
few hundred megabytes. The output is a byte copy of the input file with the results added in
place through h5py, written to a temporary file that is renamed at the end (a failure leaves no
half-written output):

* ``obs["cellzoo_<arch>_label"]`` — the most probable class (categorical over every class);
* ``obsm["cellzoo_<arch>_<output>"]`` — every per-cell output (``proba``, ``attention``, …),
  written chunk by chunk so that a cells × genes attention matrix never sits in memory;
* ``uns["cellzoo_<arch>_classes"]`` and ``uns["cellzoo_<arch>_attention_genes"]``.

A reader thread reads, checks, converts and aligns the next chunks while onnxruntime runs the
current one (a bounded queue keeps at most ``prefetch`` chunks in flight). Which matrix is used
and how it is converted follows the input contract of :mod:`cellzoo.data.contract`: ``X`` when
its state (declared in ``uns["cellzoo"]["input_state"]`` or detected on a sample of rows) can be
brought to the graph's input state, else ``layers["counts"]``, else ``raw/X``. Raw counts are
normalised over all their genes before the model's genes are selected.

:func:`annotate_adata` does the same for an AnnData already in memory.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import shutil
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..data.contract import InputContract, declared_state, detect_state, to_input_state, validate
from ..data.genes import AlignmentReport, GeneAlignment, align_genes, apply_alignment
from ..errors import ConfigError, InputError, ProtocolError
from ..fileio import atomic_path
from .session import Session

if TYPE_CHECKING:
    import anndata
    import h5py

#: bytes of one dense float32 chunk the automatic chunk size aims at
CHUNK_BYTES = 32 * 2**20
MIN_CHUNK, MAX_CHUNK = 64, 8192
#: rows sampled (in a few blocks spread over the file) to detect the state of a matrix
SAMPLE_ROWS, SAMPLE_BLOCKS = 500, 5
#: a CSC matrix cannot be read by rows; up to this many stored values it is read whole
CSC_MAX_NNZ = 50_000_000
_DONE = object()


def auto_chunk_size(*widths: int) -> int:
    """Rows per chunk so that a dense float32 chunk of the widest matrix is about 32 MiB."""
    rows = CHUNK_BYTES // (4 * max(1, *widths))
    rows = max(MIN_CHUNK, min(MAX_CHUNK, rows))
    return int(rows // MIN_CHUNK * MIN_CHUNK)


# ---------------------------------------------------------------------------------------------
# where the matrix comes from
# ---------------------------------------------------------------------------------------------


@dataclass
class MatrixSource:
    """A cells × genes matrix that can be read by row ranges."""

    where: str
    n_obs: int
    var_names: list[str]
    read: Callable[[int, int], Any]
    declared: str | None = None

    def sample(self) -> Any:
        """A few blocks of rows spread over the matrix (for state detection)."""
        n = self.n_obs
        per = max(1, SAMPLE_ROWS // SAMPLE_BLOCKS)
        starts = sorted({int(s) for s in np.linspace(0, max(0, n - per), SAMPLE_BLOCKS)})
        blocks = [self.read(s, min(n, s + per)) for s in starts]
        if any(sp.issparse(b) for b in blocks):
            return sp.vstack([sp.csr_matrix(b) for b in blocks], format="csr")
        return np.concatenate([np.asarray(b) for b in blocks])


def _h5_reader(elem: Any, where: str, path: Path) -> tuple[tuple[int, int], Callable[[int, int], Any]]:
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


def _h5_var_names(group: Any, gene_column: str | None, path: Path, where: str) -> list[str]:
    from anndata.io import read_elem

    var = read_elem(group)
    if gene_column is None:
        return [str(v) for v in var.index]
    if gene_column not in var.columns:
        cols = ", ".join(map(str, var.columns[:20])) or "(none)"
        raise InputError(f"{path}: --gene-column {gene_column!r} is not a column of {where} (columns: {cols})")
    return [str(v) for v in var[gene_column]]


def _h5_sources(f: h5py.File, path: Path, gene_column: str | None) -> list[MatrixSource]:
    import h5py
    from anndata.io import read_elem

    if "X" not in f or "var" not in f or "obs" not in f:
        raise InputError(f"{path} is not an AnnData .h5ad file (it lacks X, obs or var)")
    if not isinstance(f["obs"], h5py.Group) or f["obs"].attrs.get("encoding-type") != "dataframe":
        raise InputError(
            f"{path} was written by an old anndata (before 0.7), whose obs cannot take new columns in place; read it "
            "with anndata and write it again: anndata.read_h5ad(path).write_h5ad(new_path)"
        )
    declared = None
    if "uns" in f and "cellzoo" in f["uns"]:
        meta = read_elem(f["uns"]["cellzoo"])
        declared = declared_state(types.SimpleNamespace(uns={"cellzoo": meta}))
    var_names = _h5_var_names(f["var"], gene_column, path, "var")
    sources = []
    shape, read = _h5_reader(f["X"], "X", path)
    sources.append(MatrixSource("adata.X", shape[0], var_names, read, declared))
    if "layers" in f and "counts" in f["layers"]:
        shape, read = _h5_reader(f["layers"]["counts"], "layers['counts']", path)
        sources.append(MatrixSource("adata.layers['counts']", shape[0], var_names, read))
    if "raw" in f and "X" in f["raw"] and "var" in f["raw"]:
        raw_names = _h5_var_names(f["raw"]["var"], gene_column, path, "raw/var")
        shape, read = _h5_reader(f["raw"]["X"], "raw.X", path)
        sources.append(MatrixSource("adata.raw.X", shape[0], raw_names, read))
    for other in sources[1:]:
        if other.n_obs != sources[0].n_obs:
            raise InputError(f"{path}: {other.where} has {other.n_obs} rows but adata.X has {sources[0].n_obs}")
    return sources


def _memory_sources(adata: anndata.AnnData, gene_column: str | None) -> list[MatrixSource]:
    def names(var: Any, where: str) -> list[str]:
        if gene_column is None:
            return [str(v) for v in var.index]
        if gene_column not in var.columns:
            cols = ", ".join(map(str, var.columns[:20])) or "(none)"
            raise InputError(f"--gene-column {gene_column!r} is not a column of {where} (columns: {cols})")
        return [str(v) for v in var[gene_column]]

    X = adata.X
    sources = [
        MatrixSource("adata.X", adata.n_obs, names(adata.var, "adata.var"), lambda a, b: X[a:b], declared_state(adata))
    ]
    if "counts" in adata.layers:
        counts = adata.layers["counts"]
        sources.append(
            MatrixSource("adata.layers['counts']", adata.n_obs, sources[0].var_names, lambda a, b: counts[a:b])
        )
    if adata.raw is not None:
        raw = adata.raw.X
        sources.append(
            MatrixSource("adata.raw.X", adata.n_obs, names(adata.raw.var, "adata.raw.var"), lambda a, b: raw[a:b])
        )
    return sources


_DESCRIBE = {
    "counts": "raw integer counts",
    "log1p_norm": "log1p-normalised expression",
    "scaled": "scaled data with negative values (e.g. z-scored)",
    "nonnegative": "non-negative values that are neither counts nor log1p-normalised",
}


def choose_source(sources: Sequence[MatrixSource], graph_state: str, where: str) -> tuple[MatrixSource, str]:
    """The first matrix whose state can be brought to ``graph_state``, and that state."""
    if graph_state == "any":
        return sources[0], "any"
    usable = ("counts",) if graph_state == "counts" else ("counts", "log1p_norm")
    found = []
    for i, source in enumerate(sources):
        state = (source.declared if i == 0 else None) or detect_state(source.sample())
        if state in usable:
            return source, state
        found.append(f"{source.where} looks like {_DESCRIBE[state]}")
    if not any(s.where == "adata.layers['counts']" for s in sources):
        found.append("there is no layers['counts']")
    if not any(s.where == "adata.raw.X" for s in sources):
        found.append("there is no raw")
    need = _DESCRIBE[graph_state] if graph_state != "log1p_norm" else "raw counts or log1p-normalised expression"
    raise InputError(
        f"{where}: the model needs {need} but {'; '.join(found)}. Provide raw counts in X, layers['counts'] or raw "
        "(same genes as var_names)"
    )


# ---------------------------------------------------------------------------------------------
# turning a chunk into the graph's input
# ---------------------------------------------------------------------------------------------


class ChunkPreparer:
    """Check, convert and align one chunk of rows; everything decided once, up front."""

    def __init__(
        self,
        source: MatrixSource,
        state: str,
        session: Session,
        alignment: GeneAlignment,
        where: str,
        cell_names: Callable[[np.ndarray], list[str]],
    ):
        info = session.info
        self.source, self.state, self.alignment, self.where = source, state, alignment, where
        self.graph_state = info.input_state
        self.contract = (
            InputContract(state=info.input_state, target_sum=info.target_sum or 1e4)
            if info.input_state != "any"
            else InputContract(state="any")
        )
        self.cell_names = cell_names
        self._warned = False

    def __call__(self, block: Any, start: int) -> np.ndarray:
        self._check_finite(block, start)
        where = f"{self.where} {self.source.where} (cells {start}–{start + block.shape[0] - 1})"
        if self.graph_state == "any":
            X = block
        elif self.state == self.graph_state:
            # the target-sum check only warns; once is enough for a whole file
            validate(block, self.state, target_sum=None if self._warned else self.contract.target_sum, where=where)
            self._warned = True
            X = block
        else:  # counts → log1p_norm over all genes of the cell, before selecting the model's
            try:
                X = to_input_state(block, "counts", self.contract)
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from exc
        X = apply_alignment(X, self.alignment)
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        return np.ascontiguousarray(X, dtype=np.float32)

    def _check_finite(self, block: Any, start: int) -> None:
        values = block.data if sp.issparse(block) else np.asarray(block)
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


# ---------------------------------------------------------------------------------------------
# where the results go
# ---------------------------------------------------------------------------------------------


def result_keys(arch: str, outputs: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{what: (AnnData attribute, key)}`` for the results of model ``arch`` (DESIGN.md keys)."""
    key = f"cellzoo_{arch}"
    keys = {"label": ("obs", f"{key}_label"), "classes": ("uns", f"{key}_classes")}
    for name in outputs:
        keys[name] = ("obsm", f"{key}_{name}")
        if name == "attention":
            keys["attention_genes"] = ("uns", f"{key}_attention_genes")
    return keys


class _Results:
    """Collects per-chunk outputs; subclasses put them into an .h5ad or an AnnData."""

    def __init__(self, n_obs: int, widths: dict[str, int]):
        self.n_obs, self.widths = n_obs, widths

    def write(self, start: int, stop: int, outputs: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def finish(self, labels: Any, extras: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class _H5adResults(_Results):
    def __init__(self, f: h5py.File, keys: dict[str, tuple[str, str]], n_obs: int, widths: dict[str, int], chunk: int):
        super().__init__(n_obs, widths)
        self.f, self.keys = f, keys
        obsm = _group(f, "obsm")
        self.datasets = {}
        for name, width in widths.items():
            key = keys[name][1]
            ds = obsm.create_dataset(
                key, shape=(n_obs, width), dtype=np.float32, chunks=(max(1, min(chunk, n_obs)), width)
            )
            ds.attrs["encoding-type"] = "array"
            ds.attrs["encoding-version"] = "0.2.0"
            self.datasets[name] = ds

    def write(self, start: int, stop: int, outputs: dict[str, np.ndarray]) -> None:
        for name, ds in self.datasets.items():
            ds[start:stop] = outputs[name]

    def finish(self, labels: Any, extras: dict[str, np.ndarray]) -> None:
        from anndata.io import write_elem

        obs = self.f["obs"]
        key = self.keys["label"][1]
        write_elem(obs, key, labels)
        order = [str(c) for c in np.atleast_1d(obs.attrs.get("column-order", np.array([], dtype=object)))]
        obs.attrs["column-order"] = np.array([*order, key], dtype=object)
        uns = _group(self.f, "uns")
        for what, value in extras.items():
            write_elem(uns, self.keys[what][1], value)


def _group(f: h5py.File, name: str) -> Any:
    if name not in f:
        group = f.create_group(name)
        group.attrs["encoding-type"] = "dict"
        group.attrs["encoding-version"] = "0.1.0"
    return f[name]


class _MemoryResults(_Results):
    def __init__(self, adata: anndata.AnnData, keys: dict[str, tuple[str, str]], n_obs: int, widths: dict[str, int]):
        super().__init__(n_obs, widths)
        self.adata, self.keys = adata, keys
        self.arrays = {name: np.empty((n_obs, w), dtype=np.float32) for name, w in widths.items()}

    def write(self, start: int, stop: int, outputs: dict[str, np.ndarray]) -> None:
        for name, array in self.arrays.items():
            array[start:stop] = outputs[name]

    def finish(self, labels: Any, extras: dict[str, np.ndarray]) -> None:
        self.adata.obs[self.keys["label"][1]] = labels
        for name, array in self.arrays.items():
            self.adata.obsm[self.keys[name][1]] = array
        for what, value in extras.items():
            self.adata.uns[self.keys[what][1]] = value


def _existing(keys: dict[str, tuple[str, str]], has: Callable[[str, str], bool]) -> list[str]:
    return [f"{attr}[{key!r}]" for attr, key in keys.values() if has(attr, key)]


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


@dataclass
class AnnotationRun:
    """What one annotation run did and how fast (``cellzoo run`` prints it, the benchmark records it)."""

    n_cells: int
    source: str
    data_state: str
    graph_state: str
    alignment: AlignmentReport
    keys: dict[str, tuple[str, str]]
    label_counts: dict[str, int]
    chunk_size: int
    prefetch: int
    providers: list[str]
    threads: int
    seconds: float = 0.0
    #: time spent inside onnxruntime, reading + preparing chunks (reader thread), copying the file
    infer_seconds: float = 0.0
    prepare_seconds: float = 0.0
    copy_seconds: float = 0.0
    output: str | None = None
    labels: np.ndarray | None = field(default=None, repr=False)

    @property
    def cells_per_second(self) -> float:
        return self.n_cells / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        data = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("alignment", "labels")
        }
        data["keys"] = {k: list(v) for k, v in self.keys.items()}
        data["alignment"] = self.alignment.to_json()
        data["cells_per_second"] = self.cells_per_second
        return data


def _batches(
    read: Callable[[int, int], Any], prepare: ChunkPreparer, n: int, chunk: int
) -> Iterator[tuple[int, int, np.ndarray, float]]:
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        t0 = time.perf_counter()
        x = prepare(read(start, stop), start)
        yield start, stop, x, time.perf_counter() - t0


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _prefetched(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items`` produced by a reader thread at most ``depth`` ahead of the consumer."""
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


def _run(
    session: Session,
    source: MatrixSource,
    prepare: ChunkPreparer,
    results: _Results,
    outputs: Sequence[str],
    proba_name: str,
    chunk: int,
    prefetch: int,
    on_chunk: Callable[[int, int], None] | None,
) -> tuple[np.ndarray, float, float]:
    n = source.n_obs
    codes = np.empty(n, dtype=np.int32)
    infer = prep = 0.0
    for start, stop, x, seconds in _prefetched(_batches(source.read, prepare, n, chunk), prefetch):
        prep += seconds
        t0 = time.perf_counter()
        out = session.run(x, check=False)
        infer += time.perf_counter() - t0
        codes[start:stop] = np.argmax(out[proba_name], axis=1)
        results.write(start, stop, {name: out[name] for name in outputs})
        if on_chunk is not None:
            on_chunk(stop, n)
    return codes, infer, prep


def _plan(
    session: Session, sources: list[MatrixSource], where: str, outputs: Sequence[str] | None, min_overlap: float | None
) -> tuple[MatrixSource, str, GeneAlignment, list[str], str]:
    info = session.info
    if info.task != "annotate":
        raise ProtocolError(f"{session.path.name} is a {info.task!r} model; annotating cells needs an 'annotate' model")
    if sources[0].n_obs == 0:
        raise InputError(f"{where} has 0 cells; there is nothing to annotate")
    source, state = choose_source(sources, info.input_state, where)
    overlap = info.min_gene_overlap if min_overlap is None else float(min_overlap)
    from ..data.genes import GeneManifest

    manifest = GeneManifest(info.genes, info.gene_namespace, info.gene_species)
    alignment = align_genes(source.var_names, manifest, min_overlap=overlap)
    proba_name = "proba" if "proba" in session.output_names else session.output_names[0]
    if outputs is None:
        chosen = [n for n in session.output_names]
    else:
        unknown = sorted(set(outputs) - set(session.output_names))
        if unknown:
            raise ConfigError(
                f"{session.path.name} has no output {', '.join(unknown)}; its outputs are {', '.join(session.output_names)}"
            )
        chosen = list(dict.fromkeys(outputs))
    return source, state, alignment, chosen, proba_name


def _widths(session: Session, outputs: Sequence[str], proba_name: str) -> dict[str, int]:
    """Per-cell widths of the outputs, from one run on a single all-zero cell."""
    probe = session.run(np.zeros((1, session.n_genes), dtype=np.float32), check=False)
    widths = {}
    for name in {*outputs, proba_name}:
        shape = probe[name].shape
        if len(shape) != 2 or shape[0] != 1:
            raise ProtocolError(f"{session.path.name}: output {name!r} has shape {shape} for one cell; expected 1 × k")
        widths[name] = int(shape[1])
    labels = session.info.labels
    if labels is not None and widths[proba_name] != len(labels):
        raise ProtocolError(
            f"{session.path.name}: output {proba_name!r} has {widths[proba_name]} columns but {len(labels)} labels are "
            "named; give --labels with one class per output column"
        )
    return widths


def _labels(session: Session, codes: np.ndarray, width: int) -> Any:
    import pandas as pd

    classes = list(session.info.labels) if session.info.labels is not None else [str(i) for i in range(width)]
    return pd.Categorical.from_codes(codes, categories=classes), classes


def _extras(session: Session, outputs: Sequence[str], classes: list[str]) -> dict[str, np.ndarray]:
    extras = {"classes": np.asarray(classes, dtype=object)}
    if "attention" in outputs:
        extras["attention_genes"] = np.asarray(session.info.genes, dtype=object)
    return extras


def _session(session: Session | str | os.PathLike[str]) -> Session:
    return session if isinstance(session, Session) else Session(session)


def annotate_h5ad(
    session: Session | str | os.PathLike[str],
    data: str | os.PathLike[str] | anndata.AnnData,
    out_path: str | os.PathLike[str],
    chunk_size: int | None = None,
    *,
    overwrite: bool = False,
    outputs: Sequence[str] | None = None,
    min_overlap: float | None = None,
    gene_column: str | None = None,
    prefetch: int = 2,
    on_chunk: Callable[[int, int], None] | None = None,
) -> AnnotationRun:
    """Annotate the cells of the ``.h5ad`` ``data`` (a path, or an AnnData opened with
    ``anndata.read_h5ad(path, backed="r")``) and write ``out_path``.

    ``outputs`` picks which model outputs go to ``obsm`` (default: all; labels always). Results
    of an earlier run of the same model are an error unless ``overwrite``. ``chunk_size`` rows
    are read at a time (default: about 32 MiB of dense float32); ``prefetch`` chunks are prepared
    ahead by a reader thread (0: no thread). ``on_chunk(done, total)`` reports progress.
    """
    import h5py

    session = _session(session)
    if not isinstance(data, (str, os.PathLike)):
        filename = getattr(data, "filename", None)
        if filename is None:
            raise ConfigError(
                "annotate_h5ad reads an .h5ad file: pass its path or an AnnData opened with "
                "anndata.read_h5ad(path, backed='r'); for an AnnData in memory use annotate_adata"
            )
        data = filename
    data, out_path = Path(data).expanduser(), Path(out_path).expanduser()
    if not data.is_file():
        raise FileNotFoundError(2, "No such .h5ad file", str(data))
    if out_path.exists() and not overwrite:
        raise FileExistsError(17, "Output exists (pass overwrite=True / --overwrite to replace it)", str(out_path))
    if out_path.suffix != ".h5ad":
        raise ConfigError(f"the output {out_path} must end in .h5ad")

    t_start = time.perf_counter()
    try:
        f = h5py.File(data, "r")
    except OSError as exc:
        raise InputError(f"{data} cannot be read as an .h5ad (HDF5) file: {exc}") from exc
    with f:
        sources = _h5_sources(f, data, gene_column)
        source, state, alignment, chosen, proba_name = _plan(session, sources, str(data), outputs, min_overlap)
        keys = result_keys(session.info.architecture, chosen)
        # every key an earlier run of this model may have written, so that none survives an overwrite
        earlier = result_keys(session.info.architecture, session.output_names)
        clashes = _existing(earlier, lambda attr, key: attr in f and key in _members(f[attr]))
        if clashes and not overwrite:
            raise InputError(
                f"{data} already has {', '.join(clashes)} (an earlier cellzoo run?); pass --overwrite to replace them"
            )
        widths = _widths(session, chosen, proba_name)
        chunk = int(chunk_size) if chunk_size else auto_chunk_size(len(source.var_names), session.n_genes)
        if chunk < 1:
            raise ConfigError(f"chunk_size must be at least 1, got {chunk_size!r}")
        names = _h5_cell_names(f)
        prepare = ChunkPreparer(source, state, session, alignment, str(data), names)

        with atomic_path(out_path, suffix=".h5ad") as tmp:
            t0 = time.perf_counter()
            shutil.copyfile(data, tmp)
            copy_seconds = time.perf_counter() - t0
            with h5py.File(tmp, "r+") as out:
                for attr, key in earlier.values():
                    _remove(out, attr, key)
                results = _H5adResults(out, keys, source.n_obs, {n: widths[n] for n in chosen}, chunk)
                codes, infer, prep = _run(
                    session, source, prepare, results, chosen, proba_name, chunk, prefetch, on_chunk
                )
                labels, classes = _labels(session, codes, widths[proba_name])
                results.finish(labels, _extras(session, chosen, classes))
    return _report(session, source, state, alignment, keys, codes, classes, chunk, prefetch, t_start, infer, prep,
                   copy_seconds, str(out_path))  # fmt: skip


def annotate_adata(
    session: Session | str | os.PathLike[str],
    adata: anndata.AnnData,
    chunk_size: int | None = None,
    *,
    overwrite: bool = False,
    outputs: Sequence[str] | None = None,
    min_overlap: float | None = None,
    gene_column: str | None = None,
) -> AnnotationRun:
    """Annotate an AnnData in memory, in chunks; results are written into ``adata`` (DESIGN.md keys)."""
    session = _session(session)
    sources = _memory_sources(adata, gene_column)
    t_start = time.perf_counter()
    source, state, alignment, chosen, proba_name = _plan(session, sources, "the AnnData", outputs, min_overlap)
    keys = result_keys(session.info.architecture, chosen)
    earlier = result_keys(session.info.architecture, session.output_names)
    members = {"obs": adata.obs.columns, "obsm": adata.obsm.keys(), "uns": adata.uns.keys()}
    clashes = _existing(earlier, lambda attr, key: key in members[attr])
    if clashes and not overwrite:
        raise InputError(f"the AnnData already has {', '.join(clashes)}; pass overwrite=True to replace them")
    for attr, key in earlier.values():
        if attr == "obs" and key in adata.obs.columns:
            del adata.obs[key]
        elif attr != "obs":
            getattr(adata, attr).pop(key, None)
    widths = _widths(session, chosen, proba_name)
    chunk = int(chunk_size) if chunk_size else auto_chunk_size(len(source.var_names), session.n_genes)
    prepare = ChunkPreparer(source, state, session, alignment, "the AnnData", lambda rows: list(adata.obs_names[rows]))
    results = _MemoryResults(adata, keys, source.n_obs, {n: widths[n] for n in chosen})
    codes, infer, prep = _run(session, source, prepare, results, chosen, proba_name, chunk, 0, None)
    labels, classes = _labels(session, codes, widths[proba_name])
    results.finish(labels, _extras(session, chosen, classes))
    return _report(session, source, state, alignment, keys, codes, classes, chunk, 0, t_start, infer, prep, 0.0, None)


def _report(session, source, state, alignment, keys, codes, classes, chunk, prefetch, t_start, infer, prep, copy, out):
    counts = np.bincount(codes, minlength=len(classes))
    order = np.argsort(-counts, kind="stable")
    return AnnotationRun(
        n_cells=source.n_obs,
        source=source.where,
        data_state=state,
        graph_state=session.info.input_state,
        alignment=alignment.report,
        keys=keys,
        label_counts={classes[i]: int(counts[i]) for i in order if counts[i]},
        chunk_size=chunk,
        prefetch=prefetch,
        providers=list(session.providers),
        threads=session.threads,
        seconds=time.perf_counter() - t_start,
        infer_seconds=infer,
        prepare_seconds=prep,
        copy_seconds=copy,
        output=out,
        labels=np.asarray(classes, dtype=object)[codes],
    )


def _members(group: Any) -> set[str]:
    members = set(group.keys())
    if group.attrs.get("encoding-type") == "dataframe":
        members |= {str(c) for c in np.atleast_1d(group.attrs.get("column-order", np.array([], dtype=object)))}
    return members


def _remove(f: h5py.File, attr: str, key: str) -> None:
    if attr not in f or key not in f[attr]:
        return
    group = f[attr]
    del group[key]
    if attr == "obs":
        order = [str(c) for c in np.atleast_1d(group.attrs.get("column-order", np.array([], dtype=object)))]
        group.attrs["column-order"] = np.array([c for c in order if c != key], dtype=object)


def _h5_cell_names(f: h5py.File) -> Callable[[np.ndarray], list[str]]:
    def names(rows: np.ndarray) -> list[str]:
        try:
            obs = f["obs"]
            index = obs[obs.attrs.get("_index", "_index")]
            values = [index[int(r)] for r in rows]
            return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        except Exception:  # names only decorate an error message; rows alone still say which cells
            return [f"row {int(r)}" for r in rows]

    return names
