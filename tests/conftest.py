"""Shared fixtures of the core's tests.

Every test runs without the user's plugin switches, so none depends on how the machine is
configured. Its own empty ``CELLZOO_HOME`` and ``zoo_pm`` (a plugin manager with discovery blocked)
come from cellzoo's pytest plugin (:mod:`cellzoo.testing.fixtures`), as they do for plugin authors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import cellzoo
from cellzoo.constants import DISABLE_PLUGINS_ENV, STRICT_PLUGINS_ENV
from cellzoo.plugins import use_plugin_manager

EXAMPLE_PLUGIN_DIR = Path(__file__).parent / "example_plugin"


@pytest.fixture(scope="module")
def tiny_zoo():
    """A plugin manager holding only the tiny models of ``tests/tiny_models.py``."""
    import tiny_models

    with use_plugin_manager(tiny_models.make_zoo()) as pm:
        yield pm


@pytest.fixture(scope="module")
def tiny_model(tiny_zoo):
    """``tinyatt`` trained on 90 cells (an exportable torch annotator with an attention output)."""
    import tiny_models

    return tiny_models.train()


@pytest.fixture(scope="module")
def tiny_artifact(tiny_model, tmp_path_factory) -> Path:
    return cellzoo.save(tiny_model, tmp_path_factory.mktemp("art") / "tinyatt")


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
