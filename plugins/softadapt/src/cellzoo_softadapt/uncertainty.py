"""Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018, arXiv:1705.07115).

Each loss part ``k`` has a learnable log-variance ``s_k = log σ_k²`` and the total is

    L = Σ_k ( exp(−s_k) · L_k + s_k )

— the paper's Gaussian-likelihood objective ``Σ_k 1/(2σ_k²) L_k + log σ_k`` multiplied by 2, i.e.
**without** the ½ factors (the same minimiser; for a fixed ``s`` the gradients of the model
differ by the constant 2 only). At the optimum of ``s_k`` for a fixed ``L_k``, ``exp(−s_k) = 1/L_k``:
every part is scaled towards 1. ``weights`` returns the current ``exp(−s_k)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cellzoo.errors import ConfigError

from .config import UncertaintyConfig


class UncertaintyWeighting(nn.Module):
    """Learnable ``s_k`` (an ``nn.Module``: ``.to(device)``, ``state_dict`` work as usual)."""

    def __init__(self, config: UncertaintyConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else UncertaintyConfig()
        self.log_variance = nn.Parameter(torch.full((self.config.n_parts,), float(self.config.init_log_variance)))

    def _check(self, n: int) -> None:
        if n != self.config.n_parts:
            raise ConfigError(
                f"the uncertainty weighting was built for n_parts={self.config.n_parts} loss parts but was given {n}; "
                f"create it with n_parts={n}"
            )

    def combine(self, losses: Sequence[torch.Tensor]) -> torch.Tensor:
        """``Σ_k exp(−s_k) · L_k + s_k`` (gradients reach both the losses and ``s``)."""
        self._check(len(losses))
        s = self.log_variance
        if len(losses) and isinstance(losses[0], torch.Tensor):
            s = s.to(losses[0].device)
        total = 0.0
        for k, loss in enumerate(losses):
            total = total + torch.exp(-s[k]) * loss + s[k]
        return total

    forward = combine

    def weights(self, histories: Sequence[Sequence[float]]) -> list[float]:
        """The current ``exp(−s_k)`` (the histories are not used, only their number is checked)."""
        self._check(len(histories))
        with torch.no_grad():
            return torch.exp(-self.log_variance).cpu().tolist()

    def extra_repr(self) -> str:
        return f"n_parts={self.config.n_parts}"
