"""cellzoo's pytest plugin: the fixtures every plugin's tests share, with no conftest to copy.

The core distribution registers this module under the ``pytest11`` entry point ``cellzoo``, so
pytest loads it in every run of an environment where cellzoo is installed (``-p no:cellzoo``
switches it off). It therefore imports nothing heavy (no torch, anndata or numpy) and stays out
of the way of tests that do not use cellzoo:

``cellzoo_home`` (every test)
    ``$CELLZOO_HOME`` is an empty folder of the test's own: no test reads or writes the user's
    cache of models and datasets. Request the fixture for its path.
``zoo_pm``
    A plugin manager with discovery blocked (only cellzoo's built-in plugin), made current; the
    test registers exactly the plugins it needs.
torch threads (sessions that test zoo models)
    When the collected tests imported a zoo plugin (a ``cellzoo_*`` package) or the contract
    suite, and torch is installed, torch runs single-threaded for the session — tiny models on
    few cores only lose to a second thread's contention, and a fixed thread count keeps results
    reproducible. The ini option ``cellzoo_torch_threads`` sets the number (``0``: leave torch
    alone); the previous setting is restored at the end.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..constants import HOME_ENV

if TYPE_CHECKING:
    from ..plugins import ZooPluginManager

TORCH_THREADS_INI = "cellzoo_torch_threads"
_PREVIOUS_THREADS = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        TORCH_THREADS_INI,
        "torch intra-op threads while testing zoo models (cellzoo's pytest plugin); 0 leaves torch alone",
        default="1",
    )


def _tests_zoo_models() -> bool:
    # a zoo plugin or the contract suite was imported by the collected test modules
    return "cellzoo.testing.contract" in sys.modules or any(
        name.startswith("cellzoo_") and "." not in name for name in list(sys.modules)
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fix torch's thread count before the first test runs (and so before any model trains)."""
    config = session.config
    try:
        threads = int(str(config.getini(TORCH_THREADS_INI)).strip() or "0")
    except ValueError as exc:
        raise pytest.UsageError(
            f"ini option {TORCH_THREADS_INI} must be a whole number of threads (0: leave torch alone), "
            f"got {config.getini(TORCH_THREADS_INI)!r}"
        ) from exc
    if threads < 1 or not _tests_zoo_models():
        return
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return
    import torch

    config.stash[_PREVIOUS_THREADS] = torch.get_num_threads()
    torch.set_num_threads(threads)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_PREVIOUS_THREADS, None)
    torch = sys.modules.get("torch")
    if previous is not None and torch is not None:
        torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _cellzoo_isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # never read or write the user's cellzoo cache
    monkeypatch.setenv(HOME_ENV, str(tmp_path_factory.mktemp("cellzoo_home")))


@pytest.fixture
def cellzoo_home() -> Path:
    """The empty ``$CELLZOO_HOME`` of this test (cache, built models, datasets go below it)."""
    return Path(os.environ[HOME_ENV])


@pytest.fixture
def zoo_pm() -> Iterator[ZooPluginManager]:
    """A plugin manager with discovery blocked (only cellzoo's built-in plugin), made current.

    The test registers exactly the plugins it needs: ``zoo_pm.register(my_plugin_module,
    name="mine", distribution="my-dist")``; ``cellzoo.list_models()``, ``create_model`` and
    ``load`` then see those and nothing else installed on the machine.
    """
    from ..plugins import ZooPluginManager, use_plugin_manager

    manager = ZooPluginManager(discover=False)
    with use_plugin_manager(manager):
        yield manager
