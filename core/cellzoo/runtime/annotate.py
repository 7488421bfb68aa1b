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
current one (a bounded queue keeps at most ``prefetch`` chunks in flight). The loop, the choice
of the matrix and the writers are the one prediction pipeline of :mod:`cellzoo.data.stream`
(shared with ``Annotator.predict`` and ``cellzoo predict``); this module adds its onnxruntime
backend, :class:`OnnxBackend`. ``X`` is used when its state (declared in
``uns["cellzoo"]["input_state"]`` or detected on a sample of rows) can be brought to the graph's
input state, else ``layers["counts"]``, else ``raw/X``. Raw counts are normalised over all their
genes before the model's genes are selected.

:func:`annotate_adata` does the same for an AnnData already in memory.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cluster import dask_client
from ..data.contract import InputContract
from ..data.genes import AlignmentReport, GeneManifest
from ..data.stream import (
    CHUNK_BYTES,
    CSC_MAX_NNZ,
    MAX_CHUNK,
    MIN_CHUNK,
    SAMPLE_BLOCKS,
    SAMPLE_ROWS,
    ChunkPreparer,
    MatrixSource,
    MemoryResults,
    auto_chunk_size,
    check_widths,
    choose_source,
    finish_run,
    h5_cell_names,
    h5_members,
    h5_reader,
    h5_sources,
    memory_sources,
    open_h5ad,
    plan,
    result_keys,
    results_in_copy,
    run_chunks,
)
from ..errors import ConfigError, InputError, ProtocolError
from ..fileio import atomic_path, check_output_file
from .dask_chunks import RUNTIME_PACKAGES, chunk_job, run_chunks_on
from .session import Session

if TYPE_CHECKING:
    import anndata

__all__ = [
    "CHUNK_BYTES", "CSC_MAX_NNZ", "MAX_CHUNK", "MIN_CHUNK", "SAMPLE_BLOCKS", "SAMPLE_ROWS", "AnnotationRun",
    "MatrixSource", "OnnxBackend", "annotate_adata", "annotate_h5ad", "auto_chunk_size", "choose_source",
    "result_keys",
]  # fmt: skip

#: how a matrix of an open .h5ad is read by rows (module-level, so that tests can watch the reads)
_h5_reader = h5_reader


class OnnxBackend:
    """The onnxruntime backend of the pipeline: a :class:`Session` run on dense float32 chunks."""

    dense = True
    row_wise = True

    def __init__(self, session: Session):
        self.session = session
        self.output_names = tuple(session.output_names)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.session.run(x, check=False)


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
    #: Dask workers the chunks ran on (1: this process)
    workers: int = 1
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


def _plan(
    session: Session, sources: list[MatrixSource], where: str, outputs: Sequence[str] | None, min_overlap: float | None
) -> tuple[Any, list[str], str]:
    info = session.info
    if info.task != "annotate":
        raise ProtocolError(f"{session.path.name} is a {info.task!r} model; annotating cells needs an 'annotate' model")
    contract = (
        InputContract(state=info.input_state, target_sum=info.target_sum or 1e4)
        if info.input_state != "any"
        else InputContract(state="any")
    )
    overlap = info.min_gene_overlap if min_overlap is None else float(min_overlap)
    manifest = GeneManifest(info.genes, info.gene_namespace, info.gene_species)
    decided = plan(sources, contract, manifest, overlap, where)
    proba_name = "proba" if "proba" in session.output_names else session.output_names[0]
    if outputs is None:
        chosen = list(session.output_names)
    else:
        unknown = sorted(set(outputs) - set(session.output_names))
        if unknown:
            raise ConfigError(
                f"{session.path.name} has no output {', '.join(unknown)}; its outputs are {', '.join(session.output_names)}"
            )
        chosen = list(dict.fromkeys(outputs))
    return decided, chosen, proba_name


def _widths(session: Session, outputs: Sequence[str], proba_name: str) -> dict[str, int]:
    """Per-cell widths of the outputs, from one run on a single all-zero cell."""
    probe = session.run(np.zeros((1, session.n_genes), dtype=np.float32), check=False)
    widths = {}
    for name in {*outputs, proba_name}:
        shape = probe[name].shape
        if len(shape) != 2 or shape[0] != 1:
            raise ProtocolError(f"{session.path.name}: output {name!r} has shape {shape} for one cell; expected 1 × k")
        widths[name] = int(shape[1])
    check_widths(widths, proba_name, session.info.labels, session.path.name)
    return widths


def _classes(session: Session, width: int) -> list[str]:
    return list(session.info.labels) if session.info.labels is not None else [str(i) for i in range(width)]


def _extras(session: Session, outputs: Sequence[str], classes: list[str]) -> dict[str, np.ndarray]:
    extras = {"classes": np.asarray(classes, dtype=object)}
    if "attention" in outputs:
        extras["attention_genes"] = np.asarray(session.info.genes, dtype=object)
    return extras


def _session(session: Session | str | os.PathLike[str]) -> Session:
    return session if isinstance(session, Session) else Session(session)


def check_paths(data: Any, out_path: str | os.PathLike[str], overwrite: bool, what: str) -> tuple[Path, Path]:
    """``data`` (a path or a backed AnnData) and ``out_path`` as paths, with the errors both commands give.

    ``out_path`` must be a new ``.h5ad`` (unless ``overwrite``) that can be written: its folder
    (or the nearest one that exists; the rest is created) is writable, checked before any data is read.
    """
    if not isinstance(data, (str, os.PathLike)):
        filename = getattr(data, "filename", None)
        if filename is None:
            raise ConfigError(
                f"{what} reads an .h5ad file: pass its path or an AnnData opened with "
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
    check_output_file(out_path, create_parents=True)
    return data, out_path


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
    dask: str | None = None,
) -> AnnotationRun:
    """Annotate the cells of the ``.h5ad`` ``data`` (a path, or an AnnData opened with
    ``anndata.read_h5ad(path, backed="r")``) and write ``out_path``.

    ``dask`` runs the chunks on a Dask cluster (``"local"``, ``"local:N"`` or a scheduler's
    address; :mod:`cellzoo.cluster`), one onnxruntime session per worker
    (:mod:`cellzoo.runtime.dask_chunks`); the output is the same file a local run writes.

    ``outputs`` picks which model outputs go to ``obsm`` (default: all; labels always). Results
    of an earlier run of the same model are an error unless ``overwrite``. ``chunk_size`` rows
    are read at a time (default: about 32 MiB of dense float32); ``prefetch`` chunks are prepared
    ahead by a reader thread (0: no thread). ``on_chunk(done, total)`` reports progress.
    """

    session = _session(session)
    data, out_path = check_paths(data, out_path, overwrite, "annotate_h5ad")
    backend = OnnxBackend(session)
    t_start = time.perf_counter()
    with _client(dask) as client, open_h5ad(data) as f:
        sources = h5_sources(f, data, gene_column, reader=lambda *a: _h5_reader(*a))
        decided, chosen, proba_name = _plan(session, sources, str(data), outputs, min_overlap)
        source = decided.source
        keys = result_keys(session.info.architecture, chosen)
        # every key an earlier run of this model may have written, so that none survives an overwrite
        earlier = result_keys(session.info.architecture, session.output_names)
        clashes = [f"{attr}[{key!r}]" for attr, key in earlier.values() if key in h5_members(f, attr)]
        if clashes and not overwrite:
            raise InputError(
                f"{data} already has {', '.join(clashes)} (an earlier cellzoo run?); pass --overwrite to replace them"
            )
        widths = _widths(session, chosen, proba_name)
        chunk = int(chunk_size) if chunk_size else auto_chunk_size(len(source.var_names), session.n_genes)
        if chunk < 1:
            raise ConfigError(f"chunk_size must be at least 1, got {chunk_size!r}")
        prepare = ChunkPreparer(source, decided.state, decided.contract, decided.alignment, str(data),
                                h5_cell_names(f))  # fmt: skip

        classes = _classes(session, widths[proba_name])
        chosen_widths = {n: widths[n] for n in chosen}
        with (
            atomic_path(out_path, suffix=".h5ad") as tmp,
            results_in_copy(data, tmp, keys, source.n_obs, chosen_widths, chunk, list(earlier.values())) as results,
        ):
            if client is None:
                done = run_chunks(backend, source, prepare, results, chosen, chunk, prefetch, on_chunk)
            else:
                job = chunk_job(session, data, gene_column, decided, chosen, proba_name)
                done = run_chunks_on(client, job, results, source.n_obs, chunk, on_chunk)
            finish_run(results, done, classes, _extras(session, chosen, classes), keys)
        workers = 1 if client is None else len(client.scheduler_info()["workers"])
    run = _report(session, decided, keys, done, classes, chunk, prefetch, t_start, results.copy_seconds,
                  str(out_path))  # fmt: skip
    run.workers = workers
    return run


@contextmanager
def _client(dask: str | None) -> Iterator[Any]:
    if dask is None:
        yield None
        return
    with dask_client(dask, RUNTIME_PACKAGES) as client:
        yield client


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
    sources = memory_sources(adata, gene_column, raw="all")
    t_start = time.perf_counter()
    decided, chosen, proba_name = _plan(session, sources, "the AnnData", outputs, min_overlap)
    source = decided.source
    keys = result_keys(session.info.architecture, chosen)
    earlier = result_keys(session.info.architecture, session.output_names)
    members = {"obs": adata.obs.columns, "obsm": adata.obsm.keys(), "uns": adata.uns.keys()}
    clashes = [f"{attr}[{key!r}]" for attr, key in earlier.values() if key in members[attr]]
    if clashes and not overwrite:
        raise InputError(f"the AnnData already has {', '.join(clashes)}; pass overwrite=True to replace them")
    for attr, key in earlier.values():
        if attr == "obs" and key in adata.obs.columns:
            del adata.obs[key]
        elif attr != "obs":
            getattr(adata, attr).pop(key, None)
    widths = _widths(session, chosen, proba_name)
    chunk = int(chunk_size) if chunk_size else auto_chunk_size(len(source.var_names), session.n_genes)
    prepare = ChunkPreparer(source, decided.state, decided.contract, decided.alignment, "the AnnData",
                            lambda rows: list(adata.obs_names[rows]))  # fmt: skip
    results = MemoryResults(adata, keys, {n: widths[n] for n in chosen})
    done = run_chunks(OnnxBackend(session), source, prepare, results, chosen, chunk)
    classes = _classes(session, widths[proba_name])
    finish_run(results, done, classes, _extras(session, chosen, classes), keys)
    return _report(session, decided, keys, done, classes, chunk, 0, t_start, 0.0, None)


def _report(session, decided, keys, done, classes, chunk, prefetch, t_start, copy, out) -> AnnotationRun:
    return run_report(decided, keys, done, classes, chunk, prefetch, t_start, copy, out, list(session.providers),
                      session.threads)  # fmt: skip


def run_report(
    decided: Any,
    keys: dict[str, tuple[str, str]],
    done: Any,
    classes: Sequence[str],
    chunk: int,
    prefetch: int,
    t_start: float,
    copy: float,
    out: str | None,
    providers: list[str],
    threads: int,
) -> AnnotationRun:
    """The :class:`AnnotationRun` of a finished pipeline run (``decided``: its plan; ``done``: its chunks)."""
    counts = np.bincount(done.codes, minlength=len(classes))
    order = np.argsort(-counts, kind="stable")
    return AnnotationRun(
        n_cells=decided.source.n_obs,
        source=decided.source.where,
        data_state=decided.state,
        graph_state=decided.contract.state,
        alignment=decided.alignment.report,
        keys=keys,
        label_counts={classes[i]: int(counts[i]) for i in order if counts[i]},
        chunk_size=chunk,
        prefetch=prefetch,
        providers=providers,
        threads=threads,
        seconds=time.perf_counter() - t_start,
        infer_seconds=done.infer_seconds,
        prepare_seconds=done.prepare_seconds,
        copy_seconds=copy,
        output=out,
        labels=np.asarray(classes, dtype=object)[done.codes],
    )
