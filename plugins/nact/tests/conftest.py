"""Shared fixtures of the N-ACT tests: a zoo holding only the plugins they need, and tiny simulated data."""

from __future__ import annotations

import warnings

import pytest

import cellzoo
import cellzoo_nact.plugin
import cellzoo_scdata.plugin

#: a quick recipe: the network learns 3 well-separated clusters in a few epochs
TINY = dict(epochs=8, batch_size=32, lr=1e-3, ffn_width=16, n_markers=10, resolution=0.5)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # tiny models on a shared 2-core machine: a second intra-op thread only adds contention
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLZOO_HOME", str(tmp_path_factory.mktemp("cellzoo_home")))


@pytest.fixture(autouse=True)
def zoo():
    pm = cellzoo.ZooPluginManager(discover=False)
    pm.register(cellzoo_nact.plugin, name="nact", distribution="cellzoo-nact")
    pm.register(cellzoo_scdata.plugin, name="scdata", distribution="cellzoo-scdata")
    with cellzoo.use_plugin_manager(pm):
        yield pm


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
