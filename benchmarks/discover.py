"""N-ACT on the ``discover`` task: clusters and names against manual labels (pbmc68k_reduced, Splat).

The benchmark harness (``cellzoo bench``) runs the ``annotate`` protocol only, so this script
measures ``discover`` itself, in two modes:

* ``all`` — ``fit(adata)`` on every cell, scoring the clusters found by clustering and their names
  (N-ACT's own use: annotate a data set without labels);
* ``holdout`` — ``fit`` on a random 80 % of the cells, ``predict`` the other 20 % with the
  trained network (new cells get the name of the cluster they are assigned to).

Metrics: ARI, NMI (of the clusters) and name accuracy (of the names); ``oracle_names`` is the
name accuracy had every cluster been given its most frequent true label — the ceiling the
clusters allow, which separates clustering errors from naming errors. The ``random_clusters``
control runs with as many clusters as there are true labels.

    python benchmarks/discover.py            # ~10 minutes on 2 cores
    python benchmarks/discover.py --quick    # one seed, small Splat

Writes ``benchmarks/results/discover/results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "discover"
SPLAT = {"n_cells": 2000, "n_genes": 500, "n_groups": 5, "de_prob": 0.1, "de_fac_loc": 0.3, "seed": 0}
DATASETS = {
    "pbmc68k_reduced": {"params": {}, "label_key": "bulk_labels"},
    "splat": {"params": SPLAT, "label_key": "group"},
}


def oracle_name_accuracy(y_true: np.ndarray, clusters: np.ndarray) -> float:
    """Name accuracy if each cluster were named after its most frequent true label."""
    import pandas as pd

    table = pd.crosstab(pd.Series(clusters, name="c"), pd.Series(y_true, name="y"))
    return float(table.max(axis=1).sum() / len(y_true))


def splat_table(adata, path: Path) -> Path:
    """The simulation's truth as a marker table: each group's up-regulated genes."""
    import pandas as pd

    rows = [(g, m, "splat truth") for g, markers in adata.uns["splat"]["markers"].items() for m in markers]
    pd.DataFrame(rows, columns=["cell_type", "gene", "source"]).to_csv(path, index=False)
    return path


def score(y_true, prediction) -> dict[str, float]:
    from cellzoo_nact.discovery import clusters_of
    from cellzoo_nact.metrics import ari, name_accuracy, nmi

    return {
        "ari": ari(y_true, prediction),
        "nmi": nmi(y_true, prediction),
        "name_accuracy": name_accuracy(y_true, prediction),
        "oracle_names": oracle_name_accuracy(np.asarray(y_true).astype(str), clusters_of(prediction)),
    }


def run(seeds: list[int], datasets: dict, table_dir: Path) -> list[dict]:
    import cellzoo

    records = []
    for name, spec in datasets.items():
        adata = cellzoo.get_dataset(name, **spec["params"])
        y = adata.obs[spec["label_key"]].astype(str).to_numpy()
        overrides = {}
        if name == "splat":
            overrides["marker_table"] = str(splat_table(adata, table_dir / "splat_markers.csv"))
        for seed in seeds:
            base = {"dataset": name, "label_key": spec["label_key"], "seed": seed, "n_cells": adata.n_obs}
            for method in ("attention", "tfidf"):
                start = time.perf_counter()
                model = cellzoo.create_model("nact", seed=seed, marker_method=method, **overrides).fit(adata)
                seconds = time.perf_counter() - start
                records.append(
                    {
                        **base,
                        "model": "nact",
                        "mode": "all",
                        "marker_method": method,
                        "clustering": model.clustering,
                        "fit_seconds": round(seconds, 1),
                        "metrics": score(y, model.fit_result),
                        "clusters": model.cluster_table().reset_index().to_dict("records"),
                    }
                )
                print(name, seed, method, records[-1]["metrics"], flush=True)
            rng = np.random.default_rng(seed)
            test = np.zeros(adata.n_obs, dtype=bool)
            test[rng.choice(adata.n_obs, size=adata.n_obs // 5, replace=False)] = True
            train_cells, test_cells = adata[~test].copy(), adata[test].copy()
            model = cellzoo.create_model("nact", seed=seed, **overrides).fit(train_cells)
            records.append(
                {
                    **base,
                    "model": "nact",
                    "mode": "holdout",
                    "marker_method": "attention",
                    "clustering": model.clustering,
                    "n_test": int(test.sum()),
                    "metrics": score(y[test], model.predict(test_cells)),
                }
            )
            control = cellzoo.create_model("random_clusters", seed=seed, n_clusters=len(set(y))).fit(adata)
            records.append(
                {**base, "model": "random_clusters", "mode": "all", "metrics": score(y, control.predict(adata))}
            )
    return records


def markdown(records: list[dict], command: str) -> str:
    metrics = ("ari", "nmi", "name_accuracy", "oracle_names")

    def mean_sd(values):
        values = np.asarray(values, dtype=float)
        sd = values.std(ddof=1) if len(values) > 1 else 0.0
        return f"{values.mean():.3f} ± {sd:.3f}"

    lines = [
        "# N-ACT on the discover task",
        "",
        f"Produced by `{command}` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, Python "
        f"{platform.python_version()}); mean ± sd over seeds. `oracle_names`: name accuracy had each cluster "
        "been named after its most frequent true label (the ceiling the clusters allow).",
        "",
        "| dataset | model | mode | markers | clustering | clusters | " + " | ".join(metrics) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(metrics),
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        key = (r["dataset"], r["model"], r["mode"], r.get("marker_method", "—"))
        groups.setdefault(key, []).append(r)
    for (dataset, model, mode, method), rows in groups.items():
        clustering = rows[0].get("clustering") or {}
        n_clusters = "/".join(str(r["clustering"]["n_clusters"]) for r in rows) if clustering else "—"
        cells = [mean_sd([r["metrics"][m] for r in rows]) for m in metrics]
        lines.append(
            f"| {dataset} | {model} | {mode} | {method} | {clustering.get('method', '—')} | {n_clusters} | "
            + " | ".join(cells)
            + " |"
        )
    for r in records:
        if r["model"] == "nact" and r["mode"] == "all" and r["seed"] == records[0]["seed"]:
            lines += [
                "",
                f"### {r['dataset']}, seed {r['seed']}, {r['marker_method']} markers",
                "",
                "| cluster | cells | name | score | matched markers | top attention genes |",
                "|---|---|---|---|---|---|",
            ]
            for c in r["clusters"]:
                lines.append(
                    f"| {c['cluster']} | {c['n_cells']} | {c['name']} | {c['score']} | {c['matched']} | {c['top_genes']} |"
                )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed and a small Splat (smoke test)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch

    from cellzoo.fileio import write_json, write_text

    # small networks: one intra-op thread is as fast and does not fight other jobs for the cores
    torch.set_num_threads(args.threads)

    datasets = DATASETS
    seeds = args.seeds
    if args.quick:
        seeds = [0]
        datasets = {"splat": {"params": {**SPLAT, "n_cells": 300, "n_genes": 100}, "label_key": "group"}}
    command = "python benchmarks/discover.py" + (" --quick" if args.quick else "")
    if seeds != [0, 1, 2] and not args.quick:
        command += " --seeds " + " ".join(map(str, seeds))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        records = run(seeds, datasets, Path(tmp))
    from cellzoo_nact.clustering import leiden_available

    payload = {
        "command": command,
        "seeds": seeds,
        "datasets": {k: v["params"] for k, v in datasets.items()},
        "leiden_available": leiden_available(),
        "seconds": round(time.perf_counter() - start, 1),
        "records": records,
    }
    write_json(args.out / "results.json", payload)
    write_text(args.out / "results.md", markdown(records, command))
    print(json.dumps({"seconds": payload["seconds"], "out": str(args.out)}))


if __name__ == "__main__":
    main()
