"""SoftAdapt (Heydari, Thompson & Mehmood, arXiv:1912.12355): loss weights from the slopes of the losses.

For K loss parts, each with its ``window`` most recent values (oldest first):

* slope ``s_k``: forward finite difference of order ``p`` (default ``window - 1``) over the ``p + 1``
  most recent values, evaluated at the oldest of them (:func:`forward_slope`);
* softmax with a max shift and ε in the denominator:
  ``softmax_β(x)_k = e^{βx_k − m} / (Σ_j e^{βx_j − m} + ε)``, ``m = max_j βx_j``;
* ``softadapt``: ``w = softmax_β(s)``;
* ``softadapt_normalised``: ``w = softmax_β(s / Σ_j |s_j|)`` (``signed_sum=True``: ``s / Σ_j s_j``);
* ``softadapt_loss_weighted``: ``w_k = f_k e^{βs_k − m} / (Σ_j f_j e^{βs_j − m} + ε)``, ``f_k`` the
  mean of part ``k`` over the window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cellzoo.errors import InputError

from .config import NormalisedSoftAdaptConfig, SoftAdaptConfig
from .finite_difference import forward_difference_coefficients


def soft_max(x: np.ndarray, beta: float, epsilon: float, scale: np.ndarray | None = None) -> np.ndarray:
    """``scale_k · e^{βx_k − m} / (Σ_j scale_j · e^{βx_j − m} + ε)`` with ``m = max_j βx_j``.

    For β ≥ 0 the shift ``m`` equals the reference's ``β · max_j x_j``; for β < 0 it is the
    shift that keeps every exponent ≤ 0 (the reference's could overflow).
    """
    z = beta * np.asarray(x, dtype=np.float64)
    e = np.exp(z - z.max())
    if scale is not None:
        e = np.asarray(scale, dtype=np.float64) * e
    return e / (e.sum() + epsilon)


class SoftAdapt:
    """The original SoftAdapt: ``w = softmax_β(s)`` of the parts' slopes."""

    config_type = SoftAdaptConfig

    def __init__(self, config: SoftAdaptConfig | None = None) -> None:
        self.config = config if config is not None else self.config_type()

    # -- the parts -----------------------------------------------------------------------------

    def windows(self, histories: Sequence[Sequence[float]]) -> list[np.ndarray]:
        """The last ``window`` values of every part, as float arrays (checked: enough, finite)."""
        if len(histories) < 1:
            raise InputError("a loss weighting needs the history of at least one loss part, got none")
        need = self.config.stencil_order + 1
        out = []
        for k, history in enumerate(histories):
            values = np.array([float(v) for v in history], dtype=np.float64)[-self.config.window :]
            if len(values) < need:
                raise InputError(
                    f"loss part {k} has {len(values)} recorded values; an order-{self.config.stencil_order} "
                    f"slope needs at least {need} (window={self.config.window})"
                )
            if not np.all(np.isfinite(values)):
                raise InputError(f"loss part {k} has non-finite values {values.tolist()}")
            out.append(values)
        return out

    def slopes(self, histories: Sequence[Sequence[float]]) -> np.ndarray:
        """Forward-difference slope of every part (per recorded period)."""
        order = self.config.stencil_order
        coefficients = forward_difference_coefficients(order)
        return np.array([coefficients @ w[-(order + 1) :] for w in self.windows(histories)], dtype=np.float64)

    # -- the weights ---------------------------------------------------------------------------

    def weights(self, histories: Sequence[Sequence[float]]) -> list[float]:
        return soft_max(self.slopes(histories), self.config.beta, self.config.epsilon).tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


class NormalisedSoftAdapt(SoftAdapt):
    """``w = softmax_β(s / Σ_j |s_j|)``; the reference's ``s / Σ_j s_j`` with ``signed_sum=True``.

    When ``|divisor| ≤ epsilon`` the normalised slopes are 0 and the weights equal.
    """

    config_type = NormalisedSoftAdaptConfig

    def normalised_slopes(self, histories: Sequence[Sequence[float]]) -> np.ndarray:
        s = self.slopes(histories)
        divisor = s.sum() if self.config.signed_sum else np.abs(s).sum()
        if not abs(divisor) > self.config.epsilon:
            return np.zeros_like(s)
        return s / divisor

    def weights(self, histories: Sequence[Sequence[float]]) -> list[float]:
        return soft_max(self.normalised_slopes(histories), self.config.beta, self.config.epsilon).tolist()


class LossWeightedSoftAdapt(SoftAdapt):
    """``w_k ∝ f_k · e^{β s_k}``, ``f_k`` the mean of part ``k`` over the window (losses must be ≥ 0)."""

    def weights(self, histories: Sequence[Sequence[float]]) -> list[float]:
        windows = self.windows(histories)
        means = np.array([w.mean() for w in windows], dtype=np.float64)
        if np.any(means < 0):
            raise InputError(
                f"the loss-weighted SoftAdapt multiplies by each part's mean, which must be >= 0; got {means.tolist()}"
            )
        return soft_max(self.slopes(histories), self.config.beta, self.config.epsilon, scale=means).tolist()
