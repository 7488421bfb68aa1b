"""scANNA for cellzoo: an attention classifier whose gene attention ranks marker genes.

Public API (lazy, so importing the package or its hooks never imports torch):

* :class:`Scanna` — the ``annotate`` model (``fit``/``predict``/``explain``/``markers``);
* :class:`ScannaConfig` — its configuration;
* :class:`ScannaNet` — the bare ``torch.nn.Module`` (for plugins that build on it, e.g. N-ACT);
* :func:`parameter_count` — parameters of the network for a given size, without building it;
* :func:`rank_markers` — the attention / tf-idf marker ranking over per-class attention mass.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "Scanna": "model",
    "ScannaConfig": "config",
    "ScannaNet": "network",
    "ScannaInference": "network",
    "parameter_count": "network",
    "rank_markers": "markers",
    "tfidf_scores": "markers",
}

__all__ = sorted([*_API, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cellzoo_scanna' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
