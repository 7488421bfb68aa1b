"""ACTINN's network and the inference graph that carries its preprocessing."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


def init_linear(module: nn.Module) -> None:
    """Xavier-uniform weights and a constant 0.01 bias (the reference initialisation)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.constant_(module.bias, 0.01)


class ActinnNet(nn.Module):
    """G → 100 → 50 → 25 → C with ReLU between layers; returns logits (softmax is in the loss)."""

    def __init__(self, n_genes: int, n_classes: int, hidden: tuple[int, ...] = (100, 50, 25)):
        super().__init__()
        widths = (int(n_genes), *map(int, hidden))
        layers: list[nn.Module] = []
        for d_in, d_out in itertools.pairwise(widths):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], int(n_classes)))
        self.layers = nn.Sequential(*layers)
        self.apply(init_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ActinnInference(nn.Module):
    """``x`` (log1p-normalised, the model's full gene list) → class probabilities.

    The per-cell scaling, log2(x+1) and gene selection run inside the graph, so an exported
    model takes the same input as the Python model and cannot be fed unfiltered genes.
    """

    output_names = ("proba",)

    def __init__(self, net: ActinnNet, kept_genes: torch.Tensor, scale_to: float = 20000.0):
        super().__init__()
        self.net = net
        self.scale_to = float(scale_to)
        # derived from config.json (the kept-gene list), so not part of the weight file
        self.register_buffer("kept_genes", kept_genes.to(torch.int64), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        counts = torch.expm1(x)
        totals = counts.sum(dim=-1, keepdim=True)
        # an all-zero cell stays zero instead of becoming 0/0
        scaled = counts / torch.clamp(totals, min=torch.finfo(counts.dtype).tiny) * self.scale_to
        return torch.index_select(torch.log1p(scaled) / math.log(2.0), -1, self.kept_genes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(self.features(x)), dim=-1)


class ActinnExport(nn.Module):
    """:class:`ActinnInference` with the gene selection folded into the first layer.

    Dropped genes get zero weights instead of a gather along the gene axis: the same numbers
    (|Δproba| ≈ 1e-6) but onnxruntime spends no time gathering columns, which cost it more than
    the network itself (profiled: 241k vs 27k cells/s at batch 256, 765 genes).
    """

    output_names = ("proba",)

    def __init__(self, net: ActinnNet, kept_genes: torch.Tensor, n_genes: int, scale_to: float = 20000.0):
        super().__init__()
        first = net.layers[0]
        weight = torch.zeros(first.out_features, int(n_genes), dtype=first.weight.dtype)
        weight[:, kept_genes.to(torch.int64)] = first.weight.detach().cpu()
        self.first = nn.Linear(int(n_genes), first.out_features)
        with torch.no_grad():
            self.first.weight.copy_(weight)
            self.first.bias.copy_(first.bias.detach().cpu())
        self.rest = net.layers[1:]
        self.scale_to = float(scale_to)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        counts = torch.expm1(x)
        totals = counts.sum(dim=-1, keepdim=True)
        scaled = counts / torch.clamp(totals, min=torch.finfo(counts.dtype).tiny) * self.scale_to
        return torch.softmax(self.rest(self.first(torch.log1p(scaled) / math.log(2.0))), dim=-1)


def parameter_count(n_genes: int, n_classes: int, hidden: tuple[int, ...] = (100, 50, 25)) -> int:
    """Weights and biases of :class:`ActinnNet` (100·G + 6,425 + 26·C for the default widths)."""
    widths = (int(n_genes), *map(int, hidden), int(n_classes))
    return sum(a * b + b for a, b in itertools.pairwise(widths))
