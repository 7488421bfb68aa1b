"""Loss weightings on ACTIVA's two loss groups: generation metrics of ACTIVA trained with each weighting.

The second half of the weighting benchmark (the first, ``benchmarks/weighting.py``, is the sparse
autoencoder on digits). ACTIVA (an introspective VAE; ``plugins/activa``) is trained on one Splat
simulation with every registered loss weighting (``cellzoo.list_loss_weightings()``) as its
``loss_weighting`` and with none (ACTIVA's own fixed weights), and the generated cells are scored the
way the ``generate`` leaderboard scores them.

**What the weighting weighs.** ACTIVA's introspective updates combine two groups through
``cellzoo.training.WeightedLoss(weighting, 2, initial=(alpha_2, alpha_1))``
(``plugins/activa/src/cellzoo_activa/model.py``, ``_weighted_loss`` and ``introspective_step``):

* encoder: ``L_E = w_data · (L_rec + L_CT) + w_adv · L_margin`` with
  ``L_margin = KL(x) + ½·w_neg·([m − KL(Enc(x_r))]⁺ + [m − KL(Enc(x_p))]⁺)``;
* decoder: ``L_D = w_data · (L_rec + L_CT) + w_adv · ½·(KL(Enc'(x_r)) + KL(Enc'(x_p)))`` — the same two
  weights, the second on the adversarial term (IntroVAE's generator step, ACTIVA's default);
* the weighting sees the per-step values of ``[L_rec + L_CT, L_margin]`` and its weights are recomputed
  once per introspective epoch from the per-epoch means (``WeightedLoss.update``), as "the first ACTIVA
  used loss-weighted SoftAdapt on its two loss groups once per epoch" (reference notes, §3.2 and §6);
  the classifier (epochs 1–4) and VAE warm-up (epochs 5–9) phases are not weighted;
* ``initial=(alpha_2, alpha_1) = (0.05, 1)``: ACTIVA's default weights stay in force until the
  weighting has seen ``window`` epochs (SoftAdapt: 5 introspective epochs, so from epoch 15 of 40 on;
  ``equal``: 2, so equal weights from the 3rd introspective epoch on). ``fixed`` and ``uncertainty``
  combine the losses themselves (their ``combine``), so ``initial`` does not apply to them: ``fixed``
  uses its registered default ``(1, 1)`` from the first step (ACTIVA's ``loss_weighting`` is a name
  only, so no other ``fixed`` weights can be asked for; ``fixed`` at ``(0.05, 1)`` would be the
  control itself), ``uncertainty`` starts at ``exp(−0) = (1, 1)`` and learns its log-variances with the
  encoder's Adam (lr 2e-4).

**Control.** ``default`` (``loss_weighting=None``: fixed ``(w_data, w_adv) = (α2, α1) = (0.05, 1)``,
the reference's weights) is the control: it is ACTIVA as published and as the leaderboard runs it,
so "does a weighting help ACTIVA" is a comparison with it. The registry's ``equal`` control means
``(1, 1)`` here — a 20× larger weight on the data group than ACTIVA's default — so it is a
treatment in this benchmark, not a neutral baseline; it is run and reported beside the others
(and is nearly the same as ``fixed``'s default ``(1, 1)``, which differs only in the first two
introspective epochs).

**Data and scoring.** ``cellzoo.get_dataset("splat", n_cells, n_genes, n_groups=5, de_prob=0.1,
de_fac_loc=0.3, seed=0)`` (the simulation of ``benchmarks/generate-splat.toml``, smaller), labels
``group``; the harness's stratified 20 % hold-out (split seed 0, the same for every model seed), half
of it the reference set the metrics score against, the other half the ``real_cells`` control — as
``cellzoo.bench.runner.generated_run``. ACTIVA runs with its defaults (lr 2e-4, batch 128, m 110,
num_cf 5, num_vae 10) except ``epochs`` and ``target_sum`` = 500 (≈ 1 count per gene over 500
genes, the per-gene scale of the paper's 20,000 over ~17,800 genes, as ``generate-splat.toml``
explains). The cells are generated as the leaderboard does (``cellzoo.tasks.GENERATE.output``:
per cell type in the reference's proportions, ACTIVA's classifier-guided rejection sampling, sample
seed = model seed; a type it cannot produce within its draw bound is missing) and, as a second
view, unconditionally (``model.sample(n)``). Every scalar metric of the ``generate`` task
(``cellzoo.genmetrics.SCALARS``): log1p-CP10k, 30 PCs fitted on the real *training* cells,
random-forest two-sample AUC (0.5 ideal), RBF MMD², energy and Wasserstein distances on the PCs,
gene-mean / variance / zero-fraction correlations, gene–gene correlation distance, CV r².
The controls ``real_cells``, ``independent_genes`` and ``shuffled_genes`` are scored once.

Seeds change the model's initialisation, shuffling and sampling; data and split are fixed. Runs are
ordered seed by seed (every weighting for seed 0, then seed 1, ...), one torch thread; CPU time and
``os.getloadavg()`` before and after each fit are recorded (the machine is shared).

    python benchmarks/weighting_activa.py            # 7 arms × 3 seeds, 4,000 × 500, 40 epochs (≈ 35 minutes on 2 shared cores)
    python benchmarks/weighting_activa.py --smoke --out /tmp/wa   # smoke test, ≈ 2 minutes

Writes ``benchmarks/results/weighting_activa/weighting_activa.json`` and ``weighting_activa.md``
(and ``weighting_activa.partial.json`` while running, removed at the end; ``--resume`` reuses its finished runs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "weighting_activa"
LABEL_KEY = "group"
#: the Splat simulation of ``benchmarks/generate-splat.toml`` (there at 10,000 cells)
SPLAT = {"n_groups": 5, "de_prob": 0.1, "de_fac_loc": 0.3, "seed": 0}
SPLIT_SEED = 0
#: the arm without a loss weighting (ACTIVA's fixed α2, α1): the control
CONTROL = "default"
#: the metrics of the generate leaderboard's tables (benchmarks/generate-splat.toml), in its order
MAIN = (
    "classifier_auc",
    "mmd_rbf",
    "energy_distance",
    "wasserstein_1",
    "gene_mean_corr",
    "gene_var_corr",
    "gene_corr_distance",
    "cv_r2",
)
#: metrics shown for the unconditional samples
SHORT = ("classifier_auc", "mmd_rbf", "energy_distance", "gene_mean_corr", "gene_var_corr")


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- data, split, scoring ------------------------------------------------------------------------


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
        "training": adata[split.train].copy(),
        "reference": reference,
        "other": other,
        "n_train": len(split.train),
        "n_reference": int(reference.n_obs),
        "n_other": int(other.n_obs),
        "split_hash": split.hash,
    }


def score(reference, generated) -> dict[str, float]:
    from cellzoo import genmetrics

    # genmetrics caches the shared space under id(prediction): a new sample can get the id of one that was
    # freed and would then be scored as the old one; clear the cache for every new sample
    genmetrics._CACHE.clear()
    return {name: float(fn(reference, generated)) for name, fn in genmetrics.SCALARS.items()}


def generate_like_leaderboard(model, data: dict[str, Any], seed: int):
    from cellzoo.tasks import GENERATE

    return GENERATE.output(model, data["reference"], label_key="cell_type", solution=data["other"], seed=seed)


def controls(data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The controls of the generate leaderboard, scored once (they do not depend on the model seed)."""
    import cellzoo

    out = {}
    for name in ("real_cells", "independent_genes", "shuffled_genes"):
        model = cellzoo.create_model(name).fit(data["training"], LABEL_KEY)
        out[name] = score(data["reference"], generate_like_leaderboard(model, data, 0))
    return out


# -- one ACTIVA run --------------------------------------------------------------------------------


def weights_in_force(record: dict[str, Any], weighting: str | None, cfg) -> list[list[float]]:
    """``(w_data, w_adv)`` in force during each introspective epoch.

    ``weights_trace[e]`` are ``WeightedLoss.current`` after ``e`` updates; a table weighting (SoftAdapt,
    equal) uses ``trace[e-1]`` during introspective epoch ``e``. ``fixed`` and ``uncertainty`` combine the
    losses themselves: ``fixed`` uses its configured weights throughout (the trace's first entries show
    ACTIVA's α, which are not applied), ``uncertainty``'s ``exp(−s)`` move within an epoch and are
    taken at the end of it (``trace[e]``).
    """
    n_intro = int(record["phases"]["introspective"])
    trace = [list(map(float, w)) for w in record.get("weights_trace") or []]
    if weighting is None:
        return [[float(cfg.alpha_2), float(cfg.alpha_1)]] * n_intro
    if weighting == "fixed":
        from cellzoo import create_loss_weighting

        return [list(map(float, create_loss_weighting("fixed").config.weights))] * n_intro
    if weighting == "uncertainty":
        return trace[1 : n_intro + 1]
    return trace[:n_intro]


def train_one(arm: str, seed: int, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    import cellzoo

    weighting = None if arm == CONTROL else arm
    config = {
        "epochs": args.epochs,
        "target_sum": args.target_sum,
        "seed": seed,
        "device": "cpu",
        "loss_weighting": weighting,
    }
    model = cellzoo.create_model("activa", **config)
    load_before = load_avg()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model.fit(data["training"], LABEL_KEY)
    fit_wall, fit_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    load_after = load_avg()
    record = model.training_record
    start = time.perf_counter()
    guided = generate_like_leaderboard(model, data, seed)
    sample_seconds = time.perf_counter() - start
    meta = guided.uns.get("cellzoo", {})
    unconditional = model.sample(data["n_reference"], seed=seed)
    metrics = score(data["reference"], guided)
    metrics_unconditional = score(data["reference"], unconditional)
    forced = weights_in_force(record, weighting, model.config)
    ratio = [w[1] / max(w[0], 1e-300) for w in forced]
    intro = [h for h in record["history"] if h["phase"] == "introspective"]
    last = intro[-1] if intro else record["history"][-1]
    return {
        "arm": arm,
        "seed": seed,
        "config": config,
        "metrics": metrics,
        "metrics_unconditional": metrics_unconditional,
        "generated_cells": int(guided.n_obs),
        "acceptance_rate": meta.get("acceptance_rate"),
        "types_not_generated": sorted(meta.get("types_not_generated", {}) or {}),
        "weights_in_force": forced,
        "weights_trace": record.get("weights_trace"),
        "final_weights": forced[-1] if forced else None,
        "adv_to_data_weight_ratio": float(np.exp(np.mean(np.log(np.maximum(ratio, 1e-300))))) if ratio else None,
        "last_epoch_losses": {k: last[k] for k in ("rec", "ct", "kl", "kl_rec", "kl_fake", "margin") if k in last},
        "train_seconds": float(record["seconds"]),
        "fit_wall_seconds": fit_wall,
        "fit_cpu_seconds": fit_cpu,
        "sample_seconds": sample_seconds,
        "load_before": load_before,
        "load_after": load_after,
    }


# -- summary ---------------------------------------------------------------------------------------


def weight_stats(forced: list[list[float]]) -> dict[str, float]:
    """The data group's share ``w_data / (w_data + w_adv)`` averaged over the introspective epochs, and the
    share of epochs whose weights are saturated (the smaller weight below 1 % of the larger: one group off).

    The share, not the scale: Adam is nearly invariant to a constant factor on the whole loss, so
    ``(1, 1)`` and ``(0.5, 0.5)`` train alike; ACTIVA's default ``(0.05, 1)`` is a share of 0.048.
    """
    w = np.asarray(forced, dtype=float).reshape(-1, 2)
    if not len(w):
        return {"data_share": float("nan"), "saturated_epochs": float("nan")}
    share = w[:, 0] / np.maximum(w.sum(axis=1), 1e-300)
    saturated = w.min(axis=1) < 0.01 * w.max(axis=1)
    return {"data_share": float(share.mean()), "saturated_epochs": float(saturated.mean())}


def mean_std(values: list[float]) -> list[float] | None:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not len(arr):
        return None
    return [float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0]


def summarise(runs: list[dict], arms: list[str]) -> list[dict]:
    """Per arm: mean ± sd over seeds of every metric, and of its paired difference from the control."""
    control = {r["seed"]: r for r in runs if r["arm"] == CONTROL}
    rows = []
    for arm in arms:
        group = [r for r in runs if r["arm"] == arm]
        if not group:
            continue
        row: dict[str, Any] = {"arm": arm, "n_seeds": len(group), "seeds": [r["seed"] for r in group]}
        for view in ("metrics", "metrics_unconditional"):
            row[view] = {k: mean_std([r[view][k] for r in group]) for k in group[0][view]}
            paired = [(r, control[r["seed"]]) for r in group if r["seed"] in control]
            row[f"{view}_minus_control"] = {
                k: mean_std([r[view][k] - c[view][k] for r, c in paired]) for k in group[0][view]
            }
        row["adv_to_data_weight_ratio"] = mean_std([r["adv_to_data_weight_ratio"] for r in group])
        stats = [weight_stats(r["weights_in_force"]) for r in group]
        row["data_share"] = mean_std([st["data_share"] for st in stats])
        row["saturated_epochs"] = mean_std([st["saturated_epochs"] for st in stats])
        finals = [r["final_weights"] for r in group if r["final_weights"]]
        row["final_weights"] = np.mean(finals, axis=0).tolist() if finals else None
        row["last_epoch_losses"] = {
            k: mean_std([r["last_epoch_losses"][k] for r in group]) for k in ("rec", "ct", "margin")
        }
        row["types_not_generated"] = sum(len(r["types_not_generated"]) for r in group)
        row["train_seconds"] = float(np.mean([r["train_seconds"] for r in group]))
        row["fit_cpu_seconds"] = float(np.mean([r["fit_cpu_seconds"] for r in group]))
        rows.append(row)
    return rows


def markdown(rows: list[dict], controls_: dict[str, dict[str, float]], meta: dict) -> str:
    def pm(value, digits=3):
        return "—" if value is None else f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"

    def delta(value, digits=3):
        return "—" if value is None else f"{value[0]:+.{digits}f} ± {value[1]:.{digits}f}"

    head = "| weighting | " + " | ".join(MAIN) + " |"
    rule = "|---|" + "---|" * len(MAIN)
    lines = [
        "# Loss weightings on ACTIVA's two loss groups: generation metrics",
        "",
        f"Generated by `{meta['command']}` ({meta['total_seconds'] / 60:.1f} min, {meta['platform']}, "
        f"torch {meta['torch']}; load average {meta['load_start'][0]:.1f} at the start, "
        f"{meta['load_end'][0]:.1f} at the end).",
        "",
        f"ACTIVA, {meta['epochs']} epochs (classifier 1–4, VAE warm-up 5–9, introspective 10–{meta['epochs']}), "
        f"target_sum {meta['target_sum']:g}, otherwise its defaults, on Splat {meta['data']['n_cells']} cells × "
        f"{meta['data']['n_genes']} genes, 5 groups ({meta['n_train']} training cells; scored against "
        f"{meta['n_reference']} held-out cells, another {meta['n_other']} are the `real_cells` control); "
        f"seeds {meta['seeds']}, mean ± sd over seeds. The weighting re-weights [L_rec + L_CT, L_margin] "
        "(the decoder: [L_rec + L_CT, adversarial KL]) once per introspective epoch, starting from ACTIVA's "
        "(α2, α1) = (0.05, 1); see the module docstring of `benchmarks/weighting_activa.py` for the details. "
        f"**Control: `{CONTROL}`** (no weighting: ACTIVA's fixed (0.05, 1)). `equal` and `fixed` both mean "
        "(1, 1) here (a 20× larger weight on the data group), so they are treatments, not the control.",
        "",
        "Cells generated as the `generate` leaderboard does (per type, classifier-guided). Metrics "
        "(`cellzoo.genmetrics`): classifier_auc — random-forest real-vs-generated AUC on held-out cells "
        "(0.5 ideal, lower better); mmd_rbf, energy_distance, wasserstein_1 on the 30 PCs of the training cells "
        "(lower better); gene_mean_corr, gene_var_corr (higher better); gene_corr_distance (lower better); cv_r2 "
        "(higher better).",
        "",
        "## Generation metrics",
        "",
        head,
        rule,
    ]
    for r in rows:
        lines.append(f"| {r['arm']} | " + " | ".join(pm(r["metrics"][k]) for k in MAIN) + " |")
    for name, values in controls_.items():
        lines.append(f"| *{name} (control)* | " + " | ".join(f"{values[k]:.3f}" for k in MAIN) + " |")
    lines += [
        "",
        f"## Difference from the control (`{CONTROL}`), paired by seed",
        "",
        "Mean ± sd over seeds of (weighting − control) of the same seed. Better is negative for "
        "classifier_auc, the distances and gene_corr_distance, positive for the correlations and cv_r2.",
        "",
        head,
        rule,
    ]
    for r in rows:
        if r["arm"] != CONTROL:
            lines.append(f"| {r['arm']} | " + " | ".join(delta(r["metrics_minus_control"][k]) for k in MAIN) + " |")
    lines += [
        "",
        "## Unconditional samples (`model.sample(n)`), the same models",
        "",
        "| weighting | " + " | ".join(SHORT) + " | Δ classifier_auc | Δ gene_mean_corr |",
        "|---|" + "---|" * (len(SHORT) + 2),
    ]
    for r in rows:
        d = r["metrics_unconditional_minus_control"]
        lines.append(
            f"| {r['arm']} | "
            + " | ".join(pm(r["metrics_unconditional"][k]) for k in SHORT)
            + f" | {delta(d['classifier_auc'])} | {delta(d['gene_mean_corr'])} |"
        )
    lines += [
        "",
        "## Weights and losses",
        "",
        "Data share: w_data / (w_data + w_adv) of the weights in force, averaged over the introspective epochs "
        "(ACTIVA's default 0.05 / 1.05 = 0.048; the share, not the scale, matters under Adam). Saturated: share of "
        "the introspective epochs in which one weight is below 1 % of the other (one group switched off). "
        "w_adv / w_data: geometric mean over the introspective epochs of the ratio of the weights in force "
        "(ACTIVA's default: 1 / 0.05 = 20). Final weights: (w_data, w_adv) of the last epoch. Losses: means "
        "over the last epoch (L_rec = Σ_genes squared error per cell at target_sum scale, L_CT the ACTINN "
        "logit consistency, L_margin). Types missing: cell types guided sampling could not produce, summed "
        "over seeds (of 5 per seed).",
        "",
        "| weighting | data share | saturated | w_adv / w_data | final weights | L_rec | L_CT | L_margin "
        "| types missing | train s | CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["adv_to_data_weight_ratio"]
        lines.append(
            f"| {r['arm']} | {pm(r['data_share'], 2)} | {pm(r['saturated_epochs'], 2)} | {ratio[0]:.3g} | "
            + (", ".join(f"{w:.3g}" for w in r["final_weights"]) if r["final_weights"] else "—")
            + f" | {pm(r['last_epoch_losses']['rec'], 1)} | {pm(r['last_epoch_losses']['ct'], 2)} | "
            f"{pm(r['last_epoch_losses']['margin'], 1)} | {r['types_not_generated']} | {r['train_seconds']:.0f} | "
            f"{r['fit_cpu_seconds']:.0f} |"
        )
    if meta.get("notes"):
        lines += ["", "## Reading", "", meta["notes"]]
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--n-cells", type=int, default=4000)
    parser.add_argument("--n-genes", type=int, default=500)
    parser.add_argument("--target-sum", type=float, default=500.0, help="ACTIVA's per-cell total (see docstring)")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--weightings", nargs="+", default=None, help=f"arms (default: {CONTROL} and every registered)")
    parser.add_argument("--smoke", action="store_true", help="1 seed, 600 × 100, 16 epochs")
    parser.add_argument("--resume", action="store_true", help="reuse the finished runs of the partial file")
    parser.add_argument("--notes", type=Path, default=None, help="a Markdown paragraph appended as 'Reading'")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.epochs, args.n_cells, args.n_genes = [0], 16, 600, 100
        args.target_sum = float(args.n_genes)

    import torch

    import cellzoo

    torch.set_num_threads(args.threads)
    names = cellzoo.list_loss_weightings()
    arms = args.weightings or [CONTROL, *names]
    unknown = [a for a in arms if a != CONTROL and a not in names]
    if unknown:
        raise SystemExit(f"unknown loss weightings {unknown}; registered: {names}")
    if CONTROL not in arms:
        arms = [CONTROL, *arms]
    start = time.perf_counter()
    load_start = load_avg()
    data = prepare(args)
    ctrl = controls(data)
    for name, values in ctrl.items():
        print(f"control {name:18s} AUC {values['classifier_auc']:.3f}  gene-mean r {values['gene_mean_corr']:.3f}")
    settings = {k: getattr(args, k) for k in ("epochs", "n_cells", "n_genes", "target_sum", "test_fraction")}
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "weighting_activa.partial.json"
    runs: list[dict] = []
    if args.resume and partial.exists():
        saved = json.loads(partial.read_text(encoding="utf-8"))
        if saved.get("settings") == settings:
            runs = saved["runs"]
            print(f"resuming: {len(runs)} finished runs reused", flush=True)
    done = {(r["arm"], r["seed"]) for r in runs}
    for seed in args.seeds:
        for arm in arms:
            if (arm, seed) in done:
                continue
            run = train_one(arm, seed, data, args)
            runs.append(run)
            partial.write_text(json.dumps({"settings": settings, "runs": runs}) + "\n", encoding="utf-8")
            m = run["metrics"]
            print(
                f"seed {seed} {arm:24s} AUC {m['classifier_auc']:.3f}  MMD {m['mmd_rbf']:.4f}  "
                f"energy {m['energy_distance']:.3f}  gene-mean r {m['gene_mean_corr']:.3f}  "
                f"w_adv/w_data {run['adv_to_data_weight_ratio']:.3g}  fit {run['fit_wall_seconds']:.0f} s "
                f"(CPU {run['fit_cpu_seconds']:.0f} s)  load {run['load_after'][0]:.1f}",
                flush=True,
            )
    runs.sort(key=lambda r: (args.seeds.index(r["seed"]) if r["seed"] in args.seeds else 99, arms.index(r["arm"])))
    runs = [r for r in runs if r["seed"] in args.seeds and r["arm"] in arms]
    rows = summarise(runs, arms)
    meta = {
        "command": " ".join(["python benchmarks/weighting_activa.py", *(sys.argv[1:] if argv is None else argv)]),
        "total_seconds": time.perf_counter() - start,
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch thread(s)",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_start": load_start,
        "load_end": load_avg(),
        "seeds": args.seeds,
        "arms": arms,
        "control": CONTROL,
        "epochs": args.epochs,
        "target_sum": args.target_sum,
        "data": data["params"],
        "split": f"stratified hold-out {args.test_fraction:g} (split seed {SPLIT_SEED}), sha256 {data['split_hash']}",
        "n_train": data["n_train"],
        "n_reference": data["n_reference"],
        "n_other": data["n_other"],
        "activa_defaults": {
            k: getattr(cellzoo.create_model("activa").config, k)
            for k in ("lr", "batch_size", "m_plus", "w_neg", "alpha_1", "alpha_2", "num_cf", "num_vae")
        },
        "notes": args.notes.read_text(encoding="utf-8").strip() if args.notes else None,
    }
    result = {"meta": meta, "controls": ctrl, "summary": rows, "runs": runs}
    (args.out / "weighting_activa.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (args.out / "weighting_activa.md").write_text(markdown(rows, ctrl, meta), encoding="utf-8")
    partial.unlink(missing_ok=True)  # every run is in the result now
    print(markdown(rows, ctrl, meta))
    return result


if __name__ == "__main__":
    main()
