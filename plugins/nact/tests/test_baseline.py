"""The classical discover baseline: N-ACT's clusters, Wilcoxon markers, the same names; nearest-centroid assignment."""

from __future__ import annotations

import numpy as np
import pytest

import cellzoo
from cellzoo.errors import ConfigError
from cellzoo_nact.metrics import ari, name_accuracy
from cellzoo_nact.naming import MarkerTable, name_clusters

from .conftest import TINY

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CLUSTERING = {k: TINY[k] for k in ("n_markers", "resolution")}


@pytest.fixture(scope="module")
def baseline(cells):
    return cellzoo.create_model("leiden_wilcoxon", **CLUSTERING, marker_table="declared").fit(cells)


def test_the_baseline_clusters_exactly_as_nact_does(baseline, fitted):
    assert np.array_equal(baseline.fit_result.clusters, fitted.fit_result.clusters)
    assert baseline.clustering == fitted.clustering


def test_markers_are_the_wilcoxon_ranking_of_the_clusters_and_name_them(baseline, cells):
    from scipy.stats import mannwhitneyu

    # scipy's rank-sum statistic of each cluster against the rest orders the genes as the z-score does
    work = baseline._training_data(cells, baseline.fit_result.clusters)
    X = work.X.toarray() if hasattr(work.X, "toarray") else np.asarray(work.X)
    inside = work.obs["cluster"].to_numpy()
    genes = np.asarray(cells.var_names)
    for cluster in baseline.classes:
        u = mannwhitneyu(X[inside == cluster], X[inside != cluster], axis=0).statistic
        top = genes[np.argsort(-u, kind="stable")[:5]]
        assert set(baseline.cluster_markers[cluster][:5]) == set(top)
    table = MarkerTable.from_mapping(cells.uns["cellzoo"]["markers"])
    assert baseline.names == {c: n.name for c, n in name_clusters(baseline.cluster_markers, table).items()}
    truth = cells.obs["group"].to_numpy()
    assert ari(truth, baseline.fit_result) > 0.95
    assert name_accuracy(truth, baseline.fit_result) > 0.95  # strong DE: every group is named after itself


def test_predict_assigns_cells_to_their_cluster_and_round_trips(baseline, cells, tmp_path):
    first = baseline.predict(cells)
    assert first.source == "nearest centroid" and first.proba.shape == (cells.n_obs, len(baseline.classes))
    assert np.allclose(first.proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(first.clusters == baseline.fit_result.clusters) > 0.98
    # a subset of the genes in another order is aligned to the centroids' genes
    shuffled = cells[:, np.random.default_rng(0).permutation(cells.n_vars)].copy()
    assert np.array_equal(baseline.predict(shuffled).clusters, first.clusters)
    cellzoo.save(baseline, tmp_path / "lw")
    loaded = cellzoo.load(f"local-dir:{tmp_path / 'lw'}")
    again = loaded.predict(cells)
    assert np.array_equal(again.clusters, first.clusters) and np.array_equal(again.labels, first.labels)
    assert loaded.names == baseline.names and loaded.cluster_markers == baseline.cluster_markers


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match=r"leiden_wilcoxon configuration: .*resolution=0"):
        cellzoo.create_model("leiden_wilcoxon", resolution=0)
    with pytest.raises(ConfigError, match=r"n_markers=0 must be a positive integer"):
        cellzoo.create_model("leiden_wilcoxon", n_markers=0)
