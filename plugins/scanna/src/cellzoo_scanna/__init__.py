"""scANNA for cellzoo: an attention classifier whose gene attention ranks marker genes.

Public API (lazy, so importing the package or its hooks never imports torch):

* :class:`Scanna` — the ``annotate`` model (``fit``/``predict``/``explain``/``markers``);
* :class:`ScannaConfig` — its configuration;
* :class:`ScannaNet` — the bare ``torch.nn.Module`` (for plugins that build on it, e.g. N-ACT);
* :func:`parameter_count` — parameters of the network for a given size, without building it;
* :func:`rank_markers` — the attention / tf-idf marker ranking over per-class attention mass.
"""

from __future__ import annotations

from cellzoo import lazy_module

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

__getattr__, __dir__, __all__ = lazy_module(__name__, _API, extra=["__version__"])
