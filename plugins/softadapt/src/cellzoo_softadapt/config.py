"""Configurations of the loss weightings: frozen dataclasses, light modules (no numpy, no torch)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from cellzoo.errors import ConfigError


def _reject(name: str, problems: list[str]) -> None:
    if problems:
        raise ConfigError(f"invalid {name} configuration: " + "; ".join(problems))


@dataclass(frozen=True)
class SoftAdaptConfig:
    """SoftAdapt (``softadapt`` and ``softadapt_loss_weighted``).

    * ``beta`` — softmax temperature: > 0 favours the parts whose loss rises (or falls slowest),
      < 0 the parts that improve fastest, 0 gives equal weights. 0.1 as in the reference.
    * ``window`` — how many recent values of each part the slopes are computed from; with
      :class:`cellzoo.training.WeightedLoss` these are per-epoch means, and the weights first change
      once ``window`` epochs are seen. 5, the update period of the reference README's training
      loop (and the length of its worked example).
    * ``order`` — accuracy order of the forward finite difference (it uses ``order + 1`` points,
      the most recent ones of the window); ``None`` means ``window - 1``, the reference default.
      Any order in ``1 .. window - 1`` works (the reference raised for odd orders above 5).
    * ``epsilon`` — added to the softmax denominator (so the weights sum to slightly less than 1),
      1e-8 as in the reference.
    """

    beta: float = 0.1
    window: int = 5
    order: int | None = None
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("window", "order"):  # numpy integers (e.g. from a sweep) count as integers
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool | int):
                object.__setattr__(self, name, int(value))
        problems = self._problems()
        _reject(type(self).__name__, problems)

    def _problems(self) -> list[str]:
        problems = []
        if isinstance(self.beta, bool) or not isinstance(self.beta, numbers.Real) or not math.isfinite(self.beta):
            problems.append(f"beta={self.beta!r} must be a finite number")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 2:
            problems.append(f"window={self.window!r} must be an integer of at least 2 (a slope needs two values)")
        elif self.order is not None and (
            isinstance(self.order, bool) or not isinstance(self.order, int) or not 1 <= self.order <= self.window - 1
        ):
            problems.append(
                f"order={self.order!r} must be an integer in 1..{self.window - 1} for window={self.window} "
                "(an order-p forward difference needs p + 1 values), or None for window - 1"
            )
        if (
            isinstance(self.epsilon, bool)
            or not isinstance(self.epsilon, numbers.Real)
            or not math.isfinite(self.epsilon)
            or self.epsilon < 0
        ):
            problems.append(f"epsilon={self.epsilon!r} must be a finite number >= 0")
        return problems

    @property
    def stencil_order(self) -> int:
        """The finite-difference order in use (``order``, or ``window - 1`` when it is None)."""
        return self.window - 1 if self.order is None else int(self.order)


@dataclass(frozen=True)
class NormalisedSoftAdaptConfig(SoftAdaptConfig):
    """``softadapt_normalised``: SoftAdapt on slopes divided by a sum over the parts.

    ``signed_sum=False`` (default) divides by ``Σ|s_j|``, which keeps the slopes' order;
    ``signed_sum=True`` divides by the signed ``Σ s_j`` as the reference does, which reverses the
    order whenever the sum is negative (losses falling: the usual case; see the README). When the
    divisor's absolute value is at most ``epsilon`` (all slopes ≈ 0, or signed slopes that cancel)
    the normalised slopes are taken as 0, i.e. equal weights, instead of dividing by ≈ 0.
    """

    signed_sum: bool = False

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if not isinstance(self.signed_sum, bool):
            problems.append(f"signed_sum={self.signed_sum!r} must be True or False")
        return problems


@dataclass(frozen=True)
class FixedConfig:
    """``fixed``: constant weights, one per loss part, in the order of the parts (non-negative, finite)."""

    weights: tuple[float, ...] = (1.0, 1.0)

    def __post_init__(self) -> None:
        try:
            weights = tuple(float(w) for w in self.weights)
        except (TypeError, ValueError):
            _reject("FixedConfig", [f"weights={self.weights!r} must be a sequence of numbers"])
        object.__setattr__(self, "weights", weights)
        problems = []
        if not weights:
            problems.append("weights=() must name one weight per loss part")
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            problems.append(f"weights={weights!r} must all be finite and >= 0")
        _reject("FixedConfig", problems)


@dataclass(frozen=True)
class UncertaintyConfig:
    """``uncertainty``: one learnable log-variance ``s_k`` per loss part.

    ``n_parts`` must equal the number of loss parts (the parameters exist before the first step, so
    the caller's optimiser can hold them); ``init_log_variance`` is every ``s_k``'s starting value
    (0: weights start at 1, as equal weights).
    """

    n_parts: int = 2
    init_log_variance: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.n_parts, bool) or not isinstance(self.n_parts, numbers.Integral) or self.n_parts < 1:
            problems.append(f"n_parts={self.n_parts!r} must be a positive integer")
        if (
            isinstance(self.init_log_variance, bool)
            or not isinstance(self.init_log_variance, numbers.Real)
            or not math.isfinite(self.init_log_variance)
        ):
            problems.append(f"init_log_variance={self.init_log_variance!r} must be a finite number")
        _reject("UncertaintyConfig", problems)
