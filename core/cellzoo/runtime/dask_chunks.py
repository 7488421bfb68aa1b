"""The chunks of one ``.h5ad`` run on a Dask cluster: one onnxruntime session per worker, the results written here.

:func:`cellzoo.runtime.annotate_h5ad` with ``dask=`` plans the run as it always does (the matrix,
its state, the gene alignment, the chunk size, the keys) and hands the chunks to
:func:`run_chunks_on`: each worker opens the ONNX graph and the ``.h5ad`` once (cached in the
worker process) and, for every chunk it is given, reads rows ``a:b``, checks, converts and aligns
them (:class:`cellzoo.data.stream.ChunkPreparer`, as a local run) and runs the graph. The driver
writes each chunk's outputs into the copy of the file as it arrives, so the output is one
``.h5ad``, written whole or not at all.

Faults: a worker that dies mid-chunk has its chunk run again on another worker by the scheduler
(``distributed.scheduler.allowed-failures`` times); a chunk that fails is an error naming its
cells, and nothing is written. The file's size and modification time are checked before every
chunk, so a file that changes while it is read stops the run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.contract import InputContract
from ..data.genes import GeneAlignment
from ..data.stream import ChunkPreparer, ChunkRun, Results, h5_cell_names, h5_sources, open_h5ad, silent_rows
from ..errors import ClusterError, InputError
from .session import Session

#: the packages a worker must run in this process's version for an ONNX run (torch is not one)
RUNTIME_PACKAGES = ("cellzoo", "numpy", "scipy", "anndata", "h5py", "onnxruntime", "onnxruntime-gpu")
#: chunks in flight per worker: one running, one queued, so a worker never waits for the driver
IN_FLIGHT_PER_WORKER = 2


def file_stamp(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Size and modification time (ns) of a file: what changes when anything writes it."""
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs to run any chunk of one run (sent once to every worker)."""

    data: str
    stamp: tuple[int, int]
    gene_column: str | None
    where: str
    state: str
    contract: InputContract
    alignment: GeneAlignment
    onnx: str
    settings: Mapping[str, Any]
    threads: int
    outputs: tuple[str, ...]
    proba_name: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)


#: per worker process: the sessions and open files of the runs it takes part in
_OPEN: dict[Any, Any] = {}


def _session(job: ChunkJob) -> Session:
    key = ("session", job.onnx, job.threads, tuple(sorted((k, repr(v)) for k, v in job.settings.items())))
    if key not in _OPEN:
        _OPEN[key] = Session(job.onnx, threads=job.threads, **job.settings)
    return _OPEN[key]


def _changed(job: ChunkJob) -> InputError:
    return InputError(
        f"{job.data} changed while it was being read (its size or modification time is not what it was when the run "
        "started), so the cells read so far may not belong together; nothing was written. Run again once nothing "
        "writes the file"
    )


def _preparer(job: ChunkJob) -> tuple[Any, ChunkPreparer]:
    key = ("data", job.run_id)
    if key not in _OPEN:
        for old in [k for k in _OPEN if k[0] == "data"]:  # one run's file open at a time per worker
            _OPEN.pop(old)[0].close()
        f = open_h5ad(Path(job.data))
        sources = {s.where: s for s in h5_sources(f, Path(job.data), job.gene_column)}
        source = sources[job.where]
        prepare = ChunkPreparer(source, job.state, job.contract, job.alignment, job.data, h5_cell_names(f))
        _OPEN[key] = (f, source, prepare)
    _, source, prepare = _OPEN[key]
    return source, prepare


def run_chunk(job: ChunkJob, start: int, stop: int) -> dict[str, Any]:
    """Rows ``start:stop`` of the run's matrix through the graph, on a worker: its outputs, codes and timings."""
    if file_stamp(job.data) != job.stamp:
        raise _changed(job)
    t0 = time.perf_counter()
    source, prepare = _preparer(job)
    x = prepare(source.read(start, stop), start)
    t1 = time.perf_counter()
    out = _session(job).run(x, check=False)
    t2 = time.perf_counter()
    return {
        "outputs": {name: out[name] for name in job.outputs},
        "codes": np.argmax(out[job.proba_name], axis=1).astype(np.int32),
        "silent": silent_rows(x),
        "prepare_seconds": t1 - t0,
        "infer_seconds": t2 - t1,
    }


def run_chunks_on(
    client: Any,
    job: ChunkJob,
    results: Results,
    n: int,
    chunk: int,
    on_chunk: Callable[[int, int], None] | None = None,
    task: Callable[..., dict[str, Any]] = run_chunk,
) -> ChunkRun:
    """Every chunk of ``n`` cells run by ``task`` on ``client``'s workers, written into ``results`` here.

    At most :data:`IN_FLIGHT_PER_WORKER` chunks per worker are submitted ahead, so the outputs
    waiting for the driver stay bounded however large the file.
    """
    from distributed import as_completed

    bounds = [(a, min(n, a + chunk)) for a in range(0, n, chunk)]
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    shared = client.scatter(job, broadcast=True)
    codes = np.empty(n, dtype=np.int32)
    silent = np.zeros(n, dtype=bool)
    infer = prep = 0.0
    pending = list(reversed(bounds))
    where: dict[Any, tuple[int, int]] = {}

    def submit() -> Any:
        a, b = pending.pop()
        future = client.submit(task, shared, a, b, key=f"cellzoo-chunk-{job.run_id}-{a}", pure=False)
        where[future] = (a, b)
        return future

    running = as_completed([submit() for _ in bounds[: IN_FLIGHT_PER_WORKER * workers]])
    done_cells = 0
    try:
        for future in running:
            a, b = where.pop(future)
            try:
                out = future.result()
            except InputError:
                raise
            except Exception as exc:
                raise ClusterError(
                    f"the chunk of cells {a}–{b - 1} of {job.data} failed on the Dask cluster ({type(exc).__name__}: "
                    f"{exc}); nothing was written"
                ) from exc
            codes[a:b], silent[a:b] = out["codes"], out["silent"]
            infer += out["infer_seconds"]
            prep += out["prepare_seconds"]
            results.write(a, b, out["outputs"])
            done_cells += b - a
            if on_chunk is not None:
                on_chunk(done_cells, n)
            if pending:
                running.add(submit())
    finally:
        client.cancel(list(where))
    if file_stamp(job.data) != job.stamp:
        raise _changed(job)
    return ChunkRun(codes, infer, prep, no_signal=silent, n_genes=len(job.alignment.index))


def chunk_job(
    session: Session, data: Path, gene_column: str | None, decided: Any, outputs: Sequence[str], proba_name: str
) -> ChunkJob:
    """The :class:`ChunkJob` of a planned run (``decided``: :func:`cellzoo.data.stream.plan`'s answer)."""
    return ChunkJob(
        data=str(Path(data).resolve()),
        stamp=file_stamp(data),
        gene_column=gene_column,
        where=decided.source.where,
        state=decided.state,
        contract=decided.contract,
        alignment=decided.alignment,
        onnx=str(session.path.resolve()),
        settings=dict(session.settings),
        threads=1,
        outputs=tuple(outputs),
        proba_name=proba_name,
    )
