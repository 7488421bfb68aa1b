"""Package attributes that import their module on first use, so listing stays cheap."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_module(
    module_name: str, api: Mapping[str, str], extra: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for package ``module_name``.

    ``api`` maps each public name to the submodule (relative to the package) that defines it;
    ``extra`` names defined in the package itself (``__version__``). Usage, in ``__init__.py``::

        __getattr__, __dir__, __all__ = lazy_module(__name__, {"Model": "model"}, extra=["__version__"])
    """
    names = sorted([*api, *extra])

    def __getattr__(name: str) -> Any:
        if name in api:
            value = getattr(importlib.import_module(f".{api[name]}", module_name), name)
            setattr(sys.modules[module_name], name, value)  # later lookups skip __getattr__
            return value
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
