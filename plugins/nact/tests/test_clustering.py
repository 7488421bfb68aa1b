"""The clustering step: recovers clear groups, is seeded, numbers clusters by size, refuses too few cells."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cellzoo.errors import ConfigError, InputError
from cellzoo_nact.clustering import _by_size, cluster_cells, clustering_method, leiden_available, louvain_codes
from cellzoo_nact.config import NactConfig
from cellzoo_nact.metrics import ari


@pytest.mark.parametrize("preprocess", ["scale", "zheng17", "none"])
def test_clear_groups_are_recovered(cells, preprocess):
    result = cluster_cells(cells, NactConfig(resolution=0.5, preprocess=preprocess))
    assert ari(cells.obs["group"].to_numpy(), result.labels) > 0.95
    assert result.method == clustering_method("auto")
    assert result.to_json()["n_clusters"] == len(set(result.labels))


def test_same_seed_same_clusters_and_ids_ordered_by_size(cells):
    first = cluster_cells(cells, NactConfig(resolution=2.0, seed=3, clustering="louvain"))
    again = cluster_cells(cells, NactConfig(resolution=2.0, seed=3, clustering="louvain"))
    np.testing.assert_array_equal(first.labels, again.labels)
    ids, sizes = np.unique(first.labels.astype(int), return_counts=True)
    assert list(ids) == list(range(len(ids)))
    assert (np.diff(sizes[np.argsort(ids)]) <= 0).all()
    assert first.method == "louvain"


def test_resolution_controls_the_number_of_clusters(cells):
    low = cluster_cells(cells, NactConfig(resolution=0.3, clustering="louvain"))
    high = cluster_cells(cells, NactConfig(resolution=3.0, clustering="louvain"))
    assert low.n_clusters < high.n_clusters


def test_louvain_on_two_cliques():
    block = np.ones((5, 5)) - np.eye(5)
    graph = sp.block_diag([block, block]).tolil()
    graph[4, 5] = graph[5, 4] = 0.1
    codes = louvain_codes(graph.tocsr(), resolution=1.0, seed=0)
    assert len(set(codes[:5])) == 1 and len(set(codes[5:])) == 1 and codes[0] != codes[9]
    np.testing.assert_array_equal(_by_size(np.array([5, 5, 9, 9, 9, 1])), ["1", "1", "0", "0", "0", "2"])


def test_leiden_needs_igraph():
    if leiden_available():
        assert clustering_method("leiden") == clustering_method("auto") == "leiden"
    else:
        with pytest.raises(ConfigError, match="pip install igraph"):
            clustering_method("leiden")
        assert clustering_method("auto") == "louvain"


def test_too_few_cells_and_counts_only_recipes_are_refused(cells):
    with pytest.raises(InputError, match="at least 10 cells"):
        cluster_cells(cells[:5].copy(), NactConfig())
    logged = cells.copy()
    logged.X = sp.csr_matrix(np.log1p(logged.X.toarray() / logged.X.sum(1).A * 1e4), dtype=np.float32)
    logged.uns["cellzoo"] = {"input_state": "log1p_norm"}
    assert cluster_cells(logged, NactConfig(resolution=0.5)).n_clusters >= 2
    with pytest.raises(InputError, match="raw integer counts"):
        cluster_cells(logged, NactConfig(preprocess="zheng17"))
