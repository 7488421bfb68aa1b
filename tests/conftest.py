"""Shared fixtures of the core's tests.

Every test runs with its own empty ``CELLZOO_HOME`` and without the user's plugin switches, so no
test reads or writes the real cache or depends on how the machine is configured. ``zoo_pm`` (a
plugin manager with discovery blocked) comes from :mod:`cellzoo.testing`, as it does for plugin
authors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cellzoo.testing import zoo_pm  # noqa: F401  (the fixture, for every test in this folder)

EXAMPLE_PLUGIN_DIR = Path(__file__).parent / "example_plugin"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLZOO_HOME", str(tmp_path_factory.mktemp("cellzoo_home")))
    for var in ("CELLZOO_STRICT_PLUGINS", "CELLZOO_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def example_plugin(monkeypatch: pytest.MonkeyPatch):
    """The ``cellzoo_example`` package of ``tests/example_plugin`` (importable, not registered)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    import cellzoo_example

    return cellzoo_example


@pytest.fixture
def example_pm(zoo_pm, example_plugin):  # noqa: F811  (the fixture imported above)
    """``zoo_pm`` with the example plugin registered, as an installed third-party plugin would be."""
    zoo_pm.register(example_plugin, name="example", distribution="cellzoo-example", version="0.1.0")
    return zoo_pm
