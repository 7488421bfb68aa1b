"""Tuning rows for the torch annotators' training recipe: one Splat hold-out split, or PBMC 5-fold CV.

Each row is a set of config overrides (JSON) for ``cellzoo.create_model(MODEL, **overrides)``.
DATA is a number of cells: fitted on 80 % of a Splat simulation of that size (500 genes, 5 groups,
hard DE: 2 % of genes, log-factor 0.1, as ``splat-*-hard`` in ``annotate-splat.toml``) and scored on
the other 20 % (split seed 0); or ``pbmc68k_reduced``: stratified 5-fold CV with CV seed 100 (the
tuning splits of the scANNA README, not those of the reported leaderboard), mean over folds.
Two keys are not config keys: ``"schedule"`` ("cosine" or "exponential") replaces the constant
learning rate by a per-step schedule over the planned steps, down to ``"final"`` × lr (default
0.01) at the end, through the model's ``lr_scheduler`` hook.

    OMP_NUM_THREADS=1 python benchmarks/tune_recipe.py 8000 scanna '{"epochs": 160, "val_fraction": 0.0}'
    OMP_NUM_THREADS=1 python benchmarks/tune_recipe.py pbmc68k_reduced scanna '{}'

Prints one line per row and appends it to ``benchmarks/results/tune_recipe/rows.jsonl``.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import cellzoo
from cellzoo import SplitRule, make_splits

OUT = Path(__file__).parent / "results" / "tune_recipe" / "rows.jsonl"


def schedule(kind: str, total: int, final: float):
    """The factor of lr after ``t`` optimizer steps, for ``t`` in 0 … ``total``."""
    if kind == "cosine":
        return lambda t: final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(t, total) / total))
    if kind == "exponential":
        return lambda t: final ** (min(t, total) / total)
    raise SystemExit(f"schedule {kind!r} is not cosine or exponential")


def folds(data: str):
    """``(name, label key, [(train AnnData, test AnnData, test labels), ...])`` for DATA."""
    from cellzoo_scdata.splat import splat

    if data == "pbmc68k_reduced":
        from sklearn.model_selection import StratifiedKFold

        adata, key = cellzoo.get_dataset("pbmc68k_reduced"), "bulk_labels"
        y = adata.obs[key].astype(str).to_numpy()
        cv = StratifiedKFold(5, shuffle=True, random_state=100).split(y, y)
        return data, key, [(adata[tr].copy(), adata[te].copy(), y[te]) for tr, te in cv]
    n_cells = int(data)
    adata = splat(n_cells=n_cells, n_genes=500, n_groups=5, de_prob=0.02, de_fac_loc=0.1, seed=0)
    y = adata.obs["group"].astype(str).to_numpy()
    (split,) = make_splits(y, SplitRule(kind="holdout", test_fraction=0.2), seed=0)
    return f"splat-{n_cells}-hard", "group", [(adata[split.train].copy(), adata[split.test].copy(), y[split.test])]


def main(data: str, model_name: str, rows: list[dict]) -> None:
    import torch

    from cellzoo.training import steps_per_epoch

    warnings.simplefilter("ignore")
    name, key, splits = folds(data)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for row in rows:
        scores, seconds, epochs = [], 0.0, []
        for train, test, y_test in splits:
            overrides = dict(row)
            kind, final = overrides.pop("schedule", None), float(overrides.pop("final", 0.01))
            model = cellzoo.create_model(model_name, **overrides)
            if kind is not None:

                def make(optimizer, cfg=model.config, n=train.n_obs, kind=kind, final=final):
                    # the planned steps when every training cell trains (the rows set val_fraction=0)
                    total = max(1, cfg.epochs * steps_per_epoch(n, cfg.batch_size))
                    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(kind, total, final))

                model.lr_scheduler = make
            start = time.perf_counter()
            model.fit(train, key)
            seconds += time.perf_counter() - start
            predicted = model.predict(test)
            scores.append([cellzoo.get_metric(m)(y_test, predicted) for m in ("accuracy", "f1_macro")])
            epochs.append(len(model.history.train_loss) if getattr(model, "history", None) else None)
        accuracy, f1 = np.mean(scores, axis=0)
        record = {
            "data": name,
            "model": model_name,
            "row": row,
            "folds": len(splits),
            "epochs_run": epochs,
            "accuracy": round(float(accuracy), 4),
            "f1_macro": round(float(f1), 4),
            "fit_s_per_fold": round(seconds / len(splits), 1),
        }
        print(json.dumps(record), flush=True)
        with OUT.open("a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], [json.loads(a) for a in sys.argv[3:]])
