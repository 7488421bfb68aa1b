"""scGAN and cscGAN for cellzoo: Wasserstein GANs (gradient penalty) that generate single cells.

Public API (lazy, so importing the package or its hooks never imports torch):

* :class:`Scgan`, :class:`Cscgan` — the ``generate`` models;
* :class:`ScganConfig`, :class:`CscganConfig` — their configurations;
* :class:`ScganGenerator`, :class:`ScganCritic` — the bare ``torch.nn.Module`` networks;
* :func:`gradient_penalty` — the WGAN-GP penalty term;
* :func:`library_normalise` — the per-cell scaling of the training counts.
"""

from __future__ import annotations

from cellzoo import lazy_module

__version__ = "0.1.0"

_API = {
    "Scgan": "model",
    "Cscgan": "model",
    "library_normalise": "model",
    "ScganConfig": "config",
    "CscganConfig": "config",
    "ScganGenerator": "network",
    "ScganCritic": "network",
    "ConditionalBatchNorm": "network",
    "gradient_penalty": "network",
}

__getattr__, __dir__, __all__ = lazy_module(__name__, _API, extra=["__version__"])
