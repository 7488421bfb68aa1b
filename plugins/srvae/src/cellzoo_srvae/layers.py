"""Building blocks shared by SRCNN and SRVAE: MATLAB's bicubic up-sampling inside the graph, residual blocks."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: the negative slope of every LeakyReLU (IntroVAE's)
SLOPE = 0.2


def cubic(x: float) -> float:
    """MATLAB's bicubic kernel (Keys, a = -0.5)."""
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def phase_kernels(scale: int) -> torch.Tensor:
    """``scale`` × 5 weights: output pixel ``scale·q + p`` is phase ``p`` over input pixels ``q-2 … q+2``.

    MATLAB maps output pixel ``o`` (0-based) to input coordinate ``(o + 0.5) / scale - 0.5``; for
    an integer factor the four cubic taps repeat with period ``scale``, so up-sampling is one
    5-tap convolution per phase, interleaved.
    """
    weights = torch.zeros(scale, 5, dtype=torch.float64)
    for p in range(scale):
        u = (p + 0.5) / scale - 0.5
        base = math.floor(u)
        for offset in range(base - 1, base + 3):
            weights[p, offset + 2] = cubic(u - offset)
    return weights / weights.sum(dim=1, keepdim=True)


def _symmetric_index(n: torch.Tensor | int, device: torch.device) -> torch.Tensor:
    """Indices of ``-2 … n+1`` mirrored into ``0 … n-1`` the way MATLAB pads ('symmetric': the edge repeats)."""
    i = torch.arange(-2, n + 2, device=device)
    i = torch.where(i < 0, -i - 1, i)
    i = torch.where(i >= n, 2 * n - 1 - i, i)
    return i.clamp(0, n - 1)


class BicubicUpsample(nn.Module):
    """Up-sampling by an integer factor equal to ``cellzoo.data.images.imresize`` (MATLAB's), any H × W.

    Fixed weights (a buffer, not learned, not saved), symmetric padding, one convolution per
    axis: it exports to ONNX with dynamic height and width.
    """

    def __init__(self, scale: int):
        super().__init__()
        self.scale = int(scale)
        self.register_buffer("kernel", phase_kernels(self.scale).float()[:, None, None, :], persistent=False)

    def _along_width(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        padded = x.index_select(3, _symmetric_index(w, x.device)).reshape(n * c, 1, h, w + 4)
        phases = F.conv2d(padded, self.kernel.to(x.dtype))  # (n·c) × scale × h × w
        return phases.permute(0, 2, 3, 1).reshape(n, c, h, w * self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._along_width(x)
        return self._along_width(x.transpose(2, 3)).transpose(2, 3)


class ResBlock(nn.Module):
    """conv 3×3 → LeakyReLU → conv 3×3, added to the input (no BatchNorm: see the README)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate"),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    """A ``k`` × ``k`` convolution that keeps the size (replicated borders: no dark frame on the output)."""
    return nn.Conv2d(c_in, c_out, k, padding=k // 2, padding_mode="replicate")
