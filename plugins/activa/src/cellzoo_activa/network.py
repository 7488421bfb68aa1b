"""ACTIVA's encoder and decoder, its per-cell input scaling and its loss terms.

Every formula here is restated from the description of the reference code (Heydari et al. 2022)
in our own words; see the README for where we differ from the released code.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from cellzoo import scale_to_total


def library_normalise(X, target_sum: float = 20000.0):
    """Each cell (row) of counts scaled to sum to ``target_sum``; no log. All-zero cells stay zero.

    Per cell, not per batch (the reference's LSN layer divided by the total of the whole batch).
    Sparse input stays sparse (CSR); dense input becomes float32 (:func:`cellzoo.scale_to_total`).
    """
    return scale_to_total(X, target_sum)


def _block(d_in: int, d_out: int) -> list[nn.Module]:
    # the reference order: Linear, then ReLU, then BatchNorm
    return [nn.Linear(d_in, d_out), nn.ReLU(), nn.BatchNorm1d(d_out)]


class ActivaEncoder(nn.Module):
    """G → 1024 → 512 → 256 → 2·z, every layer Linear → ReLU → BatchNorm, the μ/log σ² layer included.

    The ReLU + BatchNorm on the last layer is the reference's (unusual: it bounds μ and log σ²
    through the BN affine parameters); it is kept so that the released behaviour is reproduced.
    """

    def __init__(self, n_genes: int, latent_dim: int = 128, hidden: tuple[int, ...] = (1024, 512, 256)):
        super().__init__()
        widths = (int(n_genes), *map(int, hidden), 2 * int(latent_dim))
        layers: list[nn.Module] = []
        for d_in, d_out in itertools.pairwise(widths):
            layers += _block(d_in, d_out)
        self.layers = nn.Sequential(*layers)
        self.latent_dim = int(latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.layers(x).chunk(2, dim=-1)
        return mu, logvar


class ActivaDecoder(nn.Module):
    """z → 256 → 512 → 1024 (Linear → ReLU → BatchNorm) → G (Linear → ReLU): cells, library-size scaled.

    With ``lsn`` every generated cell is rescaled to ``target_sum`` (per cell; an all-zero cell
    stays zero). This is the module sampling runs and ONNX exports: input ``z`` float32 [n, z].
    """

    output_names = ("cells",)

    def __init__(
        self,
        n_genes: int,
        latent_dim: int = 128,
        hidden: tuple[int, ...] = (256, 512, 1024),
        lsn: bool = False,
        target_sum: float = 20000.0,
    ):
        super().__init__()
        widths = (int(latent_dim), *map(int, hidden))
        layers: list[nn.Module] = []
        for d_in, d_out in itertools.pairwise(widths):
            layers += _block(d_in, d_out)
        layers += [nn.Linear(widths[-1], int(n_genes)), nn.ReLU()]
        self.layers = nn.Sequential(*layers)
        self.lsn = bool(lsn)
        self.target_sum = float(target_sum)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.layers(z)
        if self.lsn:
            totals = x.sum(dim=-1, keepdim=True)
            x = x * (self.target_sum / torch.clamp(totals, min=torch.finfo(x.dtype).tiny))
        return x


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = μ + σ·ε with ε ~ N(0, I) drawn on μ's device and dtype (the reference always drew it on CUDA)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


# -- losses -------------------------------------------------------------------------------------


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ_latent (1 + log σ² − μ² − σ²), averaged over the cells."""
    return (-0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)).mean()


def reconstruction_loss(x_rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L_rec = Σ_genes (x_r − x)², averaged over the cells."""
    return (x_rec - x).pow(2).sum(dim=-1).mean()


def cell_type_loss(logits_rec: torch.Tensor, logits_real: torch.Tensor, faithful: bool = False) -> torch.Tensor:
    """L_CT = Σ_classes (ACTINN(x_r) − ACTINN(x))² on logits, averaged over cells (``faithful``: summed over cells)."""
    per_cell = (logits_rec - logits_real).pow(2).sum(dim=-1)
    return per_cell.sum() if faithful else per_cell.mean()


def margin_loss(
    kl_real: torch.Tensor, kl_rec: torch.Tensor, kl_fake: torch.Tensor, m_plus: float, w_neg: float = 0.5
) -> torch.Tensor:
    """L_margin = KL(x) + ½·w_neg·([m − KL(Enc(x_r))]⁺ + [m − KL(Enc(x_p))]⁺)."""
    return kl_real + 0.5 * w_neg * (F.relu(m_plus - kl_rec) + F.relu(m_plus - kl_fake))


def parameter_count(n_genes: int, latent_dim: int = 128) -> int:
    """Parameters (weights, biases, BN affine) of encoder + decoder at the default widths: 2,049·G + 1,420,544 at z=128."""
    enc = ActivaEncoder(n_genes, latent_dim)
    dec = ActivaDecoder(n_genes, latent_dim)
    return sum(p.numel() for p in itertools.chain(enc.parameters(), dec.parameters()))
