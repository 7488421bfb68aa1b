"""faithful_detach False vs True on Splat 1,200 cells x 200 genes (1,000 train / 200 held out), one CPU thread.

Run: python plugins/activa/scripts/compare_faithful_detach.py 0|1 "{'epochs': 60, 'target_sum': 200.0}"
"""

from __future__ import annotations

import ast
import json
import sys
import time
import warnings

import torch

from cellzoo.genmetrics import gene_mean_corr, gene_var_corr
from cellzoo_activa.config import ActivaConfig
from cellzoo_activa.errors import SamplingBoundError
from cellzoo_activa.model import Activa
from cellzoo_scdata.splat import splat

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
faithful = sys.argv[1] == "1"
overrides = ast.literal_eval(sys.argv[2]) if len(sys.argv) > 2 else {"epochs": 60, "target_sum": 200.0}
adata = splat(n_cells=1200, n_genes=200, n_groups=3, seed=1)
train, test = adata[:1000].copy(), adata[1000:].copy()
started = time.time()
model = Activa(ActivaConfig(device="cpu", faithful_detach=faithful, **overrides)).fit(train, "group")
seconds = time.time() - started
generated = model.sample(200, seed=0)
rates = {}
for group in model.classes:
    try:
        model.sample(50, cell_type=group, seed=1)
        rates[group] = round(model.last_acceptance_rate, 3)
    except SamplingBoundError:
        rates[group] = "bound exceeded"
last = model.training_record["history"][-1]
print(json.dumps({
    "faithful_detach": faithful, **overrides, "fit_seconds": round(seconds, 1),
    "gene_mean_corr": round(gene_mean_corr(test, generated), 4), "gene_var_corr": round(gene_var_corr(test, generated), 4),
    "acceptance": rates, "last": {k: round(v, 2) for k, v in last.items() if isinstance(v, float)},
}))  # fmt: skip
