"""ACTIVA for cellzoo: a cell-type-informed introspective VAE that generates single cells.

Public API (lazy, so importing the package or its hooks never imports torch):

* :class:`Activa` — the ``generate`` model;
* :class:`ActivaConfig` — its configuration;
* :class:`ActivaEncoder`, :class:`ActivaDecoder` — the bare ``torch.nn.Module`` halves;
* :func:`library_normalise` — per-cell scaling of counts to a fixed total (no log);
* :func:`kl_divergence`, :func:`reconstruction_loss`, :func:`cell_type_loss`, :func:`margin_loss` — the loss terms.
"""

from __future__ import annotations

from cellzoo import lazy_module

__version__ = "0.1.0"

_API = {
    "Activa": "model",
    "SamplingBoundError": "errors",
    "ActivaConfig": "config",
    "ActivaEncoder": "network",
    "ActivaDecoder": "network",
    "library_normalise": "network",
    "kl_divergence": "network",
    "reconstruction_loss": "network",
    "cell_type_loss": "network",
    "margin_loss": "network",
    "parameter_count": "network",
}

__getattr__, __dir__, __all__ = lazy_module(__name__, _API, extra=["__version__"])
