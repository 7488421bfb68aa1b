"""Marker-gene recovery on Splat simulations, where the true markers are known.

For each simulation (size × DE strength × seed) every method ranks the genes of each group and
is scored with marker precision@k against ``uns["splat"]["markers"]`` (the up-regulated genes):

* ``scanna_attention`` — scANNA trained on the group labels (its default recipe), attention α
  summed over each group's correctly predicted cells (the reference ranking);
* ``scanna_tfidf`` — the same sums re-ranked by tf-idf (scANNA's ``method="tfidf"``);
* ``wilcoxon`` — scanpy's ``rank_genes_groups(method="wilcoxon")`` on log1p CP10k;
* ``logreg`` — the largest coefficients of cellzoo's logistic regression (``create_model("logreg")``);
* ``random`` — genes drawn at random per group (the control: precision ≈ share of true markers).

    python benchmarks/markers.py                     # the default grid (~5 minutes on 2 cores)
    python benchmarks/markers.py --quick             # one small simulation, for a smoke test

Writes ``benchmarks/results/markers/results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "markers"
METHODS = ("scanna_attention", "scanna_tfidf", "wilcoxon", "logreg", "random")
KS = (10, 20)
GRID = {"n_cells": (1000, 3000), "de_fac_loc": (0.1, 0.3, 0.6), "seed": (0,)}
FIXED = {"n_genes": 500, "n_groups": 5, "de_prob": 0.1}


def rankings(adata, n: int, seed: int) -> tuple[dict[str, dict[str, list[str]]], dict[str, float], dict]:
    """Per method: {group: genes ranked best first}; plus seconds per method and scANNA's training facts."""
    import scanpy as sc

    import cellzoo
    from cellzoo_scanna import Scanna, ScannaConfig

    out: dict[str, dict[str, list[str]]] = {}
    seconds: dict[str, float] = {}
    groups = list(adata.obs["group"].cat.categories)

    start = time.perf_counter()
    scanna = Scanna(ScannaConfig(seed=seed)).fit(adata, "group")
    train_seconds = time.perf_counter() - start
    for method in ("attention", "tfidf"):
        start = time.perf_counter()
        out[f"scanna_{method}"] = scanna.markers(adata, "group", n=n, method=method)
        seconds[f"scanna_{method}"] = train_seconds + time.perf_counter() - start
    history = scanna.history
    accuracy = float(np.mean(scanna.predict(adata).labels == adata.obs["group"].astype(str).to_numpy()))
    facts = {"epochs_run": history.epochs, "stopped_early": history.stopped_early, "train_accuracy": accuracy}

    start = time.perf_counter()
    logged = adata.copy()
    sc.pp.normalize_total(logged, target_sum=1e4)
    sc.pp.log1p(logged)
    sc.tl.rank_genes_groups(logged, "group", method="wilcoxon", n_genes=n)
    names = logged.uns["rank_genes_groups"]["names"]
    out["wilcoxon"] = {g: [str(x) for x in names[g]] for g in groups}
    seconds["wilcoxon"] = time.perf_counter() - start

    start = time.perf_counter()
    logreg = cellzoo.create_model("logreg", seed=seed).fit(adata, "group")
    coef = logreg.state_tensors()["coef"]
    genes = np.asarray(logreg.manifest.genes)
    out["logreg"] = {c: list(genes[np.argsort(-coef[i], kind="stable")[:n]]) for i, c in enumerate(logreg.classes)}
    seconds["logreg"] = time.perf_counter() - start

    rng = np.random.default_rng(seed)
    out["random"] = {g: list(rng.choice(np.asarray(adata.var_names), size=n, replace=False)) for g in groups}
    seconds["random"] = 0.0
    return out, seconds, facts


def run(grid: dict, fixed: dict) -> list[dict]:
    import cellzoo
    from cellzoo_scdata.markers import marker_precision_at_k, precision_at_k_per_class

    records = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        params = {**fixed, **dict(zip(keys, values))}
        adata = cellzoo.get_dataset("splat", **params)
        truth = {g: list(v) for g, v in adata.uns["splat"]["markers"].items()}
        ranked, seconds, facts = rankings(adata, max(KS), params["seed"])
        for method in METHODS:
            record = {
                "simulation": params,
                "method": method,
                "seconds": round(seconds[method], 2),
                "true_markers_per_group": {g: len(v) for g, v in truth.items()},
            }
            for k in KS:
                record[f"precision_at_{k}"] = marker_precision_at_k(truth, ranked[method], k=k)
                record[f"per_group_at_{k}"] = precision_at_k_per_class(truth, ranked[method], k)
            if method.startswith("scanna"):
                record["scanna"] = facts
            records.append(record)
        best = max(
            METHODS, key=lambda m: next(r for r in records[-len(METHODS) :] if r["method"] == m)["precision_at_10"]
        )
        print(f"{params}: best precision@10 {best}", file=sys.stderr)
    return records


def markdown(records: list[dict], command: str) -> str:
    lines = [
        "# Marker recovery on Splat simulations",
        "",
        f"Produced by `{command}` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, Python "
        f"{platform.python_version()}). Precision@k = share of a group's top-k genes that are true markers "
        "(genes up-regulated in that group, DE factor > 1), averaged over the groups. "
        f"Fixed: {', '.join(f'{k}={v}' for k, v in FIXED.items())}; Splatter defaults otherwise "
        "(de_fac_scale 0.4, lib_loc 8.0).",
        "",
        "| cells | DE loc | seed | true markers / group | " + " | ".join(f"{m} @10 / @20" for m in METHODS) + " |",
        "|---|---|---|---|" + "---|" * len(METHODS),
    ]
    sims = []
    for r in records:
        if r["simulation"] not in sims:
            sims.append(r["simulation"])
    for sim in sims:
        rows = {r["method"]: r for r in records if r["simulation"] == sim}
        n_true = np.mean(list(next(iter(rows.values()))["true_markers_per_group"].values()))
        cells = [f"{rows[m]['precision_at_10']:.2f} / {rows[m]['precision_at_20']:.2f}" for m in METHODS]
        lines.append(
            f"| {sim['n_cells']} | {sim['de_fac_loc']} | {sim['seed']} | {n_true:.0f} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Mean over all simulations:",
        "",
        "| method | precision@10 | precision@20 | seconds |",
        "|---|---|---|---|",
    ]
    for m in METHODS:
        rows = [r for r in records if r["method"] == m]
        lines.append(
            f"| {m} | {np.mean([r['precision_at_10'] for r in rows]):.3f} | "
            f"{np.mean([r['precision_at_20'] for r in rows]):.3f} | {np.mean([r['seconds'] for r in rows]):.1f} |"
        )
    facts = [r["scanna"] for r in records if r["method"] == "scanna_attention"]
    lines += [
        "",
        "scANNA (default recipe: Adam 1e-4, batch 128, up to 50 epochs, early stopping on 10 %) reached training "
        f"accuracy {min(f['train_accuracy'] for f in facts):.3f}–{max(f['train_accuracy'] for f in facts):.3f} on the "
        "group labels, so its attention markers come from a network that separates the groups.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small simulation (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from cellzoo.fileio import write_json, write_text

    grid = {"n_cells": (300,), "de_fac_loc": (0.6,), "seed": (0,)} if args.quick else GRID
    command = "python benchmarks/markers.py" + (" --quick" if args.quick else "")
    start = time.perf_counter()
    records = run(grid, FIXED)
    payload = {
        "command": command,
        "grid": grid,
        "fixed": FIXED,
        "ks": list(KS),
        "methods": list(METHODS),
        "seconds": round(time.perf_counter() - start, 1),
        "records": records,
    }
    write_json(args.out / "results.json", payload)
    write_text(args.out / "results.md", markdown(records, command))
    print(json.dumps({"seconds": payload["seconds"], "out": str(args.out)}))


if __name__ == "__main__":
    main()
