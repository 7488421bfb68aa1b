"""Shared fixture of the classic plugin's tests: a zoo holding only what they need.

``zoo_pm`` and the isolated ``$CELLZOO_HOME`` come from cellzoo's pytest plugin.
"""

from __future__ import annotations

import pytest

import cellzoo_classic.plugin


@pytest.fixture(autouse=True)
def zoo(zoo_pm):
    """Only the built-in and classic plugins, whatever else is installed."""
    zoo_pm.register(cellzoo_classic.plugin, name="classic", distribution="cellzoo-classic")
    return zoo_pm
