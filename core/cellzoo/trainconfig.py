"""The training recipe every torch model shares, as a config base class that does not import torch.

:class:`TrainingConfig` holds the fields that :class:`cellzoo.training.TorchAnnotator` reads
(Adam, cross-entropy, a stratified validation split with early stopping, a floor on optimizer
steps, the device) and checks them in one ``__post_init__``. A plugin's config inherits it, sets
its own defaults by re-declaring a field, and adds its own fields and checks::

    @dataclass(frozen=True)
    class MyConfig(TrainingConfig):
        seed: int = 12345              # a different default; the field keeps its place and meaning
        hidden: int = 64               # a field of the architecture

        def __post_init__(self) -> None:
            super().__post_init__()    # the training fields
            self.reject([f"hidden={self.hidden!r} must be at least 1"] if self.hidden < 1 else [])

This module imports only the standard library and :mod:`cellzoo.errors`, so a plugin's config
module (imported to list the zoo) stays light; :mod:`cellzoo.training` re-exports the class.
"""

from __future__ import annotations

import contextlib
import math
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

#: what early stopping can watch on the validation cells
MONITORS = ("loss", "accuracy")
#: the device kinds :func:`cellzoo.training.select_device` knows (``cuda`` also as ``cuda:N``)
DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")


def device_problem(device: Any) -> str | None:
    """Why ``device`` is not a device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``), or None.

    Only the spelling is checked; whether the device is present is decided when training starts.
    """
    if not isinstance(device, str):
        return f"device={device!r} must be a string: one of {', '.join(DEVICE_KINDS)} (or cuda:N)"
    kind, _, ordinal = device.strip().lower().partition(":")
    if kind not in DEVICE_KINDS or (ordinal and (kind != "cuda" or not ordinal.isdigit())):
        return f"device {device!r} is not one of {', '.join(DEVICE_KINDS)} (or cuda:N)"
    return None


def _integer(value: Any) -> int | None:
    # ints and numpy integers; not bools, not floats (2.0 epochs is a mistake worth reporting)
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def integer_problems(config: Any, keys: Iterable[str], minimum: int = 1) -> list[str]:
    """A problem for each field of ``keys`` that is not an integer of at least ``minimum``."""
    problems = []
    for key in keys:
        value = getattr(config, key)
        number = _integer(value)
        if number is None or number < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            problems.append(f"{key}={value!r} must be {what}")
    return problems


def _number(value: Any) -> float:
    # a real number, or NaN for anything else, so that every range check below fails on it
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class TrainingConfig:
    """The shared training recipe of the zoo's torch models (what ``TorchAnnotator.train_net`` reads).

    Adam with ``lr``, ``betas``, ``eps`` and ``weight_decay`` on cross-entropy, in shuffled
    mini-batches of ``batch_size``, for ``epochs`` epochs — raised so that training makes at least
    ``min_steps`` optimizer steps. ``val_fraction`` of the training cells (stratified) is held out
    for early stopping on the validation ``monitor``, which stops after ``patience`` epochs without
    an improvement larger than ``min_delta`` and restores the best weights; it runs only when
    the held-out share has at least ``min_val_cells`` cells (else every cell trains).
    ``val_fraction=0`` turns early stopping off. ``seed`` seeds everything random in training.

    Subclasses change a default by re-declaring the field, add their own fields, and call
    ``super().__post_init__()`` before their own checks (see :meth:`reject`).
    """

    #: seeds the weights' initialisation, the shuffling, dropout and the validation split
    seed: int = 0
    #: passes over the training cells (raised for small data sets to reach ``min_steps``)
    epochs: int = 50
    batch_size: int = 128
    #: Adam's learning rate, betas, eps and (L2) weight decay
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    #: at least this many optimizer steps, whatever ``epochs`` says (0: exactly ``epochs`` epochs)
    min_steps: int = 0
    #: share of the training cells held out (stratified) for early stopping; 0 disables it
    val_fraction: float = 0.1
    #: early stopping only runs when the held-out share has at least this many cells (else all cells train)
    min_val_cells: int = 256
    #: epochs without improvement of the monitored value before training stops
    patience: int = 10
    #: the smallest change of the monitored value that counts as an improvement
    min_delta: float = 0.0
    #: what early stopping watches on the validation cells: "loss" (cross-entropy) or "accuracy"
    monitor: str = "loss"
    #: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps"
    device: str = "auto"

    def __post_init__(self) -> None:
        # JSON and TOML give lists; a value that is not two numbers stays as given for the message
        with contextlib.suppress(TypeError, ValueError):
            object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        self.reject(self.training_problems())

    def training_problems(self) -> list[str]:
        """What is wrong with the training fields (empty when nothing is)."""
        problems = integer_problems(self, ("seed", "min_steps", "min_val_cells"), minimum=0)
        problems += integer_problems(self, ("epochs", "batch_size"))
        if _integer(self.patience) is None or self.patience < 1:
            problems.append(
                f"patience={self.patience!r} must be a positive integer (use val_fraction=0 to disable early stopping)"
            )
        if not _number(self.lr) > 0:
            problems.append(f"lr={self.lr!r} must be positive")
        betas = self.betas
        if not isinstance(betas, tuple) or len(betas) != 2 or not all(0.0 <= _number(b) < 1.0 for b in betas):
            problems.append(f"betas={self.betas!r} must be two numbers in [0, 1)")
        if not _number(self.eps) >= 0:
            problems.append(f"eps={self.eps!r} must be >= 0")
        if not _number(self.weight_decay) >= 0:
            problems.append(f"weight_decay={self.weight_decay!r} must be >= 0")
        if not 0.0 <= _number(self.val_fraction) < 1.0:
            problems.append(f"val_fraction={self.val_fraction!r} must be in [0, 1)")
        if not _number(self.min_delta) >= 0:
            problems.append(f"min_delta={self.min_delta!r} must be >= 0")
        if self.monitor not in MONITORS:
            problems.append(f"monitor={self.monitor!r} must be one of {MONITORS}")
        device = device_problem(self.device)
        if device is not None:
            problems.append(device)
        return problems

    def integer_problems(self, keys: Iterable[str], minimum: int = 1) -> list[str]:
        """A problem for each field of ``keys`` that is not an integer of at least ``minimum`` (bools are not)."""
        return integer_problems(self, keys, minimum)

    def reject(self, problems: Iterable[str]) -> None:
        """Raise one :class:`~cellzoo.errors.ConfigError` listing ``problems``; nothing when there are none.

        The message names the configuration after its class (``ScannaConfig`` → "invalid scanna
        configuration: ...").
        """
        problems = list(problems)
        if problems:
            raise ConfigError(f"invalid {config_label(type(self))} configuration: " + "; ".join(problems))


def config_label(cls: type) -> str:
    """``ScannaConfig`` → ``"scanna"``, ``MyMethodConfig`` → ``"mymethod"`` (for error messages)."""
    name = re.sub(r"Config$", "", cls.__name__) or cls.__name__
    return name.lower()
