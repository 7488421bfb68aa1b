"""ACTINN for cellzoo: the 100-50-25 MLP cell-type classifier with its own preprocessing.

Public API (lazy, so importing the package or its hooks never imports torch):

* :class:`Actinn` — the ``annotate`` model;
* :class:`ActinnConfig` — its configuration;
* :class:`ActinnNet` — the bare ``torch.nn.Module`` (for plugins that build on it, e.g. ACTIVA);
* :func:`scaled_log2`, :func:`gene_filter` — ACTINN's preprocessing;
* :func:`parameter_count` — parameters of the network for a given size.
"""

from __future__ import annotations

from cellzoo import lazy_module

__version__ = "0.1.0"

_API = {
    "Actinn": "model",
    "ActinnConfig": "config",
    "ActinnNet": "network",
    "ActinnInference": "network",
    "parameter_count": "network",
    "scaled_log2": "preprocessing",
    "gene_filter": "preprocessing",
}

__getattr__, __dir__, __all__ = lazy_module(__name__, _API, extra=["__version__"])
