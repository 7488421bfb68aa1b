"""cellzoo's model contract suite over scgan and cscgan, in a plugin manager that holds only this plugin."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import cellzoo_scgan.plugin
from cellzoo.testing import contract_suite, zoo_pm  # noqa: F401  (zoo_pm is a fixture)


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_scgan.plugin, name="scgan", distribution="cellzoo-scgan")


# The model classes' contract_test_config (small networks, 30 steps) keeps this fast.
test_contract = contract_suite(["scgan", "cscgan"])
