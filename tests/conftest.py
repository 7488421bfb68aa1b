"""Shared fixtures of the core's tests.

Every test runs without the user's plugin switches, so none depends on how the machine is
configured. Its own empty ``CELLZOO_HOME`` and ``zoo_pm`` (a plugin manager with discovery blocked)
come from cellzoo's pytest plugin (:mod:`cellzoo.testing.fixtures`), as they do for plugin authors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cellzoo.constants import DISABLE_PLUGINS_ENV, STRICT_PLUGINS_ENV

EXAMPLE_PLUGIN_DIR = Path(__file__).parent / "example_plugin"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (STRICT_PLUGINS_ENV, DISABLE_PLUGINS_ENV):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def example_plugin(monkeypatch: pytest.MonkeyPatch):
    """The ``cellzoo_example`` package of ``tests/example_plugin`` (importable, not registered)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    import cellzoo_example

    return cellzoo_example


@pytest.fixture
def example_pm(zoo_pm, example_plugin):
    """``zoo_pm`` with the example plugin registered, as an installed third-party plugin would be."""
    zoo_pm.register(example_plugin, name="example", distribution="cellzoo-example", version="0.1.0")
    return zoo_pm
