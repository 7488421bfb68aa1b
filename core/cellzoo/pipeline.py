"""One prediction pipeline, two backends: a trained model (torch) or an exported graph (onnxruntime).

The loop itself — choose the matrix once, then per chunk validate, convert, align, run, write —
is :mod:`cellzoo.data.stream`; :func:`cellzoo.runtime.annotate_h5ad` runs it with the
onnxruntime backend (no torch), ``Annotator.predict`` with the model's own ``_predict_proba``.
This module runs a model into an ``.h5ad`` on disk:

* :func:`predict_h5ad` — an ``.h5ad`` on disk, streamed in chunks into a copy of the file with
  the results written in place through h5py (``X`` is neither loaded whole nor rewritten): what
  ``cellzoo predict`` runs;
* :func:`predict_h5ad_whole` — the same for a model with its own ``predict`` (discover models,
  controls): predicted in memory, only the keys it adds written in place.

In memory, ``Annotator.predict`` and ``Annotator.annotate`` run the same loop; the backend is the
model's (``prediction_backend``: its ``_predict_proba``, or a torch module for more outputs).

Results keys are :func:`cellzoo.data.stream.result_keys`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .data.stream import (
    ChunkPreparer,
    chunk_rows,
    finish_run,
    h5_cell_names,
    h5_members,
    h5_put,
    h5_remove,
    h5_sources,
    open_h5ad,
    plan,
    read_h5ad_checked,
    result_key,
    result_keys,
    results_in_copy,
    run_chunks,
    var_gene_names,
)
from .errors import InputError, ProtocolError
from .fileio import atomic_path
from .model import Annotator
from .protocols import capability
from .runtime.annotate import AnnotationRun, check_paths, run_report

__all__ = ["file_result_keys", "predict_h5ad", "predict_h5ad_whole", "streams"]


def streams(model: Any) -> bool:
    """Whether ``model`` runs through the chunked pipeline: an annotator using the shared ``predict``."""
    return (
        isinstance(model, Annotator)
        and type(model).predict is Annotator.predict
        and not capability(model, "requires_solution")
    )


def _contract_of(model: Any):
    model._check_fitted()
    return model.contract, model.manifest


def _overlap(model: Any, min_overlap: float | None) -> float:
    return float(model.min_gene_overlap if min_overlap is None else min_overlap)


def _run_report(model, decided, keys, done, chunk, prefetch, t_start, copy, out) -> AnnotationRun:
    import torch

    providers = [f"torch ({getattr(model.config, 'device', 'cpu')})"]
    return run_report(decided, keys, done, list(model.classes), chunk, prefetch, t_start, copy, out, providers,
                      torch.get_num_threads())  # fmt: skip


def file_result_keys(f: Any, model_name: str) -> list[tuple[str, str]]:
    """Every ``(attribute, key)`` of an open ``.h5ad`` holding a result of ``model_name`` (``cellzoo_<model>_*``)."""
    prefix = result_key(model_name, "")
    return [(attr, k) for attr in ("obs", "obsm", "uns") for k in sorted(h5_members(f, attr)) if k.startswith(prefix)]


def earlier_results(f: Any, data: Any, model_name: str, overwrite: bool) -> list[tuple[str, str]]:
    """The results of an earlier run of ``model_name`` in the open ``.h5ad`` ``f``; an error unless ``overwrite``."""
    clashes = file_result_keys(f, model_name)
    if clashes and not overwrite:
        shown = ", ".join(f"{attr}[{key!r}]" for attr, key in clashes)
        raise InputError(
            f"{data} already has {shown} (an earlier cellzoo run?); pass --overwrite to replace them, or remove them "
            "first"
        )
    return clashes


def predict_h5ad(
    model: Any,
    data: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    outputs: Sequence[str] = ("proba",),
    min_overlap: float | None = None,
    chunk_size: int | None = None,
    prefetch: int = 0,
    on_chunk: Callable[[int, int], None] | None = None,
    gene_column: str | None = None,
) -> AnnotationRun:
    """Annotate the cells of the ``.h5ad`` ``data`` with a trained annotator; write ``out_path``.

    ``out_path`` is a copy of ``data`` with the results added in place (written to a temporary
    file renamed at the end; ``out_path`` may be ``data`` itself with ``overwrite``). Earlier
    results of the same model are an error unless ``overwrite``, which removes them all.
    ``gene_column`` names the column of ``var`` that holds the gene names (default: ``var_names``),
    as in :func:`cellzoo.runtime.annotate_h5ad`.
    ``prefetch`` chunks are prepared ahead by a reader thread; off by default because torch's
    intra-op threads already take every core (200,000 cells × 765 genes, scANNA, 2 cores: 6.2 s
    without the thread, 7.2 s with two chunks ahead).
    """

    if not streams(model):
        raise ProtocolError(f"model {model.name!r} does not use the shared predict; use predict_h5ad_whole")
    data, out_path = check_paths(data, out_path, overwrite, "predict_h5ad")
    contract, manifest = _contract_of(model)
    backend = model.prediction_backend(outputs)
    chosen = list(outputs)
    t_start = time.perf_counter()
    with open_h5ad(data) as f:
        clashes = earlier_results(f, data, model.name, overwrite)
        # raw restricted to var_names, as the model's fit() and predict() read it
        decided = plan(
            h5_sources(f, data, gene_column, raw="var_names"),
            contract,
            manifest,
            _overlap(model, min_overlap),
            str(data),
        )
        model.last_alignment = decided.alignment
        source = decided.source
        chunk = chunk_rows(backend, source.n_obs, chunk_size, len(source.var_names), len(manifest.genes))
        prepare = ChunkPreparer(source, decided.state, contract, decided.alignment, str(data), h5_cell_names(f),
                                dense=backend.dense)  # fmt: skip
        keys = result_keys(model.name, chosen)
        extras: dict[str, Any] = {"classes": np.asarray(model.classes, dtype=object)}
        if "attention" in chosen:
            extras["attention_genes"] = np.asarray(manifest.genes, dtype=object)
        widths = model.output_widths(chosen)
        with (
            atomic_path(out_path, suffix=".h5ad") as tmp,
            results_in_copy(data, tmp, keys, source.n_obs, widths, chunk, clashes) as results,
        ):
            done = run_chunks(backend, source, prepare, results, chosen, chunk, prefetch, on_chunk)
            finish_run(results, done, model.classes, extras, keys)
    return _run_report(model, decided, keys, done, chunk, prefetch, t_start, results.copy_seconds, str(out_path))


def predict_h5ad_whole(
    model: Any,
    data: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    gene_column: str | None = None,
) -> tuple[Any, Any, list[tuple[str, str]]]:
    """For a model with its own ``predict`` (discover models, controls): predict on the whole file in
    memory, then write only the keys the result adds into a copy of the file, in place.

    ``gene_column`` names the column of ``var`` that holds the gene names: the model sees them
    as ``var_names`` (the file written keeps its own). Returns the result, the AnnData and the
    keys written.
    """
    import h5py

    data, out_path = check_paths(data, out_path, overwrite, "predict_h5ad_whole")
    adata = read_h5ad_checked(data)  # the streaming reader's checks and messages for a file that is not an .h5ad
    if gene_column is not None:
        adata.var_names = var_gene_names(adata.var, gene_column, f"var of {data}")
    with open_h5ad(data) as f:
        clashes = earlier_results(f, data, model.name, overwrite)
    result = model.predict(adata)
    for attr, key in clashes:  # no stale column survives from an earlier run
        if attr == "obs":
            del adata.obs[key]
        else:
            getattr(adata, attr).pop(key, None)
    result.write(adata, model.name)
    prefix = result_key(model.name, "")
    written = [("obs", str(k)) for k in adata.obs.columns if str(k).startswith(prefix)]
    written += [(attr, str(k)) for attr in ("obsm", "uns") for k in getattr(adata, attr) if str(k).startswith(prefix)]
    with atomic_path(out_path, suffix=".h5ad") as tmp:
        shutil.copyfile(data, tmp)
        with h5py.File(tmp, "r+") as out:
            for attr, key in clashes:
                h5_remove(out, attr, key)
            for attr, key in written:
                if attr == "obs":
                    value = adata.obs[key].values  # a Categorical or an array
                else:
                    value = _storable(getattr(adata, attr)[key])
                h5_put(out, attr, key, value)
    return result, adata, written


def _storable(value: Any) -> Any:
    """``value`` as anndata's writer takes it: lists and tuples become arrays, recursively in dicts."""
    if isinstance(value, Mapping):
        return {str(k): _storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_storable(v) for v in value]
        if all(isinstance(v, str) for v in items):
            return np.asarray(items, dtype=object)
        return np.asarray(items)
    return value
