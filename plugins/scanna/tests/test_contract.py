"""cellzoo's model contract suite over scanna, in a plugin manager that holds only this plugin."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import cellzoo_scanna.plugin
from cellzoo.testing import contract_suite, zoo_pm  # noqa: F401  (zoo_pm is a fixture)


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_scanna.plugin, name="scanna", distribution="cellzoo-scanna")


# the model class's contract_test_config (20 epochs, no min_steps, batch 16, lr 1e-3, no masking) keeps this fast; the
# override below is the same, stated here so the suite's settings are visible in this file
test_contract = contract_suite(
    ["scanna"],
    overrides={"scanna": {"epochs": 20, "min_steps": 0, "batch_size": 16, "lr": 1e-3, "masking_fraction": 0.0}},
)
