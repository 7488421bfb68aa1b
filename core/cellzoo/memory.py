"""Will a training run fit in memory? An estimate made before any weight is allocated.

A model too large for the machine is otherwise found out by the kernel: the process is killed
(SIGKILL) with no message, and a benchmark loses the run without a reason. The estimate builds
the network on PyTorch's ``meta`` device (shapes, no storage), counts its parameters and adds
what training keeps besides them: float32 weights, their gradients and Adam's two moments (4 ×
4 bytes per parameter), plus the activations of one mini-batch (the outputs of every linear and
normalisation layer, kept for the backward pass, and their gradients). What is available is the
kernel's ``MemAvailable`` for the CPU, ``torch.cuda.mem_get_info`` for a CUDA device.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ResourceError

#: bytes per parameter in training: float32 weights, gradients and Adam's two moments
BYTES_PER_PARAMETER = 4 * 4
#: share of the available memory a run may plan to use (the rest: the data, Python, the allocator)
USABLE_SHARE = 0.8


@dataclass(frozen=True)
class MemoryEstimate:
    """What a training run needs: its parameters and the bytes they and one batch's activations take."""

    parameters: int
    parameter_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.parameter_bytes + self.activation_bytes


def estimate_training(build: Callable[[], nn.Module], batch_size: int) -> MemoryEstimate:
    """The memory Adam training of the module ``build()`` returns needs, without allocating it."""
    with torch.device("meta"):
        module = build()
    parameters = sum(p.numel() for p in module.parameters())
    widths = sum(
        m.out_features if isinstance(m, nn.Linear) else int(torch.Size(m.normalized_shape).numel())
        for m in module.modules()
        if isinstance(m, nn.Linear | nn.LayerNorm)
    )
    # each layer output is kept for the backward pass and gets a gradient of its own size
    activations = 2 * 4 * int(batch_size) * widths
    return MemoryEstimate(parameters, BYTES_PER_PARAMETER * parameters, activations)


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` in bytes (None when the platform does not say)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def check_training_memory(
    estimate: MemoryEstimate, device: torch.device, *, what: str, fix: str, available: int | None = None
) -> None:
    """Raise :class:`~cellzoo.errors.ResourceError` when ``estimate`` exceeds what ``device`` can give.

    ``what`` names the run ("training scanna on 30,727 genes"), ``fix`` says what to change.
    """
    available = available_bytes(device) if available is None else available
    if available is None or estimate.total_bytes <= USABLE_SHARE * available:
        return
    raise ResourceError(
        f"{what} needs about {_gb(estimate.total_bytes)} ({estimate.parameters:,} parameters: float32 weights, "
        f"gradients and Adam's two moments take {_gb(estimate.parameter_bytes)}, one batch's activations "
        f"{_gb(estimate.activation_bytes)}), more than the {_gb(USABLE_SHARE * available)} this run may use "
        f"({USABLE_SHARE:.0%} of the {_gb(available)} {device.type} memory available); {fix}"
    )


__all__ = ["MemoryEstimate", "available_bytes", "check_training_memory", "estimate_training"]
