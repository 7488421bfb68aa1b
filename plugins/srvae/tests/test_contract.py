"""cellzoo's model contract suite over srvae and srcnn, in a plugin manager that holds only this plugin."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import cellzoo_srvae.plugin
from cellzoo.testing import contract_suite, zoo_pm  # noqa: F401  (zoo_pm is a fixture)


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_srvae.plugin, name="srvae", distribution="cellzoo-srvae")


# The model classes' contract_test_config (16-pixel patches, 150 steps) keeps this fast.
test_contract = contract_suite(["srvae", "srcnn"])
