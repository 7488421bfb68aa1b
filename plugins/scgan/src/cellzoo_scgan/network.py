"""scGAN's networks: the generator (optionally with conditional BatchNorm), the critic (optionally
with a projection head) and the WGAN-GP gradient penalty.

Initialisation follows the reference where torch has the same initialiser: Xavier-uniform
weights for the bias-free hidden layers of the generator and for the critic's output layer,
TensorFlow's ``variance_scaling(mode="FAN_AVG")`` (a normal truncated at two standard
deviations, standard deviation sqrt(1.3 · 2 / fan_avg)) for the generator's output layer and the
critic's hidden layers, zero biases, BatchNorm scales 1 and shifts 0.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

#: added to a cell's total before LSN divides by it (the reference's, float64 machine epsilon)
LSN_EPS = 2.220446049250313e-16
#: BatchNorm's epsilon in the reference
BN_EPS = 1e-5


def fan_avg_normal_(weight: torch.Tensor, factor: float = 2.0) -> torch.Tensor:
    """TensorFlow 1's ``variance_scaling_initializer(factor, mode="FAN_AVG", uniform=False)`` for a linear weight."""
    fan_out, fan_in = weight.shape
    std = math.sqrt(1.3 * factor / ((fan_in + fan_out) / 2.0))
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


class LibrarySizeNormalisation(nn.Module):
    """LSN: rescale every cell (row) so that its values sum to ``target`` (an all-zero cell stays zero)."""

    def __init__(self, target: float = 20000.0):
        super().__init__()
        self.target = float(target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.target / (x.sum(dim=1, keepdim=True) + LSN_EPS))


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (Dumoulin et al. 2016); statistics are shared."""

    def __init__(self, features: int, n_classes: int, momentum: float = 0.001):
        super().__init__()
        self.norm = nn.BatchNorm1d(features, eps=BN_EPS, momentum=momentum, affine=False)
        self.scale = nn.Embedding(n_classes, features)
        self.shift = nn.Embedding(n_classes, features)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.norm(h) * self.scale(y) + self.shift(y)


class ScganGenerator(nn.Module):
    """z → [Linear (no bias) → BatchNorm → ReLU] × hidden → Linear(G) → ReLU → LSN.

    With ``n_classes`` the BatchNorms are :class:`ConditionalBatchNorm` and ``forward`` takes the
    class codes ``y`` (int64, one per row) after ``z``. This is the module the zoo samples with
    and exports: inputs ``z`` (float32 [n, latent]) and, conditioned, ``y``; output ``cells``.
    """

    output_names = ("cells",)

    def __init__(
        self,
        n_genes: int,
        latent_dim: int = 128,
        hidden: tuple[int, ...] = (256, 512, 1024),
        library_size: float = 20000.0,
        n_classes: int | None = None,
        bn_momentum: float = 0.001,
    ):
        super().__init__()
        self.n_classes = None if n_classes is None else int(n_classes)
        widths = (int(latent_dim), *map(int, hidden))
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(widths))
        if self.n_classes is None:
            self.norms = nn.ModuleList(nn.BatchNorm1d(w, eps=BN_EPS, momentum=bn_momentum) for w in widths[1:])
        else:
            self.norms = nn.ModuleList(ConditionalBatchNorm(w, self.n_classes, bn_momentum) for w in widths[1:])
        self.output = nn.Linear(widths[-1], int(n_genes))
        self.lsn = LibrarySizeNormalisation(library_size)
        for linear in self.linears:
            nn.init.xavier_uniform_(linear.weight)
        fan_avg_normal_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = z
        for linear, norm in zip(self.linears, self.norms):
            h = linear(h)
            h = norm(h) if self.n_classes is None else norm(h, y)
            h = torch.relu(h)
        return self.lsn(torch.relu(self.output(h)))


class ScganCritic(nn.Module):
    """x → [Linear → ReLU] × hidden → Linear(1); no normalisation. Returns one score per cell ([n]).

    With ``n_classes``, a projection head adds ``⟨e_y, φ(x)⟩`` — the inner product of a learned
    per-class vector with the last hidden features — to the unconditional score (Miyato &
    Koyama 2018, as cscGAN's projection critic).
    """

    def __init__(self, n_genes: int, hidden: tuple[int, ...] = (1024, 512, 256), n_classes: int | None = None):
        super().__init__()
        self.n_classes = None if n_classes is None else int(n_classes)
        widths = (int(n_genes), *map(int, hidden))
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.output = nn.Linear(widths[-1], 1)
        for linear in self.linears:
            fan_avg_normal_(linear.weight)
            nn.init.zeros_(linear.bias)
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        if self.n_classes is not None:
            self.projection = nn.Embedding(self.n_classes, widths[-1])
            # Xavier-uniform as TensorFlow computes it for the reference's [classes, features, 1] variable
            limit = math.sqrt(6.0 / (self.n_classes * (widths[-1] + 1)))
            nn.init.uniform_(self.projection.weight, -limit, limit)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for linear in self.linears:
            h = torch.relu(linear(h))
        score = self.output(h).squeeze(1)
        if self.n_classes is not None:
            score = score + (self.projection(y) * h).sum(dim=1)
        return score


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    alpha: torch.Tensor,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """WGAN-GP's ``E[(‖∇ₓ D(x̂)‖₂ − 1)²]`` on ``x̂ = real + α · (fake − real)``, α one per cell ([n] or [n, 1]).

    The graph is kept (``create_graph``) so that the penalty trains the critic.
    """
    alpha = alpha.reshape(-1, 1).to(real.dtype)
    mixed = (real + alpha * (fake - real)).detach().requires_grad_(True)
    scores = critic(mixed) if y is None else critic(mixed, y)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.norm(2, dim=1) - 1.0) ** 2).mean()
