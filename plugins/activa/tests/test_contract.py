"""cellzoo's model contract suite over activa, in a plugin manager that holds only this plugin."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import cellzoo_activa.plugin
from cellzoo.testing import contract_suite, zoo_pm  # noqa: F401  (zoo_pm is a fixture)


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_activa.plugin, name="activa", distribution="cellzoo-activa")


# the model class's contract_test_config keeps this fast (see cellzoo_activa.model.Activa)
test_contract = contract_suite(["activa"])
