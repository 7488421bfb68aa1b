"""pytest fixtures for plugin authors and the project's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..plugins import ZooPluginManager, use_plugin_manager


@pytest.fixture
def zoo_pm() -> Iterator[ZooPluginManager]:
    """A plugin manager with discovery blocked (only cellzoo's built-in plugin), made current.

    The test registers exactly the plugins it needs: ``zoo_pm.register(my_plugin_module,
    name="mine", distribution="my-dist")``; ``cellzoo.list_models()``, ``create_model`` and
    ``load`` then see those and nothing else installed on the machine.
    """
    manager = ZooPluginManager(discover=False)
    with use_plugin_manager(manager):
        yield manager
