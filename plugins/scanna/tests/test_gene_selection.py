"""Real-size input: scANNA trains on its n_top_genes most variable genes, and a network too large is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import cellzoo
from cellzoo.errors import ResourceError
from cellzoo.testing import tiny_annotate_adata

FIT_30K = """
import json, resource
import cellzoo
from cellzoo.testing import tiny_annotate_adata

adata = tiny_annotate_adata(200, 30_000, 3, seed=0)
model = cellzoo.create_model("scanna", epochs=1, min_steps=0, val_fraction=0, device="cpu")
model.fit(adata, "cell_type")
labels = model.predict(adata).labels
print(json.dumps({"genes": len(model.manifest.genes), "cells": len(labels),
                  "in_data": bool(set(model.manifest.genes) <= set(adata.var_names)),
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def test_a_30000_gene_file_trains_on_5000_variable_genes_in_bounded_memory():
    done = subprocess.run([sys.executable, "-c", FIT_30K], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info == {**info, "genes": 5000, "cells": 200, "in_data": True}
    # 5,000 genes: 75 M parameters, 1.2 GB in training; all 30,000 would need 43 GB
    assert info["max_rss_kb"] < 4 * 1024**2, f"peak RSS {info['max_rss_kb'] / 1024**2:.1f} GiB"


def test_the_selected_genes_are_the_manifest_and_prediction_aligns_to_them():
    adata = tiny_annotate_adata(120, 60, 3, seed=1)
    model = cellzoo.create_model("scanna", n_top_genes=20, epochs=1, min_steps=0, val_fraction=0, device="cpu")
    model.fit(adata, "cell_type")
    assert len(model.manifest.genes) == 20
    # query data with its genes in another order gives the same prediction
    shuffled = adata[:, np.random.default_rng(0).permutation(adata.n_vars)].copy()
    np.testing.assert_allclose(model.predict(shuffled).proba, model.predict(adata).proba, atol=1e-6)
    assert model.explain(adata).shape == (120, 20)


def test_a_network_too_large_for_memory_is_refused_before_it_is_built(monkeypatch):
    import cellzoo.memory

    monkeypatch.setattr(cellzoo.memory, "available_bytes", lambda device: 16 * 10**9)
    adata = tiny_annotate_adata(40, 30_000, 3, seed=0)
    model = cellzoo.create_model("scanna", n_top_genes=0, device="cpu")
    with pytest.raises(ResourceError) as err:
        model.fit(adata, "cell_type")
    message = str(err.value)
    assert message.startswith("training scanna on 30,000 genes needs about 43.")
    assert "(2,708,070,131 parameters" in message and "n_top_genes=5000" in message and "(now 0;" in message
    assert model.net is None
