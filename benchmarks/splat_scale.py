"""Write a large Splat simulation to .h5ad chunk by chunk and measure time, peak memory and file size.

    python benchmarks/splat_scale.py --n-cells 1000000 --n-genes 2000 --out /tmp/splat_1M.h5ad

Writes ``benchmarks/results/splat/scale.json`` (and prints it). The .h5ad is deleted afterwards
unless ``--keep`` is given. Peak memory is the process's maximum resident set size (getrusage).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "splat"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=1_000_000)
    parser.add_argument("--n-genes", type=int, default=2_000)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/splat_scale.h5ad"))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import anndata as ad
    import numpy as np

    from cellzoo.fileio import write_json
    from cellzoo_scdata.splat import write_splat_h5ad

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    path = write_splat_h5ad(args.out, args.n_cells, n_genes=args.n_genes, chunk_size=args.chunk_size, seed=args.seed)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = path.stat().st_size

    backed = ad.read_h5ad(path, backed="r")
    nnz = int(backed.X.group["indptr"][-1])
    rows = backed.X[args.n_cells - 1000 :]
    check = {
        "shape": list(backed.shape),
        "nnz": nnz,
        "density": nnz / (args.n_cells * args.n_genes),
        "mean_counts_per_cell_last_1000": float(np.asarray(rows.sum(axis=1)).mean()),
        "groups": backed.obs["group"].value_counts().sort_index().to_dict(),
    }
    backed.file.close()
    result = {
        "command": f"python benchmarks/splat_scale.py --n-cells {args.n_cells} --n-genes {args.n_genes} "
        f"--chunk-size {args.chunk_size} --seed {args.seed}",
        "n_cells": args.n_cells,
        "n_genes": args.n_genes,
        "chunk_size": args.chunk_size,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "rss_before_mib": round(before / 1024, 1),
        "file_gib": round(size / 2**30, 2),
        "dense_float32_gib": round(args.n_cells * args.n_genes * 4 / 2**30, 2),
        "file": check,
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
    }
    if not args.keep:
        path.unlink()
    write_json(RESULTS / f"scale-{args.n_cells}x{args.n_genes}.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
