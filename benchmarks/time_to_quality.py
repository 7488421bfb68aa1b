"""Time to quality: wall-clock training seconds ACTIVA and scGAN need to reach the same classifier AUC.

ACTIVA's abstract claims it trains "up to 17 times faster" than scGAN (2.2 h vs 39.5 h on Brain
Small). This benchmark measures the same kind of ratio here, in one process, on the same data and
machine: both models are trained on one Splat simulation (``cellzoo.get_dataset("splat", ...)``)
and evaluated at checkpoints taken during training (the models' ``quality_trace`` hooks). At each
checkpoint the model samples as many cells as the reference set holds (``model.sample(n, seed=...)``,
unconditional for both) and they are scored the way the ``generate`` leaderboard scores them
(``cellzoo.genmetrics``): log1p-CP10k, projected on 30 principal components fitted on the real
*training* cells, then a random forest tells them from held-out real cells — the held-out ROC AUC
(``classifier_auc``, 0.5 = indistinguishable). The split is the harness's: a stratified 20 %
hold-out (split seed 0, fixed for every model seed), half of it the reference the metrics score
against, the other half the ``real_cells`` control (real vs real, the floor of the AUC).

* **checkpoint cadence** — the same for both models in *training seconds*: the hook is asked after
  every ACTIVA epoch and every ``--scgan-hook-every`` scGAN generator steps, and a checkpoint is
  scored when the training time has passed the next multiple of ``--every-seconds`` (and after the
  last epoch / step). ``seconds`` are the hooks' training time, which excludes the time spent in the
  hooks (sampling and scoring), so evaluation does not count against either model;
* **time to quality** — the training seconds of the first checkpoint whose AUC is below
  ``--threshold``; the **ratio** is scGAN's over ACTIVA's (> 1: ACTIVA is faster). When a model
  never gets below the threshold within its budget its time is only known to exceed its budget, and
  the ratio is reported as a bound (``≥`` when scGAN misses, ``≤`` when ACTIVA misses);
* **CPU seconds** — the process CPU time of the training (hooks excluded) is recorded next to the
  wall seconds, since the machine is shared: CPU / wall < 1 means training lost time to other jobs;
  the load averages (``os.getloadavg()``) before and after every fit are recorded too.

Models run one after the other, in alternating order from seed to seed (ACTIVA first for even
seeds), each with ``--threads`` torch threads; the model seed changes, the data and split do not.
ACTIVA uses ``target_sum`` = 500 (≈ 1 count per gene over 500 genes, the per-gene scale of 20,000
over the paper's ~17,800 genes; as in ``benchmarks/generate-splat.toml``) and its default (IntroVAE)
generator step; ``--activa-released`` adds a third arm with ``faithful_detach=True`` (the released
code's detached generator step). scGAN uses its defaults (library size 20,000, lr 1e-4 → 1e-5 over
the run); its learning-rate decay is spread over ``--scgan-steps``, so the budget changes its
schedule.

    python benchmarks/time_to_quality.py                     # 2 seeds, ≈ 35–40 minutes on 2 shared cores
    python benchmarks/time_to_quality.py --smoke --out /tmp/ttq   # smoke test, ≈ 1 minute

Writes ``benchmarks/results/time_to_quality/time_to_quality.json``, ``time_to_quality.md`` and
``time_to_quality.png`` (AUC against training seconds, one line per model and seed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "time_to_quality"
LABEL_KEY = "group"
#: the Splat simulation of ``benchmarks/generate-splat.toml`` (there at 10,000 cells)
SPLAT = {"n_groups": 5, "de_prob": 0.1, "de_fac_loc": 0.3, "seed": 0}
SPLIT_SEED = 0
#: metrics recorded at every checkpoint (``classifier_auc`` decides; the others are context)
METRICS = ("classifier_auc", "mmd_rbf", "gene_mean_corr", "gene_var_corr")
PAPER = {"activa_hours": 2.2, "scgan_hours": 39.5, "dataset": "Brain Small (20k mouse neurons)", "ratio": 39.5 / 2.2}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- data, split and reference cells --------------------------------------------------------------


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The dataset, the harness's stratified hold-out, the reference half and the real-cells half."""
    import cellzoo
    from cellzoo.bench import SplitRule
    from cellzoo.data.labels import labels_of
    from cellzoo.data.splits import make_splits
    from cellzoo.genmetrics import reference_cells

    params = {"n_cells": args.n_cells, "n_genes": args.n_genes, **SPLAT}
    adata = cellzoo.get_dataset("splat", **params)
    labels = labels_of(adata, LABEL_KEY)
    split = make_splits(labels, SplitRule(kind="holdout", test_fraction=args.test_fraction), SPLIT_SEED)[0]
    # as the harness's generated_run: a seeded permutation of the test cells, half reference, half control
    order = np.random.default_rng(SPLIT_SEED).permutation(len(split.test))
    half = len(order) // 2
    rows_ref, rows_other = np.sort(split.test[order[:half]]), np.sort(split.test[order[half:]])
    reference = reference_cells(adata, rows_ref, labels[rows_ref], split.train)
    other = reference_cells(adata, rows_other, labels[rows_other])
    return {
        "params": params,
        "adata": adata,
        "training": adata[split.train].copy(),
        "reference": reference,
        "other": other,
        "n_train": len(split.train),
        "n_reference": int(reference.n_obs),
        "n_other": int(other.n_obs),
    }


def score(reference, generated) -> dict[str, float]:
    from cellzoo import genmetrics

    # genmetrics caches the shared space under id(prediction): a new sample can get the id of one that was
    # freed, and would then be scored as the old one. Clear the cache for every new sample.
    genmetrics._CACHE.clear()
    return {name: float(getattr(genmetrics, name)(reference, generated)) for name in METRICS}


def controls(data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The AUC floor (real vs real) and the independent-genes control, once (they do not depend on the model seed)."""
    import cellzoo

    out = {"real_cells": score(data["reference"], data["other"])}
    indep = cellzoo.create_model("independent_genes").fit(data["training"], LABEL_KEY)
    out["independent_genes"] = score(data["reference"], indep.sample(data["n_reference"], seed=0))
    return out


# -- one model, traced ---------------------------------------------------------------------------


def arms(args: argparse.Namespace) -> dict[str, tuple[str, dict[str, Any], str]]:
    """Arm name → (registered model, config overrides, what the hook counts)."""
    out = {
        "activa": (
            "activa",
            {"epochs": args.activa_epochs, "target_sum": args.activa_target_sum, "checkpoint_every": 1},
            "epoch",
        ),
        "scgan": ("scgan", {"steps": args.scgan_steps, "checkpoint_every": args.scgan_hook_every}, "step"),
    }
    if args.activa_released:
        released = {**out["activa"][1], "faithful_detach": True}
        out["activa_released"] = ("activa", released, "epoch")
    return out


def train_traced(arm: str, spec: tuple[str, dict, str], seed: int, data: dict, args: argparse.Namespace) -> dict:
    """Fit one model with checkpoints every ``args.every_seconds`` of training time; the trace and timings."""
    import cellzoo

    name, overrides, unit = spec
    config = {**overrides, "seed": seed, "device": "cpu"}
    model = cellzoo.create_model(name, **config)
    last = int(config["epochs"] if unit == "epoch" else config["steps"])
    reference, n = data["reference"], data["n_reference"]
    trace: list[dict[str, Any]] = []
    hook = {"due": float(args.every_seconds), "wall": 0.0, "cpu": 0.0, "calls": 0}

    def quality_trace(count: int, seconds: float, m) -> None:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        hook["calls"] += 1
        try:
            if seconds < hook["due"] and count != last:
                return
            while hook["due"] <= seconds:
                hook["due"] += args.every_seconds
            # the cells sampled at checkpoint k are the same noise draws for every model (seed 10,000 + k)
            generated = m.sample(n, seed=10_000 + len(trace))
            values = score(reference, generated)
            row = {
                unit: int(count),
                "seconds": round(float(seconds), 3),
                # CPU time of the process spent training so far (hooks excluded)
                "cpu_seconds": round(time.process_time() - fit_cpu0 - hook["cpu"] - (time.process_time() - cpu0), 3),
                **{k: round(v, 5) for k, v in values.items()},
            }
            if unit == "epoch":
                row["phase"] = m.phase_of(count)
            trace.append(row)
            print(
                f"  {arm:16s} seed {seed} {unit} {count:5d}  {seconds:7.1f} s  AUC {values['classifier_auc']:.4f}  "
                f"gene-mean r {values['gene_mean_corr']:.3f}  load {load_avg()[0]:.2f}",
                flush=True,
            )
        finally:
            hook["wall"] += time.perf_counter() - wall0
            hook["cpu"] += time.process_time() - cpu0

    model.quality_trace = quality_trace
    load_before = load_avg()
    wall0 = time.perf_counter()
    fit_cpu0 = time.process_time()
    model.fit(data["training"], LABEL_KEY)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - fit_cpu0
    record = model.training_record or {}
    train_seconds = float(record.get("seconds", wall - hook["wall"]))
    return {
        "arm": arm,
        "model": name,
        "seed": seed,
        "config": config,
        "unit": unit,
        "budget": last,
        "train_seconds": train_seconds,
        "train_cpu_seconds": cpu - hook["cpu"],
        "fit_wall_seconds": wall,
        "hook_wall_seconds": hook["wall"],
        "hook_calls": hook["calls"],
        "load_before": load_before,
        "load_after": load_avg(),
        "trace": trace,
    }


# -- summary ---------------------------------------------------------------------------------------


def reach(run: dict, threshold: float) -> dict[str, Any]:
    """When ``run`` first got below ``threshold`` (None: never), and its best AUC."""
    trace = run["trace"]
    best = min(trace, key=lambda r: r["classifier_auc"])
    hit = next((r for r in trace if r["classifier_auc"] < threshold), None)
    out = {
        "reached": hit is not None,
        "seconds_to_threshold": None if hit is None else hit["seconds"],
        "cpu_seconds_to_threshold": None if hit is None else hit["cpu_seconds"],
        f"{run['unit']}_at_threshold": None if hit is None else hit[run["unit"]],
        "best_auc": best["classifier_auc"],
        "best_auc_seconds": best["seconds"],
        "final_auc": trace[-1]["classifier_auc"],
        "train_seconds": run["train_seconds"],
    }
    return out


def ratio(slow: dict, fast: dict, key: str = "seconds_to_threshold") -> dict[str, Any]:
    """scGAN's time over ACTIVA's: exact when both reached the threshold, else a bound (or undefined)."""
    budget_key = "train_seconds" if key == "seconds_to_threshold" else "train_cpu_seconds"
    if slow["reached"] and fast["reached"]:
        return {"kind": "=", "value": slow[key] / fast[key]}
    if fast["reached"]:  # scGAN missed: it needs more than its whole budget
        return {"kind": "≥", "value": slow[budget_key] / fast[key]}
    if slow["reached"]:  # ACTIVA missed
        return {"kind": "≤", "value": slow[key] / fast[budget_key]}
    return {"kind": "undefined", "value": None}


def summarise(runs: list[dict], threshold: float, baseline: str = "scgan") -> list[dict]:
    rows = []
    for seed in dict.fromkeys(r["seed"] for r in runs):
        by_arm = {r["arm"]: r for r in runs if r["seed"] == seed}
        reached = {}
        for arm, run in by_arm.items():
            info = reach(run, threshold)
            info["train_cpu_seconds"] = run["train_cpu_seconds"]
            reached[arm] = info
        row = {"seed": seed, "threshold": threshold, "arms": reached, "ratios": {}}
        for arm in by_arm:
            if arm != baseline and baseline in by_arm:
                row["ratios"][f"{baseline}/{arm}"] = {
                    "wall": ratio(reached[baseline], reached[arm]),
                    "cpu": ratio(reached[baseline], reached[arm], "cpu_seconds_to_threshold"),
                }
        rows.append(row)
    return rows


# -- outputs ----------------------------------------------------------------------------------------


def plot(runs: list[dict], threshold: float, meta: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"activa": "tab:blue", "scgan": "tab:red", "activa_released": "tab:green"}
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(8.5, 5))
    seeds = list(dict.fromkeys(r["seed"] for r in runs))
    for run in runs:
        xs = [r["seconds"] for r in run["trace"]]
        ys = [r["classifier_auc"] for r in run["trace"]]
        ax.plot(xs, ys, styles[seeds.index(run["seed"]) % len(styles)], marker=".", markersize=4,
                color=colours.get(run["arm"], "black"), label=f"{run['arm']} (seed {run['seed']})")  # fmt: skip
    ax.axhline(threshold, color="grey", lw=1, ls="--", label=f"threshold AUC {threshold:g}")
    floor = meta["controls"]["real_cells"]["classifier_auc"]
    ax.axhline(floor, color="black", lw=0.8, ls=":", label=f"real vs real {floor:.3f}")
    indep = meta["controls"]["independent_genes"]["classifier_auc"]
    ax.axhline(indep, color="tab:purple", lw=0.8, ls=":", label=f"independent genes {indep:.3f}")
    ax.set_xlabel("training seconds (checkpoint time excluded)")
    ax.set_ylabel("classifier AUC, generated vs held-out real (0.5 ideal)")
    d = meta["data"]
    ax.set_title(
        f"Time to quality: Splat {d['n_cells']:,} cells × {d['n_genes']} genes, {meta['threads']} torch thread(s)"
    )
    ax.set_ylim(min(0.45, floor - 0.02), 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


def fmt_ratio(r: dict) -> str:
    if r["value"] is None:
        return "undefined (neither reached)"
    return f"{r['value']:.1f}×" if r["kind"] == "=" else f"{r['kind']} {r['value']:.1f}×"


def markdown(rows: list[dict], runs: list[dict], meta: dict, sweep: dict[str, list[dict]]) -> str:
    d, c = meta["data"], meta["controls"]
    thr = meta["threshold"]
    lines = [
        "# Time to quality: ACTIVA vs scGAN",
        "",
        f"Generated by `{meta['command']}` ({meta['total_seconds'] / 60:.1f} min, {meta['platform']}, "
        f"torch {meta['torch']}, {meta['threads']} torch thread(s)). Load average (1/5/15 min) before "
        f"{meta['load_start']}, after {meta['load_end']}.",
        "",
        f"Splat {d['n_cells']:,} cells × {d['n_genes']} genes, {SPLAT['n_groups']} groups (de_prob "
        f"{SPLAT['de_prob']}, de_fac_loc {SPLAT['de_fac_loc']}, simulation seed 0); stratified {meta['test_fraction']:g} "
        f"hold-out (split seed {SPLIT_SEED}): {d['n_train']:,} training cells, {d['n_reference']:,} reference cells "
        f"scored against, {d['n_other']:,} for the real-cells control. At every checkpoint {d['n_reference']:,} cells "
        "are sampled unconditionally and scored as the `generate` leaderboard scores them (log1p-CP10k, PCA fitted on "
        "the training cells, random-forest `classifier_auc`, 0.5 ideal). Checkpoints every "
        f"{meta['every_seconds']:g} s of training time (hooks excluded). Budgets: ACTIVA {meta['activa_epochs']} "
        f"epochs (target_sum {meta['activa_target_sum']:g}), scGAN {meta['scgan_steps']} generator steps; seeds "
        f"{meta['seeds']}.",
        "",
        f"**Threshold: AUC < {thr:g}.** {meta['threshold_reason']}",
        "",
        f"Controls: real vs real AUC {c['real_cells']['classifier_auc']:.3f}, independent genes "
        f"{c['independent_genes']['classifier_auc']:.3f}.",
        "",
        f"Paper (ACTIVA abstract): {PAPER['activa_hours']} h vs {PAPER['scgan_hours']} h on {PAPER['dataset']}, "
        f"≈ {PAPER['ratio']:.1f}× — full training runs on a GPU, not time to a fixed quality.",
        "",
        "## Time to threshold",
        "",
        "| seed | model | reached | training s to threshold | CPU s to threshold | best AUC (at s) | final AUC "
        "| budget s | CPU / wall |",
        "|---:|:---|:---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for arm, a in row["arms"].items():
            cpu_share = a["train_cpu_seconds"] / a["train_seconds"] if a["train_seconds"] else float("nan")
            lines.append(
                f"| {row['seed']} | {arm} | {'yes' if a['reached'] else 'no'} | {fmt_s(a['seconds_to_threshold'])} | "
                f"{fmt_s(a['cpu_seconds_to_threshold'])} | {a['best_auc']:.4f} ({a['best_auc_seconds']:.0f} s) | "
                f"{a['final_auc']:.4f} | {a['train_seconds']:.0f} | {cpu_share:.2f} |"
            )
    lines += ["", "| seed | ratio | wall seconds | CPU seconds |", "|---:|:---|---:|---:|"]
    for row in rows:
        for name, r in row["ratios"].items():
            lines.append(f"| {row['seed']} | {name} | {fmt_ratio(r['wall'])} | {fmt_ratio(r['cpu'])} |")
    lines += [
        "",
        "`≥`: scGAN did not get below the threshold within its budget, so the ratio uses its whole budget and is a "
        "lower bound; `≤`: ACTIVA did not, an upper bound.",
        "",
        "![AUC against training seconds](time_to_quality.png)",
        "",
        "## The ratio at other thresholds",
        "",
        "| threshold | seed | ACTIVA s to threshold | scGAN s to threshold | scGAN / ACTIVA (wall) | (CPU) |",
        "|---:|---:|---:|---:|:---|:---|",
        *[
            f"| {t} | {row['seed']} | {fmt_s(row['arms'].get('activa', {}).get('seconds_to_threshold'))} | "
            f"{fmt_s(row['arms'].get('scgan', {}).get('seconds_to_threshold'))} | "
            f"{fmt_ratio(row['ratios']['scgan/activa']['wall'])} | {fmt_ratio(row['ratios']['scgan/activa']['cpu'])} |"
            for t, t_rows in sweep.items()
            for row in t_rows
            if "scgan/activa" in row["ratios"]
        ],
        "",
        "## Fits",
        "",
        "| seed | model | budget | training s | CPU s | hook s | checkpoints | load before | load after |",
        "|---:|:---|---:|---:|---:|---:|---:|:---|:---|",
    ]
    for run in runs:
        lines.append(
            f"| {run['seed']} | {run['arm']} | {run['budget']} {run['unit']}s | {run['train_seconds']:.0f} | "
            f"{run['train_cpu_seconds']:.0f} | {run['hook_wall_seconds']:.0f} | {len(run['trace'])} | "
            f"{run['load_before']} | {run['load_after']} |"
        )
    lines += ["", "## Checkpoints", ""]
    for run in runs:
        unit = run["unit"]
        lines += [
            f"### {run['arm']}, seed {run['seed']}",
            "",
            f"| {unit} | training s | CPU s | AUC | MMD² | gene-mean r | gene-var r |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in run["trace"]:
            lines.append(
                f"| {r[unit]} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['classifier_auc']:.4f} | "
                f"{r['mmd_rbf']:.4f} | {r['gene_mean_corr']:.3f} | {r['gene_var_corr']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n-cells", type=int, default=6000)
    parser.add_argument("--n-genes", type=int, default=500)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--threshold", type=float, default=0.99, help="classifier AUC to get below")
    parser.add_argument("--sweep", type=float, nargs="+", default=[0.999, 0.995, 0.99, 0.98, 0.95, 0.9],
                        help="other thresholds the ratio is also reported at")  # fmt: skip
    parser.add_argument("--every-seconds", type=float, default=10.0, help="checkpoint cadence in training seconds")
    parser.add_argument("--activa-epochs", type=int, default=60)
    parser.add_argument("--activa-target-sum", type=float, default=500.0)
    parser.add_argument("--activa-released", action="store_true", help="add ACTIVA with faithful_detach=True")
    parser.add_argument("--scgan-steps", type=int, default=3000)
    parser.add_argument("--scgan-hook-every", type=int, default=5, help="scGAN steps between hook calls")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--smoke", action="store_true", help="tiny data and budgets: checks that everything runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.n_cells, args.activa_epochs, args.scgan_steps = [0], 1000, 12, 60
        args.every_seconds = 2.0

    import torch

    torch.set_num_threads(args.threads)
    load_start = load_avg()
    start = time.perf_counter()
    data = prepare(args)
    ctrl = controls(data)
    print(f"controls: {json.dumps(ctrl)}", flush=True)
    plan = arms(args)
    runs = []
    for i, seed in enumerate(args.seeds):
        order = list(plan) if i % 2 == 0 else list(reversed(plan))
        for arm in order:
            runs.append(train_traced(arm, plan[arm], seed, data, args))
    rows = summarise(runs, args.threshold)
    sweep = {str(t): summarise(runs, t) for t in args.sweep}
    meta = {
        "command": " ".join(["python benchmarks/time_to_quality.py", *(sys.argv[1:] if argv is None else argv)]),
        "total_seconds": time.perf_counter() - start,
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": args.threads,
        "load_start": load_start,
        "load_end": load_avg(),
        "seeds": args.seeds,
        "threshold": args.threshold,
        "sweep": args.sweep,
        "threshold_reason": THRESHOLD_REASON,
        "every_seconds": args.every_seconds,
        "activa_epochs": args.activa_epochs,
        "activa_target_sum": args.activa_target_sum,
        "scgan_steps": args.scgan_steps,
        "scgan_hook_every": args.scgan_hook_every,
        "test_fraction": args.test_fraction,
        "split_seed": SPLIT_SEED,
        "data": {
            "dataset": "splat",
            **data["params"],
            "n_train": data["n_train"],
            "n_reference": data["n_reference"],
            "n_other": data["n_other"],
        },
        "controls": ctrl,
        "metrics": list(METRICS),
        "paper": PAPER,
        "packages": _versions(),
    }
    result = {"meta": meta, "summary": rows, "sweep": sweep, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "time_to_quality.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (args.out / "time_to_quality.md").write_text(markdown(rows, runs, meta, sweep), encoding="utf-8")
    plot(runs, args.threshold, meta, args.out / "time_to_quality.png")
    print(markdown(rows, runs, meta, sweep).split("## Fits")[0])
    return result


#: why the default threshold is what it is (written into the results)
THRESHOLD_REASON = (
    "Fixed before the first full run: the `generate` leaderboard's generators scored AUC 0.999–1.000 at comparable "
    "budgets on 2 cores, so a threshold far below that would likely be reached by neither model. The sweep below "
    "gives the ratio at every threshold of `--sweep`, so the conclusion does not hang on this one choice."
)


def _cpu_model() -> str:
    from cellzoo.bench.environment import cpu_model

    return cpu_model()


def _versions() -> dict[str, str | None]:
    from cellzoo.bench.environment import package_version

    names = ("cellzoo", "cellzoo-activa", "cellzoo-scgan", "numpy", "scikit-learn", "anndata", "torch")
    return {name: package_version(name) for name in names}


if __name__ == "__main__":
    main()
