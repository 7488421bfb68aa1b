"""Loss weightings on a two-part loss: a sparse autoencoder on scikit-learn's 8×8 digits.

The model is a one-hidden-layer autoencoder, 64 pixels → ``hidden`` sigmoid units → 64 sigmoid
outputs, on the 1,797 images of ``sklearn.datasets.load_digits`` (bundled with scikit-learn,
offline) scaled to [0, 1] (pixel / 16). It is trained on a fixed 75/25 split (the split does not
depend on the run's seed) with the loss

    L = w_rec · MSE(x̂, x) + w_sparse · Σ_j KL(ρ ‖ ρ̂_j)

* ``MSE`` — mean squared error over pixels and images of the mini-batch;
* the **KL-divergence sparsity penalty** (not L1): ``ρ̂_j`` is hidden unit ``j``'s mean
  activation over the mini-batch, ``KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1−ρ) log((1−ρ)/(1−ρ̂))``, summed
  over the hidden units, target ``ρ = 0.05``;

with ``(w_rec, w_sparse)`` coming from a registered loss weighting
(``cellzoo.create_loss_weighting``) through ``cellzoo.training.WeightedLoss`` — updated once per
epoch from the per-epoch means of the two parts; the learnable ``uncertainty`` weighting's
parameters go to the same Adam optimiser. Every registered weighting is run with its defaults,
``equal`` (both weights 1) being the control; ``fixed`` is run as a sweep of sparsity weights
``(1, λ)``. Per run it records the final test MSE and the achieved sparsity, i.e. the mean hidden
activation on the test images (lower = sparser; the target is ρ).

Reconstruction error at matched sparsity: the weightings trade reconstruction for sparsity
differently, so their MSEs alone are not comparable. The fixed-weight runs (the sweep and
``equal``, which is λ = 1) trace, per seed and learning rate, the MSE reachable by a constant
weighting as a function of the sparsity reached. Each run's MSE is divided by that frontier's MSE at
the run's own sparsity (log-MSE interpolated linearly in log-sparsity between the two neighbouring
fixed runs on the frontier, i.e. the lower envelope: a fixed run is dropped when another is at
least as sparse with a lower MSE), with sparsity measured two ways: the mean activation, and the test KL
``Σ_j KL(ρ ‖ ρ̂_j)`` (which also sees units that are individually far from ρ while the mean is on
target). ``< 1`` means a lower error than constant weights give at the same sparsity. Runs
sparser or denser than every fixed run are outside the frontier and get no ratio.

Everything runs at two Adam learning rates (3e-3 and 1e-2): a weighting that changes the scale of
the loss during training also changes Adam's effective step for a while (its second-moment
estimate lags), so a single learning rate could confound "better weights" with "a better step size".

    python benchmarks/weighting.py                  # 3 seeds × 2 learning rates, 80 epochs (≈ 2–2.5 minutes on 2 cores)
    python benchmarks/weighting.py --seeds 0 --epochs 5 --out /tmp/w   # smoke test

Writes ``benchmarks/results/weighting/weighting.json`` and ``weighting.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "weighting"
#: sparsity weights λ of the ``fixed`` sweep, weights (1, λ); λ = 1 is the ``equal`` control
LAMBDAS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 3.0, 10.0)


def load_digits_split(test_fraction: float = 0.25, split_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) / 16.0
    order = np.random.default_rng(split_seed).permutation(len(x))
    n_test = round(test_fraction * len(x))
    return x[order[n_test:]], x[order[:n_test]]


def kl_sparsity(activation, rho: float):
    import torch

    rho_hat = activation.clamp(1e-6, 1 - 1e-6)
    return torch.sum(rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat)))


def train_one(name: str, overrides: dict, seed: int, lr: float, args: argparse.Namespace, data) -> dict:
    import torch
    from torch import nn

    import cellzoo
    from cellzoo.training import WeightedLoss, seed_everything

    seed_everything(seed)
    x_train, x_test = (torch.from_numpy(a) for a in data)
    encoder, decoder = nn.Linear(64, args.hidden), nn.Linear(args.hidden, 64)
    weighting = cellzoo.create_loss_weighting(name, **overrides)
    weighted = WeightedLoss(weighting, n_parts=2)
    params = [*encoder.parameters(), *decoder.parameters(), *weighted.parameters()]
    optimiser = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for first in range(0, len(x_train), args.batch_size):
            xb = x_train[order[first : first + args.batch_size]]
            hidden = torch.sigmoid(encoder(xb))
            rec = torch.mean((torch.sigmoid(decoder(hidden)) - xb) ** 2)
            sparse = kl_sparsity(hidden.mean(0), args.rho)
            total = weighted.combine([rec, sparse])
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
            weighted.record([rec.item(), sparse.item()])
        weighted.update()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        hidden = torch.sigmoid(encoder(x_test))
        mse = float(torch.mean((torch.sigmoid(decoder(hidden)) - x_test) ** 2))
        activation = float(hidden.mean())
        kl = float(kl_sparsity(hidden.mean(0), args.rho))
    trace = np.asarray(weighted.trace[:-1], dtype=float)  # trace[e]: the weights in force during epoch e
    ratio = trace[:, 1] / np.maximum(trace[:, 0], 1e-300)
    return {
        "weighting": name,
        "config": overrides,
        "seed": seed,
        "lr": lr,
        "test_mse": mse,
        "test_mean_activation": activation,
        "test_kl": kl,
        "final_weights": [float(w) for w in weighted.current],
        "mean_sparsity_to_rec_weight_ratio": float(np.exp(np.mean(np.log(np.maximum(ratio, 1e-300))))),
        "weights_every_10_epochs": [[float(w) for w in row] for row in trace[9::10]],
        "train_seconds": seconds,
    }


def frontier_ratio(run: dict, fixed_runs: list[dict], axis: str) -> float | None:
    """MSE of ``run`` over the fixed-weight frontier's MSE at the run's sparsity (None: outside it).

    The frontier is the lower envelope (Pareto front) of the fixed-weight runs in (sparsity, MSE),
    lower being better in both: a fixed run is on it when no other fixed run is at least as sparse
    with a lower MSE. Between two front points log-MSE is interpolated linearly in log(``axis``).
    A run sparser than the sparsest fixed run, or denser than the front's densest point (the
    fixed run of lowest MSE), is outside.
    """
    points = sorted((math.log(r[axis]), math.log(r["test_mse"])) for r in fixed_runs)
    front = []
    for x, y in points:  # by sparsity measure, sparsest first: keep the points that lower the MSE
        if not front or y < front[-1][1]:
            front.append((x, y))
    xs, ys = np.array([p[0] for p in front]), np.array([p[1] for p in front])
    x = math.log(run[axis])
    if not xs[0] <= x <= xs[-1]:
        return None
    return float(math.exp(math.log(run["test_mse"]) - np.interp(x, xs, ys)))


def label(run: dict) -> str:
    if run["weighting"] == "fixed":
        return f"fixed λ={run['config']['weights'][1]:g}"
    return run["weighting"]


def mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


AXES = {"activation": "test_mean_activation", "kl": "test_kl"}


def summarise(runs: list[dict]) -> list[dict]:
    for run in runs:
        peers = [r for r in runs if r["seed"] == run["seed"] and r["lr"] == run["lr"]]
        fixed = [r for r in peers if r["weighting"] in ("fixed", "equal")]
        for short, axis in AXES.items():
            run[f"mse_over_fixed_frontier_{short}"] = frontier_ratio(run, fixed, axis)
        run["mse_over_equal"] = run["test_mse"] / next(r for r in peers if r["weighting"] == "equal")["test_mse"]
    rows = []
    for lr, name in dict.fromkeys((r["lr"], label(r)) for r in runs):
        group = [r for r in runs if r["lr"] == lr and label(r) == name]
        row = {"lr": lr, "weighting": name, "n_seeds": len(group)}
        for key in (
            "test_mse",
            "test_mean_activation",
            "test_kl",
            "mse_over_equal",
            "mean_sparsity_to_rec_weight_ratio",
        ):
            row[key] = mean_std([r[key] for r in group])
        for short in AXES:
            ratios = [r[f"mse_over_fixed_frontier_{short}"] for r in group]
            ratios = [x for x in ratios if x is not None]
            row[f"mse_over_fixed_frontier_{short}"] = mean_std(ratios) if ratios else None
            row[f"inside_frontier_{short}"] = f"{len(ratios)}/{len(group)}"
        row["final_weights"] = np.mean([r["final_weights"] for r in group], axis=0).tolist()
        row["train_seconds"] = float(np.mean([r["train_seconds"] for r in group]))
        rows.append(row)
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    def pm(value, digits=4):
        return "—" if value is None else f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"

    def ratio(r, short):
        value = r[f"mse_over_fixed_frontier_{short}"]
        inside = r[f"inside_frontier_{short}"]
        return pm(value, 3) + ("" if inside.split("/")[0] == inside.split("/")[1] else f" ({inside} seeds)")

    lines = [
        "# Loss weightings: sparse autoencoder on 8×8 digits",
        "",
        f"Generated by `{meta['command']}` ({meta['total_seconds']:.0f} s, {meta['platform']}, torch {meta['torch']}).",
        "",
        f"Loss = w_rec·MSE + w_sparse·Σ_j KL(ρ‖ρ̂_j), ρ = {meta['rho']}; 64 → {meta['hidden']} sigmoid → 64 sigmoid; "
        f"Adam, batch {meta['batch_size']}, {meta['epochs']} epochs; {meta['n_train']} train / "
        f"{meta['n_test']} test images (fixed split); seeds {meta['seeds']}; mean ± std over seeds. "
        "Weights are updated once per epoch by `cellzoo.training.WeightedLoss`; every weighting runs with its "
        "registered defaults.",
        "",
        "* **test MSE** — per pixel, on the test images (pixels in [0, 1]);",
        "* **activation** — mean hidden activation on the test images (lower = sparser; target ρ);",
        "* **test KL** — Σ_j KL(ρ‖ρ̂_j) with ρ̂_j the mean activation of unit j over all test images "
        "(how far the units are from the target, unit by unit);",
        "* **MSE / equal** — test MSE over the `equal` control's, same seed and learning rate;",
        "* **MSE / frontier (act.)**, **(KL)** — test MSE over the MSE that constant weights (1, λ) reach at the "
        "same activation (resp. test KL): log-log interpolation along the lower envelope (Pareto front) of the "
        "fixed-weight runs (the λ sweep and `equal`) of the same seed and learning rate. < 1: a lower error than "
        "constant weights at matched sparsity; — : outside the range the front spans (number of seeds inside "
        "given when not all). Near the target ρ the front is steep (many λ reach about the same sparsity with "
        "very different MSEs), so small differences in sparsity move these ratios a lot;",
        "* **w_sparse / w_rec** — geometric mean over the epochs of the ratio of the weights in force (the "
        "effective λ).",
    ]
    for lr in dict.fromkeys(r["lr"] for r in rows):
        lines += [
            "",
            f"## Adam lr {lr:g}",
            "",
            "| weighting | test MSE | activation | test KL | MSE / equal | MSE / frontier (act.) | MSE / frontier (KL) "
            "| w_sparse / w_rec | final weights |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in (r for r in rows if r["lr"] == lr):
            lines.append(
                f"| {r['weighting']} | {pm(r['test_mse'])} | {pm(r['test_mean_activation'], 4)} | "
                f"{pm(r['test_kl'], 4)} | {pm(r['mse_over_equal'], 3)} | {ratio(r, 'activation')} | {ratio(r, 'kl')} | "
                f"{r['mean_sparsity_to_rec_weight_ratio'][0]:.3g} | "
                + ", ".join(f"{w:.3g}" for w in r["final_weights"])
                + " |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--rho", type=float, default=0.05)
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 1e-2], help="Adam learning rates")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(LAMBDAS), help="sparsity weights of `fixed`")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    import cellzoo

    torch.set_num_threads(1)
    data = load_digits_split()
    names = cellzoo.list_loss_weightings()
    if "equal" not in names:
        raise SystemExit("the `equal` control is not installed (pip install -e plugins/softadapt)")
    plan = [("equal", {})]
    if "fixed" in names:
        plan += [("fixed", {"weights": (1.0, lam)}) for lam in args.lambdas if lam != 1.0]
    plan += [(n, {}) for n in names if n not in ("equal", "fixed")]
    start = time.perf_counter()
    runs = []
    for lr in args.lrs:
        for name, overrides in plan:
            for seed in args.seeds:
                run = train_one(name, overrides, seed, lr, args, data)
                runs.append(run)
                print(
                    f"lr {lr:g} {label(run):24s} seed {seed}: mse {run['test_mse']:.5f} activation "
                    f"{run['test_mean_activation']:.4f} ({run['train_seconds']:.1f} s)",
                    flush=True,
                )
    rows = summarise(runs)
    meta = {
        "command": " ".join(["python benchmarks/weighting.py", *(sys.argv[1:] if argv is None else argv)]),
        "total_seconds": time.perf_counter() - start,
        "platform": f"{platform.system()} {platform.machine()}, 1 torch thread",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "hidden": args.hidden,
        "rho": args.rho,
        "lrs": args.lrs,
        "batch_size": args.batch_size,
        "lambdas": args.lambdas,
        "n_train": len(data[0]),
        "n_test": len(data[1]),
        "sparsity_penalty": "KL divergence of each hidden unit's mini-batch mean activation from rho, summed over units",
        "split": "numpy default_rng(0) permutation of load_digits, 25 % test, same for every seed",
    }
    result = {"meta": meta, "summary": rows, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "weighting.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (args.out / "weighting.md").write_text(markdown(rows, meta), encoding="utf-8")
    print(markdown(rows, meta))
    return result


if __name__ == "__main__":
    main()
