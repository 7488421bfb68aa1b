"""The control (equal weights) and hand-set constant weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cellzoo.errors import ConfigError

from .config import FixedConfig


class EqualWeighting:
    """Every part weighs 1: ``L = Σ_k L_k`` — the control every other weighting is compared with."""

    config = None

    def __init__(self, config: Any = None) -> None:
        if config is not None:
            raise ConfigError(f"the equal weighting takes no configuration, got {config!r}")

    def weights(self, histories: Sequence[Sequence[float]]) -> list[float]:
        return [1.0] * len(histories)

    def __repr__(self) -> str:
        return "EqualWeighting()"


class FixedWeighting:
    """Constant weights ``w_k`` from the config: ``L = Σ_k w_k · L_k`` from the very first step.

    It implements ``combine`` so that :class:`cellzoo.training.WeightedLoss` uses the configured
    weights at once (``WeightedLoss`` otherwise starts every weighting at 1 until ``window``
    periods are recorded).
    """

    def __init__(self, config: FixedConfig | None = None) -> None:
        self.config = config if config is not None else FixedConfig()

    def _check(self, n: int) -> None:
        if n != len(self.config.weights):
            raise ConfigError(
                f"the fixed weighting has {len(self.config.weights)} weights {self.config.weights} "
                f"but was given {n} loss parts; set weights=(…) with one weight per part"
            )

    def weights(self, histories: Sequence[Sequence[float]]) -> list[float]:
        self._check(len(histories))
        return list(self.config.weights)

    def combine(self, losses: Sequence[Any]) -> Any:
        self._check(len(losses))
        return sum(w * loss for w, loss in zip(self.config.weights, losses))

    def __repr__(self) -> str:
        return f"FixedWeighting(weights={self.config.weights})"
