"""``cellzoo predict`` (torch backend) vs ``cellzoo run`` (onnxruntime backend) on a 1,000,000-cell backed file.

::

    .venv/bin/python benchmarks/predict_vs_run.py              # 1M cells (~5 min on 2 cores)
    .venv/bin/python benchmarks/predict_vs_run.py --cells 100000

Both commands go through the one prediction pipeline (:mod:`cellzoo.data.stream`): the matrix is
chosen once, then per chunk checked, normalised, aligned, run and written in place into a copy of
the file. The model is scANNA trained for one epoch on scanpy's pbmc68k_reduced (765 genes; speed
does not depend on the weights), saved as an artifact (``cellzoo predict local-dir:…``) and
exported (``cellzoo run model.onnx``). The file is the seeded negative-binomial counts matrix of
``benchmarks/throughput.py`` over the model's genes (CSR, written chunk-wise).

Each command runs in a fresh process (the CLI's ``main`` in-process, so that the peak resident
memory — ``VmHWM`` — is the command's own); afterwards the same process measures its backend's
pure-inference rate on one dense, already prepared chunk of the size the command used (torch:
the model's ``prediction_backend()``, i.e. its ``_predict_proba``; onnxruntime: ``Session.run`` with the
settings ``cellzoo run`` uses). Target: end to end ≥ 75 % of that rate, peak RSS < 2 GB.

Writes ``predict_vs_run.json`` and ``predict_vs_run.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "predict_vs_run"
CELLS = 1_000_000


def _throughput():
    """benchmarks/throughput.py (its file generator and environment record), loaded by path."""
    spec = importlib.util.spec_from_file_location("cellzoo_bench_throughput", ROOT / "benchmarks" / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CHILD = textwrap.dedent(
    """
    import json, sys, time

    import numpy as np

    a = json.loads(sys.argv[1])
    from cellzoo.cli import main

    t0 = time.perf_counter()
    main(a["argv"], standalone_mode=False)
    seconds = time.perf_counter() - t0
    # VmHWM belongs to this process image; ru_maxrss would include the parent's pages from before exec
    status = open("/proc/self/status").read()
    hwm_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
    torch_loaded = "torch" in sys.modules

    import h5py

    with h5py.File(a["out"], "r") as f:
        chunk = int(f["obsm"][a["proba_key"]].chunks[0])
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.4, size=(chunk, a["n_genes"])).astype(np.float64)
    counts[:, 0] += 1
    x = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4).astype(np.float32)
    if a["backend"] == "torch":
        import cellzoo

        backend = cellzoo.load(a["model"]).prediction_backend()  # the one `cellzoo predict` runs
        run = backend.run
    else:
        from cellzoo.runtime import Session

        session = Session(a["model"], spin=False)  # as `cellzoo run` makes it
        run = lambda x: session.run(x, check=False)  # noqa: E731
    for _ in range(2):
        run(x)
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < a["min_seconds"]:
        t1 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t1)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": hwm_mb, "chunk_size": chunk, "torch_loaded": torch_loaded,
                      "pure_inference_cells_per_s": chunk / float(np.median(times)), "pure_calls": len(times)}))
    """
)


def measure(command: str, argv: list[str], backend: str, model: str, out: Path, n_cells: int, n_genes: int,
            min_seconds: float) -> dict[str, Any]:  # fmt: skip
    args = {"argv": argv, "backend": backend, "model": model, "out": str(out), "proba_key": "cellzoo_scanna_proba",
            "n_genes": n_genes, "min_seconds": min_seconds}  # fmt: skip
    print(f"  {command} …", flush=True)
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    found.update(command=command, backend=backend, cells=n_cells, cells_per_second=n_cells / found["seconds"])
    found["ratio_to_pure"] = found["cells_per_second"] / found["pure_inference_cells_per_s"]
    print(f"    {found['cells_per_second']:,.0f} cells/s end to end, {found['ratio_to_pure']:.0%} of "
          f"{found['pure_inference_cells_per_s']:,.0f} pure, peak RSS {found['peak_rss_mb']:,.0f} MB", flush=True)  # fmt: skip
    return found


def check_outputs(a: Path, b: Path) -> dict[str, Any]:
    """Labels and probabilities of the two outputs, compared (torch vs onnxruntime)."""
    import h5py
    import numpy as np
    from anndata.io import read_elem

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        la = read_elem(fa["obs"]["cellzoo_scanna_label"])
        lb = read_elem(fb["obs"]["cellzoo_scanna_label"])
        agree = float(np.mean(np.asarray(la) == np.asarray(lb)))
        diff = 0.0
        pa, pb = fa["obsm"]["cellzoo_scanna_proba"], fb["obsm"]["cellzoo_scanna_proba"]
        for start in range(0, pa.shape[0], 100_000):
            diff = max(diff, float(np.abs(pa[start : start + 100_000] - pb[start : start + 100_000]).max()))
        x_same = fa["X"]["data"].shape == fb["X"]["data"].shape
    return {"label_agreement": agree, "max_abs_proba_diff": diff, "x_unchanged_shape": x_same}


def markdown(result: dict[str, Any]) -> str:
    env, d = result["environment"], result["data"]
    lines = [
        "# `cellzoo predict` vs `cellzoo run`",
        "",
        f"`{result['command']}` — {env['date']}, {env['host_cpu']}, {env['cpus_available']} CPUs available; "
        f"torch {env['torch']}, onnxruntime {env['onnxruntime']}; GPU: {env['cuda'] or 'none'}. Load average at "
        f"start {', '.join(f'{v:.2f}' for v in env['load_average_start'] or [])}, at end "
        f"{', '.join(f'{v:.2f}' for v in result.get('load_average_end') or [])}.",
        "",
        f"{d['cells']:,} cells × {d['genes']} genes of negative-binomial counts ({d['density']:.1%} non-zero, CSR, "
        f"{d['file_bytes'] / 2**30:.2f} GiB, a backed file); scANNA trained one epoch on pbmc68k_reduced. End to "
        "end = the whole command in a fresh process: load the model, copy the file, read + check + normalise + "
        "align + infer + write in place. Pure inference = the same backend on one dense, prepared chunk.",
        "",
        "| command | backend | chunk | end-to-end cells/s | pure inference cells/s | ratio (target ≥ 75 %) | "
        "peak RSS (target < 2 GB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| `{r['command']}` | {r['backend']} | {r['chunk_size']:,} | {r['cells_per_second']:,.0f} | "
            f"{r['pure_inference_cells_per_s']:,.0f} | {r['ratio_to_pure']:.0%} "
            f"({'met' if r['ratio_to_pure'] >= 0.75 else 'NOT met'}) | {r['peak_rss_mb']:,.0f} MB "
            f"({'met' if r['peak_rss_mb'] < 2000 else 'NOT met'}) |"
        )
    c = result["agreement"]
    lines += [
        "",
        f"The two outputs agree on {c['label_agreement']:.4%} of the labels; max |Δ proba| "
        f"{c['max_abs_proba_diff']:.1e} (torch vs onnxruntime).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=CELLS, help=f"cells in the file [default: {CELLS:,}]")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder [default: {DEFAULT_OUT}]")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="seconds of pure-inference timing per backend")
    args = parser.parse_args(argv)

    import cellzoo
    from cellzoo.export import EXPORT_FILE, export_onnx

    throughput = _throughput()
    result: dict[str, Any] = {"environment": throughput.environment(len(os.sched_getaffinity(0)))}
    result["command"] = " ".join([Path(sys.executable).name, "benchmarks/predict_vs_run.py", *(argv or sys.argv[1:])])
    with tempfile.TemporaryDirectory(prefix="cellzoo-predict-vs-run-") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "CELLZOO_HOME": str(workdir / "home")}
        os.environ.update(env)
        print("training scANNA (one epoch on pbmc68k_reduced) and exporting it …", flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata = cellzoo.get_dataset("pbmc68k_reduced")
            model = cellzoo.create_model("scanna", epochs=1, min_steps=0, val_fraction=0.0, device="cpu").fit(
                adata, "bulk_labels"
            )
        artifact = Path(cellzoo.save(model, workdir / "scanna"))
        export_onnx(f"local-dir:{artifact}", workdir / "scanna-onnx", batch_sizes=(1, 7))
        onnx_path = workdir / "scanna-onnx" / EXPORT_FILE
        genes = list(model.manifest.genes)
        data = workdir / "cells.h5ad"
        print(f"writing {args.cells:,} cells …", flush=True)
        result["data"] = throughput.write_counts_h5ad(data, args.cells, genes)
        out_predict, out_run = workdir / "predicted.h5ad", workdir / "run.h5ad"
        runs = [
            measure("cellzoo predict", ["predict", f"local-dir:{artifact}", str(data), "-o", str(out_predict)],
                    "torch", f"local-dir:{artifact}", out_predict, args.cells, len(genes), args.min_seconds),
            measure("cellzoo run", ["run", str(onnx_path), str(data), "-o", str(out_run), "--device", "cpu", "--no-attention"],
                    "onnxruntime", str(onnx_path), out_run, args.cells, len(genes), args.min_seconds),
        ]  # fmt: skip
        result["runs"] = runs
        result["agreement"] = check_outputs(out_predict, out_run)
    result["load_average_end"] = os.getloadavg()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M")
    args.out.mkdir(parents=True, exist_ok=True)
    from cellzoo.fileio import write_json, write_text

    write_json(args.out / "predict_vs_run.json", result)
    write_text(args.out / "predict_vs_run.md", markdown(result) + "\n")
    print(f"wrote {args.out / 'predict_vs_run.md'} and predict_vs_run.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
