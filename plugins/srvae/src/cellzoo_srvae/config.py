"""SRCNN's and SRVAE's configurations: a light module (no torch) so listing the zoo stays fast."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cellzoo import TrainingConfig


@dataclass(frozen=True)
class _ImageTraining(TrainingConfig):
    """What every learned up-scaler here shares: scales, patches, steps, tiles.

    ``steps`` Adam updates of ``batch_size`` HR patches of ``patch`` pixels (with their MATLAB-
    bicubic LR versions, flipped and turned at random) per scale. ``tile`` > 0 up-scales large
    images in tiles of that many input pixels. TrainingConfig's validation and early-stopping
    fields (``val_fraction``, ``patience``, …) are not used; ``epochs`` is ignored in favour of
    ``steps``.
    """

    scales: tuple[int, ...] = (2, 4)
    patch: int = 32
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    val_fraction: float = 0.0
    tile: int = 0
    #: record the mean losses every this many steps
    log_every: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "scales", _ints(self.scales))
        problems = self.integer_problems(("steps", "patch", "log_every"))
        problems += self.integer_problems(("tile",), minimum=0)
        if (
            not isinstance(self.scales, tuple)
            or not self.scales
            or not all(isinstance(s, int) and s in (2, 4, 8) for s in self.scales)
        ):
            problems.append(f"scales={self.scales!r} must be one or more of 2, 4, 8 (powers of two)")
        elif isinstance(self.patch, int) and any(self.patch % s for s in self.scales):
            problems.append(f"patch={self.patch} must be a multiple of every scale {list(self.scales)}")
        self.reject(problems)


@dataclass(frozen=True)
class SrcnnConfig(_ImageTraining):
    """SRCNN 9-1-5 (Dong et al. 2014/2016): bicubic up-sampling, then conv 9×9 → ``n1`` ReLU, conv 1×1 →
    ``n2`` ReLU, conv 5×5 → 3, trained with the mean squared error.

    The paper trains on the Y channel with SGD (lr 1e-4, 1e-5 on the last layer) for 10⁸
    back-propagations on 33-pixel sub-images; here all three RGB channels (the paper's §4.4 RGB
    variant), Adam (lr 1e-3 → 1e-4 cosine) and 3,000 steps per scale, which train in about two
    minutes on two CPU cores.
    """

    n1: int = 64
    n2: int = 32
    lr: float = 1e-3
    steps: int = 3000

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reject(self.integer_problems(("n1", "n2")))


@dataclass(frozen=True)
class SrvaeConfig(_ImageTraining):
    """SRVAE (Heydari & Mehmood 2020): an introspective VAE on HR patches and a VAE on LR patches.

    Networks (per scale): the LR encoder/decoder and the HR encoder/decoder are residual
    convolutional stacks of ``channels`` filters (``blocks`` residual blocks per stage; average-
    pool down, nearest-neighbour up, LeakyReLU 0.2 as IntroVAE); the HR latent is a map of
    ``latent`` channels at the LR resolution, the LR latent ``lr_latent`` channels at the same.
    Losses (all means per element): reconstruction MSE of HR, LR and the super-resolved image
    (``w_rec``, ``w_lr``, ``w_sr``), KL of the real codes (``w_kl``), and IntroVAE's margin game with
    margin ``margin`` (nats per latent element) on the three kinds of fakes — HR reconstructions,
    prior samples, SR images (``w_adv``). See the plugin README for every choice.
    """

    channels: int = 32
    blocks: int = 1
    latent: int = 16
    lr_latent: int = 8
    w_rec: float = 0.01
    w_lr: float = 0.01
    w_sr: float = 1.0
    w_kl: float = 1e-5
    w_adv: float = 1e-5
    margin: float = 2.0
    lr: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = self.integer_problems(("channels", "blocks", "latent", "lr_latent"))
        for key in ("w_rec", "w_lr", "w_sr", "w_kl", "w_adv", "margin"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                problems.append(f"{key}={value!r} must be a number >= 0")
        self.reject(problems)


def _ints(value):
    try:
        return tuple(int(v) if float(v) == int(v) else v for v in value)
    except (TypeError, ValueError):
        return value
