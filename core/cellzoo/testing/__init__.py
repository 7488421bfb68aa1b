"""Testing helpers for cellzoo plugins: the model contract suite, fixtures and tiny data.

In a plugin's test module, either name the models to check::

    from cellzoo.testing import contract_suite

    test_contract = contract_suite(["mymodel"], overrides={"mymodel": {"epochs": 2}})

or take the tests over every installed model in one line::

    from cellzoo.testing import *  # test_zoo_contract, tiny_annotate_adata

The fixtures (``zoo_pm``: a plugin manager with discovery blocked, in which a test registers
exactly the plugins it needs; ``cellzoo_home``: the test's own empty ``$CELLZOO_HOME``, set for
every test) come with cellzoo's pytest plugin (:mod:`cellzoo.testing.fixtures`, entry point
``pytest11``), which pytest loads by itself: no ``conftest.py`` needed.

Names resolve on first use, so that pytest loading the plugin imports neither numpy nor the
contract suite.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .fixtures import cellzoo_home as cellzoo_home
from .fixtures import zoo_pm as zoo_pm

if TYPE_CHECKING:
    from .contract import CHECKS as CHECKS
    from .contract import ContractCase as ContractCase
    from .contract import assert_valid_annotation as assert_valid_annotation
    from .contract import check_model as check_model
    from .contract import contract_suite as contract_suite
    from .contract import run_check as run_check
    from .data import log1p_normalised as log1p_normalised
    from .data import tiny_annotate_adata as tiny_annotate_adata
    from .data import tiny_images as tiny_images
    from .data import z_scored as z_scored

_LAZY = {
    "CHECKS": "contract",
    "ContractCase": "contract",
    "assert_valid_annotation": "contract",
    "check_model": "contract",
    "contract_suite": "contract",
    "run_check": "contract",
    "log1p_normalised": "data",
    "tiny_annotate_adata": "data",
    "tiny_images": "data",
    "z_scored": "data",
}

# what `from cellzoo.testing import *` brings into a test module
__all__ = ["contract_suite", "test_zoo_contract", "tiny_annotate_adata", "zoo_pm"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name == "test_zoo_contract":
        # built on first use, so that importing the fixtures alone does not discover plugins
        value = __getattr__("contract_suite")()
    else:
        raise AttributeError(f"module 'cellzoo.testing' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "test_zoo_contract"})
