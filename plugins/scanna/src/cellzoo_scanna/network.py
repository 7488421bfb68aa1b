"""scANNA's network, written from the description of the reference implementation.

Shapes: ``x`` is cells × G genes; C classes. The forward graph (seed-systems §1.1):

* attention scores ``e = W_a x + b_a`` (a dense G × G ``Linear``), ``α = softmax(e)`` over genes,
  context ``γ = α ⊙ x̃`` where ``x̃`` is ``x`` after the optional masking dropout (the scores are
  computed on the unmasked ``x``);
* projection block 1: ``h1 = LayerNorm(γ + W_1 γ + b_1)``;
* one point-wise feed-forward block shared by both stages: ``f(h) = LayerNorm(h + W_b ReLU(W_a h))``
  with G → width → G;
* ``a1 = f(h1)``, ``h2 = Proj2(a1 + γ)``, ``a2 = f(h2)``;
* ``logits = LeakyReLU_0.01(W_c (a2 + γ) + b_c)``.

The reference code split each projection into "branches" with reshapes and permutations that
compose to the identity, so a projection block is exactly one dense G × G layer; the branch
setting is therefore not offered. Its projection-block dropout was constructed but never applied
and is not added here. Nothing squeezes the batch axis, so a batch of one cell works.
"""

from __future__ import annotations

import torch
from torch import nn

#: the reference applies LeakyReLU with torch's default slope to the logits
LEAKY_SLOPE = 0.01


def init_linear(module: nn.Module) -> None:
    """Xavier-uniform weights and a constant 0.01 bias for every ``Linear`` (the original's init)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.constant_(module.bias, 0.01)


class GeneAttention(nn.Module):
    """Softmax attention over genes: one distribution over the G genes per cell."""

    def __init__(self, n_genes: int, masking_fraction: float = 0.0):
        super().__init__()
        self.scores = nn.Linear(n_genes, n_genes)
        # "masking" drops expression values (not attention inputs) while training
        self.masking = nn.Dropout(masking_fraction) if masking_fraction > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = torch.softmax(self.scores(x), dim=-1)
        return alpha, alpha * self.masking(x)


class ProjectionBlock(nn.Module):
    """``LayerNorm(h + W h + b)`` with a dense G × G ``W``."""

    def __init__(self, n_genes: int):
        super().__init__()
        self.linear = nn.Linear(n_genes, n_genes)
        self.norm = nn.LayerNorm(n_genes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h + self.linear(h))


class PointwiseFeedForward(nn.Module):
    """``LayerNorm(h + W_2 ReLU(W_1 h))`` with G → width → G."""

    def __init__(self, n_genes: int, width: int = 128):
        super().__init__()
        self.expand = nn.Linear(n_genes, width)
        self.contract = nn.Linear(width, n_genes)
        self.norm = nn.LayerNorm(n_genes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h + self.contract(torch.relu(self.expand(h))))


class ScannaNet(nn.Module):
    """The projection-attention classifier; ``forward(x)`` returns ``(logits, α, γ)``."""

    def __init__(self, n_genes: int, n_classes: int, ffn_width: int = 128, masking_fraction: float = 0.0):
        super().__init__()
        self.n_genes, self.n_classes = int(n_genes), int(n_classes)
        self.attention = GeneAttention(n_genes, masking_fraction)
        self.projection1 = ProjectionBlock(n_genes)
        self.projection2 = ProjectionBlock(n_genes)
        # one module, used after both projection blocks (the reference shares these weights)
        self.feed_forward = PointwiseFeedForward(n_genes, ffn_width)
        self.classifier = nn.Linear(n_genes, n_classes)
        self.apply(init_linear)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        alpha, gamma = self.attention(x)
        a1 = self.feed_forward(self.projection1(gamma))
        a2 = self.feed_forward(self.projection2(a1 + gamma))
        logits = nn.functional.leaky_relu(self.classifier(a2 + gamma), LEAKY_SLOPE)
        return logits, alpha, gamma


class ScannaInference(nn.Module):
    """What ``infer`` computes and export traces: ``x → (proba, attention)`` in eval mode."""

    output_names = ("proba", "attention")

    def __init__(self, net: ScannaNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, alpha, _ = self.net(x)
        return torch.softmax(logits, dim=-1), alpha


def parameter_count(n_genes: int, n_classes: int, ffn_width: int = 128) -> int:
    """Trainable parameters of :class:`ScannaNet`, without building it.

    Three dense G × G layers with biases (attention and the two projections), three LayerNorms
    (two projections and the shared feed-forward block, 2·G each), the feed-forward block
    (2·G·width + width + G) and the classifier ((G + 1)·C):
    ``3G² + 10G + 2G·width + width + (G + 1)·C`` — 76,330,128 + 5,001·C at G = 5,000, width 128.
    """
    g, w, c = int(n_genes), int(ffn_width), int(n_classes)
    return 3 * g * g + 10 * g + 2 * g * w + w + (g + 1) * c
