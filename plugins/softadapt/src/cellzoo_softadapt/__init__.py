"""Loss weightings for cellzoo: SoftAdapt and the strategies it is compared with.

Public API (lazy: importing the package or its hooks imports neither numpy's math nor torch):

* :class:`SoftAdapt`, :class:`NormalisedSoftAdapt`, :class:`LossWeightedSoftAdapt` — the three
  SoftAdapt variants (numpy);
* :class:`EqualWeighting`, :class:`FixedWeighting` — the control and hand-set weights;
* :class:`UncertaintyWeighting` — Kendall, Gal & Cipolla's learnable weighting (torch);
* :func:`forward_difference_coefficients`, :func:`forward_slope` — the finite differences;
* :func:`soft_max` — SoftAdapt's max-shifted softmax with ε in the denominator;
* the config dataclasses.
"""

from __future__ import annotations

from cellzoo import lazy_module

__version__ = "0.1.0"

_API = {
    "SoftAdapt": "softadapt",
    "NormalisedSoftAdapt": "softadapt",
    "LossWeightedSoftAdapt": "softadapt",
    "soft_max": "softadapt",
    "forward_difference_coefficients": "finite_difference",
    "forward_slope": "finite_difference",
    "EqualWeighting": "simple",
    "FixedWeighting": "simple",
    "UncertaintyWeighting": "uncertainty",
    "SoftAdaptConfig": "config",
    "NormalisedSoftAdaptConfig": "config",
    "FixedConfig": "config",
    "UncertaintyConfig": "config",
}

__getattr__, __dir__, __all__ = lazy_module(__name__, _API, extra=["__version__"])
