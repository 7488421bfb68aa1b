"""``annotate_h5ad(..., dask=…)`` / ``cellzoo run --dask``: the chunks on a Dask cluster, the same file as a local run."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

import anndata
import cloudpickle
import tiny_models as tiny
from distributed import LocalCluster

import cellzoo.runtime.annotate
from cellzoo.cluster import package_versions, parse_scheduler, version_mismatches
from cellzoo.errors import ClusterError, ConfigError, InputError
from cellzoo.export import EXPORT_FILE, export_onnx
from cellzoo.runtime import Session, annotate_h5ad
from cellzoo.runtime.dask_chunks import run_chunk, run_chunks_on
from cellzoo.testing import tiny_annotate_adata

LABEL, PROBA = "cellzoo_tinyatt_label", "cellzoo_tinyatt_proba"
# the tasks below are defined here, and the workers cannot import this file: send them by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def onnx(tiny_artifact, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "tinyatt-onnx"
    export_onnx(f"local-dir:{tiny_artifact}", out, from_counts=True)
    return out / EXPORT_FILE


@pytest.fixture(scope="module")
def scheduler():
    """A running cluster of 2 worker processes, reached by its address as a remote one would be."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def data(tmp_path) -> Path:
    adata = tiny_annotate_adata(n_cells=500, n_genes=tiny.N_GENES, n_classes=3, seed=11, sparse=True)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def test_the_cluster_writes_what_a_local_run_writes(onnx, scheduler, data, tmp_path):
    session = Session(onnx, threads=1)
    here = annotate_h5ad(session, data, tmp_path / "here.h5ad", chunk_size=64)
    there = annotate_h5ad(session, data, tmp_path / "there.h5ad", chunk_size=64, dask=scheduler)
    assert (here.workers, there.workers) == (1, 2)
    a, b = anndata.read_h5ad(tmp_path / "here.h5ad"), anndata.read_h5ad(tmp_path / "there.h5ad")
    np.testing.assert_array_equal(a.obs[LABEL].astype(str), b.obs[LABEL].astype(str))
    np.testing.assert_allclose(a.obsm[PROBA], b.obsm[PROBA], rtol=0, atol=1e-6)
    assert sorted(a.obs.columns) == sorted(b.obs.columns)
    assert there.label_counts == here.label_counts and there.n_cells == 500


def test_a_bad_cell_is_named_and_nothing_is_written(onnx, scheduler, tmp_path):
    adata = tiny_annotate_adata(n_cells=300, n_genes=tiny.N_GENES, n_classes=3, seed=2, sparse=False)
    adata.X[217, 4] = np.nan
    adata.write_h5ad(tmp_path / "nan.h5ad")
    with pytest.raises(InputError, match=r"NaN or infinite values .*'cell_217' \(row 217\)"):
        annotate_h5ad(Session(onnx, threads=1), tmp_path / "nan.h5ad", tmp_path / "out.h5ad", chunk_size=50,
                      dask=scheduler)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.h5ad"]


def _touching(job, start, stop):
    """The chunk task, which changes the file's modification time when it reaches cell 128."""
    if start == 128:
        st = os.stat(job.data)
        os.utime(job.data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    return run_chunk(job, start, stop)


def test_a_file_that_changes_while_read_stops_the_run(onnx, scheduler, data, tmp_path, monkeypatch):
    monkeypatch.setattr(cellzoo.runtime.annotate, "run_chunks_on", functools.partial(run_chunks_on, task=_touching))
    with pytest.raises(InputError, match="changed while it was being read"):
        annotate_h5ad(Session(onnx, threads=1), data, tmp_path / "out.h5ad", chunk_size=64, dask=scheduler)
    assert not (tmp_path / "out.h5ad").exists()


def _failing(job, start, stop):
    if start == 64:
        raise RuntimeError("disk went away")
    return run_chunk(job, start, stop)


def test_a_failing_chunk_is_named(onnx, scheduler, data, tmp_path, monkeypatch):
    monkeypatch.setattr(cellzoo.runtime.annotate, "run_chunks_on", functools.partial(run_chunks_on, task=_failing))
    with pytest.raises(ClusterError, match=r"the chunk of cells 64–127 .* failed on the Dask cluster .*disk went away"):
        annotate_h5ad(Session(onnx, threads=1), data, tmp_path / "out.h5ad", chunk_size=64, dask=scheduler)
    assert not (tmp_path / "out.h5ad").exists()


def _dying_once(marker, job, start, stop):
    """The chunk task, whose worker process dies the first time it reaches cell 192."""
    if start == 192 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return run_chunk(job, start, stop)


def test_a_worker_that_dies_has_its_chunk_run_again(onnx, data, tmp_path, monkeypatch):
    task = functools.partial(_dying_once, str(tmp_path / "died"))
    monkeypatch.setattr(cellzoo.runtime.annotate, "run_chunks_on", functools.partial(run_chunks_on, task=task))
    session = Session(onnx, threads=1)
    run = annotate_h5ad(session, data, tmp_path / "there.h5ad", chunk_size=64, dask="local:2")
    assert (tmp_path / "died").exists()  # a worker did die
    annotate_h5ad(session, data, tmp_path / "here.h5ad", chunk_size=64)
    a, b = anndata.read_h5ad(tmp_path / "here.h5ad"), anndata.read_h5ad(tmp_path / "there.h5ad")
    np.testing.assert_allclose(a.obsm[PROBA], b.obsm[PROBA], rtol=0, atol=1e-6)  # complete: every chunk
    assert run.n_cells == 500


def test_workers_with_other_versions_are_refused():
    here = package_versions()
    assert here["numpy"] == np.__version__
    other = {**here, "numpy": "1.0.0", "h5py": None}
    lines = version_mismatches(here, {"tcp://10.0.0.2:40000": other, "tcp://10.0.0.3:40000": here})
    assert len(lines) == 2 and all(line.startswith("tcp://10.0.0.2:40000: ") for line in lines)
    assert f"numpy 1.0.0 (here {np.__version__})" in lines[0] or f"numpy 1.0.0 (here {np.__version__})" in lines[1]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("local", ("local", None)), ("local:3", ("local", 3)), ("tcp://127.0.0.1:8786", ("address", None)),
     ("scheduler.lab:8786", ("address", None))],
)  # fmt: skip
def test_scheduler_specs(spec, parsed):
    assert parse_scheduler(spec) == parsed


@pytest.mark.parametrize("spec", ["local:0", "locale", "my cluster"])
def test_bad_scheduler_specs_say_what_is_accepted(spec):
    with pytest.raises(ConfigError, match="local"):
        parse_scheduler(spec)


def test_an_unreachable_scheduler_is_named(onnx, data, tmp_path, monkeypatch):
    monkeypatch.setattr("cellzoo.cluster.CONNECT_TIMEOUT", 2)
    with pytest.raises(ClusterError, match=r"cannot reach a Dask scheduler at tcp://127.0.0.1:9 .*--dask local:N"):
        annotate_h5ad(Session(onnx, threads=1), data, tmp_path / "out.h5ad", dask="tcp://127.0.0.1:9")
    assert not (tmp_path / "out.h5ad").exists()


def test_cli_run_on_a_local_cluster(onnx, data, tmp_path):
    from click.testing import CliRunner

    from cellzoo.cli import main

    out = tmp_path / "out.h5ad"
    result = CliRunner().invoke(main, ["run", str(onnx), str(data), "-o", str(out), "--dask", "local:2",
                                       "--chunk-size", "100"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "on 2 Dask workers" in result.output
    assert anndata.read_h5ad(out).obs[LABEL].notna().all()
