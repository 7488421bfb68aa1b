"""Shared fixtures of the N-ACT tests: a zoo holding only the plugins they need, and tiny simulated data.

The isolated ``$CELLZOO_HOME``, ``zoo_pm`` and single-threaded torch come from cellzoo's pytest plugin.
"""

from __future__ import annotations

import warnings

import pytest

import cellzoo
import cellzoo_nact.plugin
import cellzoo_scdata.plugin

#: a quick recipe: the network learns 3 well-separated clusters in a few epochs
TINY = dict(epochs=8, batch_size=32, lr=1e-3, ffn_width=16, n_markers=10, resolution=0.5)


@pytest.fixture(autouse=True)
def zoo(zoo_pm):
    """Only the built-in, N-ACT and scdata plugins (``zoo_pm`` comes from cellzoo's pytest plugin)."""
    zoo_pm.register(cellzoo_nact.plugin, name="nact", distribution="cellzoo-nact")
    zoo_pm.register(cellzoo_scdata.plugin, name="scdata", distribution="cellzoo-scdata")
    return zoo_pm


def simulate(n_cells: int = 360, seed: int = 0):
    """Three groups with strong DE over 60 genes (clusters are unambiguous)."""
    from cellzoo_scdata.splat import splat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return splat(n_cells=n_cells, n_genes=60, n_groups=3, de_prob=0.3, de_fac_loc=1.0, seed=seed)


@pytest.fixture(scope="module")
def cells():
    return simulate()


@pytest.fixture(scope="module")
def fitted(cells):
    """One N-ACT fitted on the tiny data (shared by the tests that only read it)."""
    pm = cellzoo.ZooPluginManager(discover=False)
    pm.register(cellzoo_nact.plugin, name="nact", distribution="cellzoo-nact")
    with cellzoo.use_plugin_manager(pm), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cellzoo.create_model("nact", **TINY)
        return model.fit(cells)
