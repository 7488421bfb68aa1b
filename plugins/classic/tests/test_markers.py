"""Marker rankers of the classic plugin: Wilcoxon z-scores as scanpy computes them, logistic-regression weights."""

from __future__ import annotations

import numpy as np
import pytest

import cellzoo
from cellzoo.errors import InputError

from .test_classic import synthetic


def test_rankers_are_markers_task_models():
    assert {"logreg_coef", "wilcoxon"} <= set(cellzoo.list_models(task="markers"))


def test_wilcoxon_scores_equal_scanpys_rank_genes_groups():
    import scanpy as sc

    adata = synthetic(n_per_class=25, n_classes=3, n_genes=30)
    model = cellzoo.create_model("wilcoxon").fit(adata, "cell_type")
    logged = adata.copy()
    sc.pp.normalize_total(logged, target_sum=1e4)
    sc.pp.log1p(logged)
    sc.tl.rank_genes_groups(logged, "cell_type", method="wilcoxon", n_genes=30, tie_correct=False)
    result = logged.uns["rank_genes_groups"]
    genes = list(model.manifest.genes)
    for k, cls in enumerate(model.classes):
        theirs = dict(zip(result["names"][cls], result["scores"][cls]))
        np.testing.assert_allclose(model.scores[k], [theirs[g] for g in genes], rtol=1e-4, atol=1e-4)


def test_rankers_find_each_class_s_marker_block():
    adata = synthetic(n_per_class=30, n_classes=3, n_genes=40, markers=6)
    genes = list(adata.var_names)
    for name in ("wilcoxon", "logreg_coef"):
        markers = cellzoo.create_model(name).fit(adata, "cell_type").markers(adata, "cell_type", n=6)
        assert len(markers) == 3
        for c, ranked in markers.items():
            k = int(c.removeprefix("type"))
            assert len(set(ranked) & set(genes[k * 6 : (k + 1) * 6])) >= 5, (name, c, ranked)


def test_wilcoxon_classifies_by_marker_score_and_round_trips(tmp_path):
    adata = synthetic(n_per_class=30, n_classes=3, n_genes=40)
    model = cellzoo.create_model("wilcoxon", n_markers=6).fit(adata, "cell_type")
    assert np.mean(model.predict(adata).labels == adata.obs["cell_type"].astype(str).to_numpy()) > 0.9
    loaded = cellzoo.load(f"local-dir:{cellzoo.save(model, tmp_path / 'w')}")
    np.testing.assert_array_equal(loaded.scores, model.scores)


def test_wilcoxon_needs_two_classes():
    adata = synthetic(n_per_class=10, n_classes=2, n_genes=10)
    adata = adata[adata.obs["cell_type"].astype(str) == adata.obs["cell_type"].astype(str).iloc[0]].copy()
    with pytest.raises(InputError, match="two classes"):
        cellzoo.create_model("wilcoxon").fit(adata, "cell_type")
