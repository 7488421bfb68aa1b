"""Testing helpers for cellzoo plugins: the model contract suite, fixtures and tiny data.

In a plugin's test module, either name the models to check::

    from cellzoo.testing import contract_suite

    test_contract = contract_suite(["mymodel"], overrides={"mymodel": {"epochs": 2}})

or take the tests over every installed model and the fixtures in one line::

    from cellzoo.testing import *  # test_zoo_contract, zoo_pm, tiny_annotate_adata

and in a ``conftest.py``, ``from cellzoo.testing import zoo_pm`` gives every test a plugin
manager with discovery blocked, in which it registers exactly the plugins it needs.
"""

from __future__ import annotations

from typing import Any

# re-exported (``X as X``) for explicit imports; __all__ below is what a star import takes
from .contract import CHECKS as CHECKS
from .contract import ContractCase as ContractCase
from .contract import assert_valid_annotation as assert_valid_annotation
from .contract import check_model as check_model
from .contract import contract_suite as contract_suite
from .contract import run_check as run_check
from .data import log1p_normalised as log1p_normalised
from .data import tiny_annotate_adata as tiny_annotate_adata
from .data import z_scored as z_scored
from .fixtures import zoo_pm as zoo_pm

# what `from cellzoo.testing import *` brings into a test module
__all__ = ["contract_suite", "test_zoo_contract", "tiny_annotate_adata", "zoo_pm"]


def __getattr__(name: str) -> Any:
    # built on first use, so that importing the fixtures alone does not discover plugins
    if name == "test_zoo_contract":
        value = contract_suite()
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cellzoo.testing' has no attribute {name!r}")
