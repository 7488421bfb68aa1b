"""Seconds per epoch of each ACTIVA phase, default architecture, on Splat 2,000 cells x 1,000 genes (one CPU thread).

Run: python plugins/activa/scripts/epoch_seconds.py   (needs cellzoo-scdata for the Splat simulator)
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import torch

from cellzoo_activa.config import ActivaConfig
from cellzoo_activa.model import Activa
from cellzoo_scdata.splat import splat

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
adata = splat(n_cells=2000, n_genes=1000, n_groups=5, seed=0)
model = Activa(ActivaConfig(epochs=12, device="cpu")).fit(adata, "group")
history = model.training_record["history"]
print(
    json.dumps(
        {
            p: float(np.mean([e["seconds"] for e in history if e["phase"] == p]))
            for p in ("classifier", "vae", "introspective")
        }
    )
)
