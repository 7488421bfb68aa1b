"""Rare-population augmentation: does adding generated cells of a rare type help ACTINN find it?

The experiment of the ACTIVA paper (its claim: > 45 % better F1 than no augmentation on its rarest
case, 4 % better than cscGAN), run here on one Splat simulation (``cellzoo.get_dataset("splat", ...)``):

1. the harness's stratified 20 % hold-out (split seed 0, the same for every seed) gives the training
   cells and the held-out real cells every classifier is scored on (all types, full proportions);
2. for every ``--fractions`` value f and seed, the rare type (``--rare``) is down-sampled in the
   training set to ``round(f · n)`` of its ``n`` training cells (a seeded draw; at least 2 kept);
3. each arm adds ``n − round(f · n)`` cells of the rare type to the down-sampled training set, so
   the type is back at its original count, and ACTINN is trained on the result:

   * ``none`` — nothing added (the control);
   * ``oversample`` — the kept rare cells drawn again with replacement (random oversampling);
   * ``cscgan`` / ``activa`` — a conditional generator is trained on the down-sampled training set
     (every type, labels ``group``) and asked for that many cells of the rare type
     (``model.sample(n, cell_type=rare, seed=seed)``; ACTIVA samples by rejection through its
     conditioner, and an arm whose conditioner does not accept enough draws is recorded as failed);
   * ``activa_released`` — ACTIVA with ``faithful_detach=True``, the released code's generator step
     (its decoder never gets the adversarial gradient; ``plugins/activa/README.md``), not run by default;
   * ``full`` — the rare type not down-sampled (the ceiling; one fit per seed);

4. the score is the F1 of the rare type on the held-out real cells (and macro F1 over all types),
   per fraction and seed; the improvement of an arm is its F1 over ``none``'s of the same seed.

Every matrix ACTINN sees is log1p(x / total · 10⁴): real cells are counts, generated cells are
non-negative library-normalised values (ACTIVA's at its ``target_sum``, scGAN's at 20,000), and ACTINN
rescales every cell to the same total before its log2, so the normalisation constant cancels
(``plugins/actinn/README.md``). Generators and ACTINN run with their defaults except the budgets:
ACTIVA ``--activa-epochs`` epochs with ``target_sum`` 500 (the per-gene scale of the paper, as in
``benchmarks/generate-splat.toml``), cscGAN ``--cscgan-steps`` generator steps. One torch thread each
(``--threads``); CPU time and load averages are recorded beside the wall seconds (the machine is shared).

    python benchmarks/augment_rare.py                            # 3 fractions × 2 seeds (≈ 45 minutes on 2 cores)
    python benchmarks/augment_rare.py --add --arms activa_released   # one more arm, added to those results
    python benchmarks/augment_rare.py --smoke --out /tmp/aug     # smoke test, ≈ 1 minute

Writes ``benchmarks/results/augment_rare/augment_rare.json`` and ``augment_rare.md``.
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

RESULTS = Path(__file__).resolve().parent / "results" / "augment_rare"
LABEL_KEY = "group"
SPLIT_SEED = 0
ARMS = ("none", "oversample", "cscgan", "activa", "activa_released")
PAPER = {
    "activa_vs_none": "> 45 % better rare-type F1 on the rarest case",
    "activa_vs_cscgan": "4 % better",
}


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def log1p_cp10k(X: Any) -> np.ndarray:
    """log1p(x / row total · 10⁴) of a dense or sparse matrix (zero rows stay zero)."""
    import scipy.sparse as sp

    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float64)
    totals = X.sum(axis=1, keepdims=True)
    totals[totals == 0] = 1.0
    return np.log1p(X / totals * 1e4).astype(np.float32)


def as_annotated(X: np.ndarray, labels: np.ndarray, genes) -> Any:
    import anndata
    import pandas as pd

    obs = pd.DataFrame({LABEL_KEY: pd.Categorical(labels.astype(str))}, index=[f"cell{i}" for i in range(len(labels))])
    adata = anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[str(g) for g in genes]))
    adata.uns["cellzoo"] = {"input_state": "log1p_norm", "target_sum": 1e4}
    return adata


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    import cellzoo
    from cellzoo.bench import SplitRule
    from cellzoo.data.labels import labels_of
    from cellzoo.data.splits import make_splits

    params = {"n_cells": args.n_cells, "n_genes": args.n_genes, "n_groups": args.n_groups,
              "de_prob": args.de_prob, "de_fac_loc": args.de_fac_loc, "seed": 0}  # fmt: skip
    adata = cellzoo.get_dataset("splat", **params)
    labels = np.asarray(labels_of(adata, LABEL_KEY)).astype(str)
    if args.rare not in set(labels):
        raise SystemExit(f"--rare {args.rare!r} is not a type of the simulation ({', '.join(sorted(set(labels)))})")
    split = make_splits(labels, SplitRule(kind="holdout", test_fraction=args.test_fraction), SPLIT_SEED)[0]
    train_rows = np.sort(split.train)
    return {
        "params": params,
        "adata": adata,
        "labels": labels,
        "genes": adata.var_names,
        "train_rows": train_rows,
        "train_labels": labels[train_rows],
        "test": as_annotated(log1p_cp10k(adata.X[np.sort(split.test)]), labels[np.sort(split.test)], adata.var_names),
    }


def downsample(data: dict, fraction: float, seed: int) -> tuple[np.ndarray, int, int]:
    """Training rows with the rare type cut to ``fraction``; how many rare cells were kept and removed."""
    labels = data["train_labels"]
    rare = np.flatnonzero(labels == data["rare"])
    keep_n = max(2, round(fraction * len(rare)))
    rng = np.random.default_rng(1_000 + seed)
    kept_rare = np.sort(rng.choice(rare, size=keep_n, replace=False))
    rows = np.sort(np.concatenate([np.flatnonzero(labels != data["rare"]), kept_rare]))
    return data["train_rows"][rows], keep_n, len(rare) - keep_n


def train_actinn(adata, seed: int, test, rare: str) -> dict[str, Any]:
    """Fit ACTINN on ``adata``; the F1 scores of its predictions on the held-out real cells."""
    import cellzoo
    from cellzoo import metrics

    model = cellzoo.create_model("actinn", seed=seed, device="cpu")
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(adata, LABEL_KEY)
    prediction = model.predict(test)
    y = test.obs[LABEL_KEY].to_numpy().astype(str)
    per_class = metrics.f1_per_class(y, prediction)
    out = {"rare_f1": per_class[rare], "macro_f1": metrics.f1_macro(y, prediction), "per_class": per_class}
    out["actinn_seconds"] = round(time.perf_counter() - t0, 2)
    out["actinn_cpu_seconds"] = round(time.process_time() - c0, 2)
    return out


def generated_cells(arm: str, training, n_add: int, seed: int, rare: str, args) -> tuple[np.ndarray | None, dict]:
    """``n_add`` cells of ``rare`` from a conditional generator fitted on ``training`` (counts)."""
    import cellzoo
    from cellzoo.errors import SamplingError

    if arm == "cscgan":
        name, config = "cscgan", {"steps": args.cscgan_steps}
    else:
        name, config = "activa", {"epochs": args.activa_epochs, "target_sum": 500.0}
        if arm == "activa_released":
            config["faithful_detach"] = True
    model = cellzoo.create_model(name, seed=seed, device="cpu", **config)
    info: dict[str, Any] = {"config": config, "load_before": load_avg()}
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(training, LABEL_KEY)
    info["fit_seconds"] = round(time.perf_counter() - t0, 2)
    info["fit_cpu_seconds"] = round(time.process_time() - c0, 2)
    info["load_after"] = load_avg()
    try:
        sample = model.sample(n_add, cell_type=rare, seed=seed)
    except SamplingError as exc:
        info["failed"] = str(exc)
        return None, info
    meta = sample.uns.get("cellzoo", {})
    if "acceptance_rate" in meta:
        info["acceptance_rate"] = round(float(meta["acceptance_rate"]), 5)
    return log1p_cp10k(sample.X), info


def run_fraction(data: dict, fraction: float, seed: int, args) -> list[dict[str, Any]]:
    rows, kept, n_add = downsample(data, fraction, seed)
    adata, rare, genes = data["adata"], data["rare"], data["genes"]
    labels = data["labels"]
    base_X = log1p_cp10k(adata.X[rows])
    base_y = labels[rows]
    training_counts = adata[rows].copy()
    out = []
    for arm in args.arms:
        record: dict[str, Any] = {"fraction": fraction, "seed": seed, "arm": arm, "rare_kept": kept, "added": n_add}
        if arm == "none":
            X, y = base_X, base_y
        elif arm == "oversample":
            rng = np.random.default_rng(2_000 + seed)
            rare_rows = np.flatnonzero(base_y == rare)
            extra = rng.choice(rare_rows, size=n_add, replace=True)
            X, y = np.vstack([base_X, base_X[extra]]), np.concatenate([base_y, base_y[extra]])
        else:
            cells, info = generated_cells(arm, training_counts, n_add, seed, rare, args)
            record["generator"] = info
            if cells is None:
                record["failed"] = info["failed"]
                print(f"  f={fraction:<5g} seed {seed} {arm:10s} FAILED: {info['failed'][:120]}", flush=True)
                out.append(record)
                continue
            X, y = np.vstack([base_X, cells]), np.concatenate([base_y, np.full(n_add, rare)])
        record.update(train_actinn(as_annotated(X, y, genes), seed, data["test"], rare))
        extra_s = f" (generator {record['generator']['fit_seconds']:.0f} s)" if "generator" in record else ""
        print(f"  f={fraction:<5g} seed {seed} {arm:10s} rare F1 {record['rare_f1']:.3f}  macro F1 "
              f"{record['macro_f1']:.3f}  ACTINN {record['actinn_seconds']:.0f} s{extra_s}", flush=True)  # fmt: skip
        out.append(record)
    return out


# -- summary ---------------------------------------------------------------------------------------


def mean_sd(values: list[float]) -> str:
    if not values:
        return "—"
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def summarise(records: list[dict], full: list[dict], args) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for f in args.fractions:
        row: dict[str, Any] = {}
        for arm in args.arms:
            runs = [r for r in records if r["fraction"] == f and r["arm"] == arm]
            ok = [r for r in runs if "rare_f1" in r]
            gains = []
            for r in ok:
                control = next((c for c in records if c["fraction"] == f and c["seed"] == r["seed"]
                                and c["arm"] == "none" and "rare_f1" in c), None)  # fmt: skip
                if control is not None and control["rare_f1"] > 0:
                    gains.append(100.0 * (r["rare_f1"] - control["rare_f1"]) / control["rare_f1"])
            row[arm] = {
                "rare_f1": [r["rare_f1"] for r in ok],
                "macro_f1": [r["macro_f1"] for r in ok],
                "gain_vs_none_pct": gains,
                "failed": len(runs) - len(ok),
            }
        act = {
            r["seed"]: r["rare_f1"] for r in records if r["fraction"] == f and r["arm"] == "activa" and "rare_f1" in r
        }
        csc = {
            r["seed"]: r["rare_f1"] for r in records if r["fraction"] == f and r["arm"] == "cscgan" and "rare_f1" in r
        }
        row["activa_vs_cscgan_pct"] = [100.0 * (act[s] - csc[s]) / csc[s] for s in act if s in csc and csc[s] > 0]
        table[str(f)] = row
    return {
        "by_fraction": table,
        "full": {"rare_f1": [r["rare_f1"] for r in full], "macro_f1": [r["macro_f1"] for r in full]},
    }


def markdown(result: dict[str, Any]) -> str:
    meta, summary = result["meta"], result["summary"]
    d = meta["data"]
    lines = [
        "# Rare-population augmentation: the rare type's F1 with generated cells",
        "",
        f"Generated by `python benchmarks/augment_rare.py{' ' + ' '.join(meta['argv']) if meta['argv'] else ''}` "
        f"({meta['minutes']:.1f} min, {meta['machine']}, {meta['threads']} torch thread(s), torch {meta['torch']}; "
        f"load average {meta['load_start']} at the start, {meta['load_end']} at the end)"
        + "".join(f", then `python benchmarks/augment_rare.py {' '.join(a)}`" for a in meta.get("added", []))
        + ".",
        "",
        f"Splat {d['n_cells']:,} cells × {d['n_genes']} genes, {d['n_groups']} groups (de_prob {d['de_prob']}, "
        f"de_fac_loc {d['de_fac_loc']}); stratified {meta['test_fraction']:.0%} hold-out ({meta['n_test']} cells, "
        f"{meta['n_test_rare']} of the rare type `{meta['rare']}`); the rare type has {meta['n_train_rare']} training "
        f"cells before down-sampling. Each arm adds back as many cells of the rare type as were removed. "
        f"ACTIVA {meta['activa_epochs']} epochs (target_sum 500), cscGAN {meta['cscgan_steps']} generator steps, "
        f"ACTINN with its defaults; seeds {meta['seeds']} (model seeds and the down-sampling draw; data and split fixed).",
        "",
        "## F1 of the rare type on held-out real cells (mean ± sd over seeds)",
        "",
        "| fraction kept | rare cells kept | " + " | ".join(meta["arms"]) + " |",
        "|---|---|" + "---|" * len(meta["arms"]),
    ]
    for f, row in summary["by_fraction"].items():
        kept = next(r["rare_kept"] for r in result["records"] if str(r["fraction"]) == f)
        cells = []
        for arm in meta["arms"]:
            s = mean_sd(row[arm]["rare_f1"])
            if row[arm]["failed"]:
                s += f" ({row[arm]['failed']} failed)"
            cells.append(s)
        lines.append(f"| {float(f):.0%} | {kept} | " + " | ".join(cells) + " |")
    full = summary["full"]["rare_f1"]
    lines += ["", f"Not down-sampled (the ceiling): {mean_sd(full)}.", ""]
    lines += [
        "## Change of the rare type's F1 against no augmentation, paired by seed (%)",
        "",
        "| fraction kept | " + " | ".join(a for a in meta["arms"] if a != "none") + " | ACTIVA vs cscGAN |",
        "|---|" + "---|" * len([a for a in meta["arms"] if a != "none"]) + "---|",
    ]
    for f, row in summary["by_fraction"].items():
        cells = [_pct(row[a]["gain_vs_none_pct"]) for a in meta["arms"] if a != "none"]
        lines.append(f"| {float(f):.0%} | " + " | ".join(cells) + f" | {_pct(row['activa_vs_cscgan_pct'])} |")
    lines += ["", "## Macro F1 over all types (mean ± sd over seeds)", "",
              "| fraction kept | " + " | ".join(meta["arms"]) + " |", "|---|" + "---|" * len(meta["arms"])]  # fmt: skip
    for f, row in summary["by_fraction"].items():
        lines.append(f"| {float(f):.0%} | " + " | ".join(mean_sd(row[a]["macro_f1"]) for a in meta["arms"]) + " |")
    lines += ["", f"Not down-sampled: {mean_sd(summary['full']['macro_f1'])}.", ""]
    gen = [r for r in result["records"] if "generator" in r]
    if gen:
        lines += ["## Generators", "", "| fraction | seed | model | fit s | fit CPU s | acceptance rate | note |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in gen:
            g = r["generator"]
            note = ("failed: " + g["failed"][:160]) if "failed" in g else ""
            lines.append(f"| {r['fraction']:.0%} | {r['seed']} | {r['arm']} | {g['fit_seconds']:.0f} | "
                         f"{g['fit_cpu_seconds']:.0f} | {g.get('acceptance_rate', '—')} | {note} |")  # fmt: skip
        lines.append("")
    lines += [f"Paper (ACTIVA, its rarest case): {PAPER['activa_vs_none']} than no augmentation, "
              f"{PAPER['activa_vs_cscgan']} than cscGAN.", ""]  # fmt: skip
    return "\n".join(lines)


def _pct(values: list[float]) -> str:
    if not values:
        return "—"
    v = np.asarray(values)
    return f"{v.mean():+.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v.mean():+.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-cells", type=int, default=4000)
    parser.add_argument("--n-genes", type=int, default=500)
    parser.add_argument("--n-groups", type=int, default=5)
    parser.add_argument("--de-prob", type=float, default=0.1)
    parser.add_argument("--de-fac-loc", type=float, default=0.3)
    parser.add_argument("--rare", default="Group1", help="the type to down-sample")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.10, 0.05, 0.02])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--arms", nargs="+", default=list(ARMS[:4]), choices=ARMS)
    parser.add_argument("--add", action="store_true",
                        help="add --arms to the results already in --out (same data, seeds and fractions)")  # fmt: skip
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--activa-epochs", type=int, default=40)
    parser.add_argument("--cscgan-steps", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny data and budgets: checks that everything runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    raw = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(raw)
    if args.smoke:
        args.n_cells, args.n_genes, args.fractions, args.seeds = 600, 100, [0.1], [0]
        args.activa_epochs, args.cscgan_steps = 12, 20

    import torch

    torch.set_num_threads(args.threads)
    start, load_start = time.perf_counter(), load_avg()
    data = prepare(args)
    data["rare"] = args.rare
    records, full, earlier = [], [], None
    if args.add:
        earlier = json.loads((args.out / "augment_rare.json").read_text())
        if (
            earlier["meta"]["data"] != data["params"]
            or earlier["meta"]["seeds"] != list(args.seeds)
            or [float(f) for f in earlier["meta"]["fractions"]] != [float(f) for f in args.fractions]
        ):
            raise SystemExit("--add: the results in --out were made with other data, seeds or fractions")
        records, full = earlier["records"], earlier["full"]
        args.arms = [a for a in earlier["meta"]["arms"] if a not in args.arms] + list(args.arms)
        new_arms = [a for a in args.arms if a not in earlier["meta"]["arms"]]
    for seed in [] if args.add else args.seeds:
        rows = data["train_rows"]
        rec = train_actinn(as_annotated(log1p_cp10k(data["adata"].X[rows]), data["labels"][rows], data["genes"]),
                           seed, data["test"], args.rare)  # fmt: skip
        rec.update({"seed": seed, "arm": "full"})
        print(f"  full        seed {seed} rare F1 {rec['rare_f1']:.3f}  macro F1 {rec['macro_f1']:.3f}", flush=True)
        full.append(rec)
        for f in args.fractions:
            records.extend(run_fraction(data, f, seed, args))
    if args.add:
        adding = argparse.Namespace(**{**vars(args), "arms": new_arms})
        for seed in args.seeds:
            for f in args.fractions:
                records.extend(run_fraction(data, f, seed, adding))
    test_labels = data["test"].obs[LABEL_KEY].to_numpy().astype(str)
    meta = {
        "argv": raw if earlier is None else earlier["meta"]["argv"],
        "added": [] if earlier is None else [*earlier["meta"].get("added", []), raw],
        "minutes": (time.perf_counter() - start) / 60 + (0.0 if earlier is None else earlier["meta"]["minutes"]),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "threads": args.threads,
        "torch": torch.__version__,
        "load_start": load_start if earlier is None else earlier["meta"]["load_start"],
        "load_end": load_avg(),
        "data": data["params"],
        "test_fraction": args.test_fraction,
        "n_test": len(test_labels),
        "n_test_rare": int((test_labels == args.rare).sum()),
        "n_train_rare": int((data["train_labels"] == args.rare).sum()),
        "rare": args.rare,
        "arms": list(args.arms),
        "seeds": list(args.seeds),
        "fractions": list(args.fractions),
        "activa_epochs": args.activa_epochs,
        "cscgan_steps": args.cscgan_steps,
        "paper": PAPER,
    }
    result = {"meta": meta, "records": records, "full": full, "summary": summarise(records, full, args)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "augment_rare.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (args.out / "augment_rare.md").write_text(markdown(result))
    print(f"wrote {args.out / 'augment_rare.md'} ({meta['minutes']:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
