"""The networks: SRCNN 9-1-5, and SRVAE's two encoder/decoder pairs."""

from __future__ import annotations

import torch
from torch import nn

from .layers import SLOPE, BicubicUpsample, ResBlock, conv


class Srcnn(nn.Module):
    """Bicubic up-sampling (MATLAB's, in the graph), then patch extraction 9×9, non-linear mapping 1×1,
    reconstruction 5×5 (Dong et al.'s 9-1-5)."""

    def __init__(self, scale: int, n1: int = 64, n2: int = 32):
        super().__init__()
        self.upsample = BicubicUpsample(scale)
        self.body = nn.Sequential(conv(3, n1, 9), nn.ReLU(), conv(n1, n2, 1), nn.ReLU(), conv(n2, 3, 5))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.body(self.upsample(lr))


def _stack(c_in: int, channels: int, blocks: int) -> list[nn.Module]:
    return [conv(c_in, channels), nn.LeakyReLU(SLOPE), *[ResBlock(channels) for _ in range(blocks)]]


def _identity_1x1(c_in: int, c_out: int) -> nn.Conv2d:
    """A 1×1 convolution that starts as the identity on the first min(c_in, c_out) channels."""
    layer = nn.Conv2d(c_in, c_out, 1)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        for c in range(min(c_in, c_out)):
            layer.weight[c, c, 0, 0] = 1.0
    return layer


def _zero(layer: nn.Conv2d) -> nn.Conv2d:
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    return layer


class Encoder(nn.Module):
    """Image → (μ, log σ²) maps ``factor`` times smaller: space-to-depth (lossless), a residual stack,
    and a linear 1×1 shortcut to μ.

    The shortcut starts as the identity on the first ``3·factor²`` latent channels and the stack
    starts at zero, so a new encoder's μ *is* the image, rearranged: training starts from a
    pair that passes the picture through (see the README), not from noise.
    """

    def __init__(self, latent: int, channels: int, blocks: int, factor: int = 1):
        super().__init__()
        pixels = 3 * factor * factor
        self.latent = latent
        self.down = nn.PixelUnshuffle(factor) if factor > 1 else nn.Identity()
        self.body = nn.Sequential(*_stack(pixels, channels, blocks), _zero(conv(channels, 2 * latent)))
        self.shortcut = _identity_1x1(pixels, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.down(x)
        mu, logvar = self.body(x).chunk(2, dim=1)
        return mu + self.shortcut(x), logvar.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    """Latent map → image ``factor`` times larger: a residual stack plus a linear 1×1 shortcut, then
    depth-to-space. Starts as the inverse of a new :class:`Encoder`'s shortcut."""

    def __init__(self, latent: int, channels: int, blocks: int, factor: int = 1):
        super().__init__()
        pixels = 3 * factor * factor
        self.body = nn.Sequential(*_stack(latent, channels, blocks), _zero(conv(channels, pixels)))
        self.shortcut = _identity_1x1(latent, pixels)
        self.up = nn.PixelShuffle(factor) if factor > 1 else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(z) + self.shortcut(z))


class Srvae(nn.Module):
    """SRVAE at one scale: ``lr_encoder``/``lr_decoder`` (a VAE of LR images), ``hr_encoder``/``hr_decoder``
    (the introspective VAE of HR images, its encoder also the discriminator) and the fixed bicubic
    up-sampler that takes a reconstructed LR image to the HR encoder's input size.

    ``forward(lr)`` is the super-resolution path on the posterior means: LR → μ_L → LR
    reconstruction → bicubic ×scale → μ_H → HR decoder.
    """

    def __init__(self, scale: int, channels: int, blocks: int, latent: int, lr_latent: int):
        super().__init__()
        # the latent maps hold the picture's own values (3·factor² channels) plus `latent` more
        self.lr_encoder = Encoder(3 + lr_latent, channels, blocks)
        self.lr_decoder = Decoder(3 + lr_latent, channels, blocks)
        self.hr_encoder = Encoder(3 * scale * scale + latent, channels, blocks, scale)
        self.hr_decoder = Decoder(3 * scale * scale + latent, channels, blocks, scale)
        self.upsample = BicubicUpsample(scale)

    def lr_reconstruction(self, lr: torch.Tensor, sample: bool = False):
        mu, logvar = self.lr_encoder(lr)
        z = reparameterise(mu, logvar) if sample else mu
        return self.lr_decoder(z), mu, logvar

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        rec, _, _ = self.lr_reconstruction(lr)
        mu, _ = self.hr_encoder(self.upsample(rec))
        return self.hr_decoder(mu)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def kl_per_element(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per image, as the mean over its latent elements (nats): shape (batch,)."""
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).flatten(1).mean(dim=1)
