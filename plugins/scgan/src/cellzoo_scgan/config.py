"""scGAN's and cscGAN's configurations: a light module (no torch) so listing the zoo stays fast."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cellzoo import TrainingConfig

#: the reference's number of outer training steps (``max_steps`` in scGAN's parameters)
PAPER_STEPS = 1_000_000


@dataclass(frozen=True)
class ScganConfig(TrainingConfig):
    """Architecture and WGAN-GP training recipe of scGAN (Marouf et al. 2020).

    Defaults are the reference's except the length of training: generator 128 → 256 → 512 →
    1024 → G (bias-free linear layers, BatchNorm with decay 0.999, ReLU; a ReLU output and LSN
    rescaling every cell to ``library_size`` = 20,000), critic G → 1024 → 512 → 256 → 1 (ReLU, no
    normalisation), gradient penalty ``gp_lambda`` = 10, ``critic_steps`` = 5 critic updates per
    generator update, AMSGrad with β = (0.5, 0.9) and a learning rate decaying exponentially from
    ``lr`` = 1e-4 to ``lr_final`` = 1e-5 over the run, batch 128.

    ``steps`` counts generator updates. The paper trains 1,000,000 of them; the default here
    (1,000) trains in minutes on two CPU cores and gives a rough model, not the paper's. With
    ``steps=0`` the length comes from ``epochs`` instead: one epoch is one pass of the critic over
    the training cells (``ceil(epochs · cells / (batch_size · critic_steps))`` generator steps).

    ``log_every`` sets how often the training curves (critic loss, generator loss, Wasserstein
    estimate, gradient penalty, learning rate, seconds) are recorded; ``checkpoint_every`` > 0
    calls the model's ``quality_trace(step, seconds, model)`` hook that often (see the README).
    The validation and early-stopping fields of :class:`cellzoo.TrainingConfig` (``val_fraction``,
    ``min_val_cells``, ``patience``, ``min_delta``, ``monitor``) and ``min_steps``,
    ``weight_decay`` are not used by a GAN; ``val_fraction`` defaults to 0 to say so.
    """

    # -- the training recipe: TrainingConfig's fields with scGAN's defaults
    batch_size: int = 128
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    eps: float = 1e-8
    val_fraction: float = 0.0
    # -- scGAN's own
    #: generator updates (0: derive them from ``epochs``); the paper: 1,000,000
    steps: int = 1000
    #: critic updates before every generator update
    critic_steps: int = 5
    #: weight of the gradient penalty (WGAN-GP's λ)
    gp_lambda: float = 10.0
    #: the learning rate reached at the last step (exponential decay from ``lr``); equal to ``lr``: constant
    lr_final: float = 1e-5
    #: AMSGrad (the reference) or plain Adam
    amsgrad: bool = True
    latent_dim: int = 128
    gen_layers: tuple[int, ...] = (256, 512, 1024)
    critic_layers: tuple[int, ...] = (1024, 512, 256)
    #: the per-cell total of the training cells and of every generated cell (LSN)
    library_size: float = 20000.0
    #: weight of the newest batch in BatchNorm's running statistics (the reference's decay 0.999)
    bn_momentum: float = 0.001
    #: record the mean losses every this many generator steps
    log_every: int = 100
    #: call ``model.quality_trace(step, seconds, model)`` every this many generator steps (0: never)
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "gen_layers", _widths(self.gen_layers))
        object.__setattr__(self, "critic_layers", _widths(self.critic_layers))
        problems = self.integer_problems(("steps", "checkpoint_every"), minimum=0)
        problems += self.integer_problems(("critic_steps", "latent_dim", "log_every"))
        for key in ("gen_layers", "critic_layers"):
            widths = getattr(self, key)
            if not isinstance(widths, tuple) or not widths or not all(isinstance(w, int) and w >= 1 for w in widths):
                problems.append(f"{key}={widths!r} must be one or more positive layer widths")
        if not _finite(self.gp_lambda) or self.gp_lambda < 0:
            problems.append(f"gp_lambda={self.gp_lambda!r} must be a number >= 0")
        if not _finite(self.lr_final) or self.lr_final <= 0:
            problems.append(f"lr_final={self.lr_final!r} must be positive")
        if not _finite(self.library_size) or self.library_size <= 0:
            problems.append(f"library_size={self.library_size!r} must be positive")
        if not _finite(self.bn_momentum) or not 0.0 < self.bn_momentum <= 1.0:
            problems.append(f"bn_momentum={self.bn_momentum!r} must be in (0, 1]")
        if not isinstance(self.amsgrad, bool):
            problems.append(f"amsgrad={self.amsgrad!r} must be true or false")
        self.reject(problems)

    def generator_steps(self, n_cells: int) -> int:
        """Generator updates of a fit on ``n_cells`` cells: ``steps``, or ``epochs`` passes of the critic."""
        if self.steps:
            return int(self.steps)
        critic_batches = self.epochs * math.ceil(n_cells / min(self.batch_size, max(n_cells, 1)))
        return max(1, math.ceil(critic_batches / self.critic_steps))


@dataclass(frozen=True)
class CscganConfig(ScganConfig):
    """cscGAN: scGAN's recipe with conditional BatchNorm in the generator and a projection critic.

    The fields and defaults are :class:`ScganConfig`'s.
    """


def _widths(value):
    try:
        return tuple(int(w) if float(w) == int(w) else w for w in value)
    except (TypeError, ValueError):
        return value


def _finite(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
