"""Shared fixture of the classic plugin's tests: a zoo holding only what they need."""

from __future__ import annotations

import pytest

import cellzoo
import cellzoo_classic.plugin


@pytest.fixture(autouse=True)
def zoo():
    """Only the built-in and classic plugins, whatever else is installed."""
    pm = cellzoo.ZooPluginManager(discover=False)
    pm.register(cellzoo_classic.plugin, name="classic", distribution="cellzoo-classic")
    with cellzoo.use_plugin_manager(pm):
        yield pm
