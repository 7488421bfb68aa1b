"""Tiny exportable torch annotators (24 genes) and a tiny conditional generator, for the export,
runtime and pipeline tests.

Registered through a plugin manager with discovery blocked (:func:`make_zoo`); the fixtures
``tiny_zoo``, ``tiny_model`` and ``tiny_artifact`` of ``tests/conftest.py`` build them once per module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import cellzoo
from cellzoo import Annotator, ModelSpec, TorchGenerator, TorchUpscaler, check_state_keys, hookimpl
from cellzoo.errors import TrainingError
from cellzoo.plugins import ZooPluginManager
from cellzoo.testing import tiny_annotate_adata
from cellzoo.training import LastGood, finite_loss

N_GENES = 24
N_CLASSES = 3

# -- a tiny exportable annotator --------------------------------------------------------------


@dataclass(frozen=True)
class TinyConfig:
    seed: int = 0
    hidden: int = 16
    epochs: int = 60
    lr: float = 0.05
    input_state: str = "log1p_norm"


class TinyNet(nn.Module):
    """Gene attention (softmax over genes), LayerNorm, an MLP head: x → (proba, attention)."""

    def __init__(self, n_genes: int, n_classes: int, hidden: int):
        super().__init__()
        self.scores = nn.Linear(n_genes, n_genes)
        self.norm = nn.LayerNorm(n_genes)
        self.hidden = nn.Linear(n_genes, hidden)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attention = torch.softmax(self.scores(x), dim=-1)
        h = torch.relu(self.hidden(self.norm(x + attention * x)))
        return torch.softmax(self.out(h), dim=-1), attention


class TinyAttention(Annotator):
    """Follows the export protocol: ``export_module()`` and ``export_output_names``."""

    export_output_names = ("proba", "attention")

    def __init__(self, config: TinyConfig | None = None):
        super().__init__(config or TinyConfig())
        self.input_state = self.config.input_state
        self.net: TinyNet | None = None

    def _build(self, n_genes: int, n_classes: int) -> TinyNet:
        torch.manual_seed(self.config.seed)
        return TinyNet(n_genes, n_classes, self.config.hidden)

    def _fit(self, X, y: np.ndarray) -> None:
        X = torch.from_numpy(np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32))
        target = torch.from_numpy(y)
        self.net = self._build(X.shape[1], len(self.classes))
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)
        for _ in range(self.config.epochs):
            optimizer.zero_grad()
            proba, _ = self.net(X)
            loss = nn.functional.nll_loss(torch.log(proba + 1e-9), target)
            loss.backward()
            optimizer.step()
        self.net.eval()

    def _outputs(self, X) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
        with torch.inference_mode():
            proba, attention = self.export_module()(torch.from_numpy(X))
        return proba.numpy(), attention.numpy()

    def _predict_proba(self, X, **kwargs) -> np.ndarray:
        return self._outputs(X)[0]

    def export_module(self) -> nn.Module:
        self._check_fitted()
        return self.net.eval()

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        proba, attention = self._outputs(inputs["x"])
        return {"proba": proba, "attention": attention}

    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {k: v.detach().numpy().copy() for k, v in self.net.state_dict().items()}

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        expected = self.state_tensors()
        check_state_keys(expected, tensors, self.name)
        self.net.load_state_dict({k: torch.as_tensor(np.asarray(tensors[k])) for k in expected}, strict=True)
        self.net.eval()

    def restore_artifact_state(self, state: Mapping) -> None:
        super().restore_artifact_state(state)
        self.net = self._build(len(self.manifest.genes), len(self.classes)).eval()


class NoisyModule(nn.Module):
    """Adds fresh random noise on every call: torch and onnxruntime cannot agree."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        proba, attention = self.net(x)
        return proba + 0.1 * torch.rand_like(proba), attention


class NoisyAttention(TinyAttention):
    def export_module(self) -> nn.Module:
        return NoisyModule(super().export_module())


class BakedBatchModule(nn.Module):
    """Reshapes with the batch size of the example input written in: not exportable with a dynamic batch."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        proba, attention = self.net(x)
        # int() turns the symbolic batch size into the example's number
        return proba * torch.ones(int(x.shape[0]), 1), attention


class BakedBatchAttention(TinyAttention):
    def export_module(self) -> nn.Module:
        return BakedBatchModule(super().export_module())


# -- a tiny conditional generator --------------------------------------------------------------


@dataclass(frozen=True)
class TinyGenConfig:
    seed: int = 0
    latent_dim: int = 4
    steps: int = 40
    lr: float = 0.05
    device: str = "cpu"
    #: the step whose loss is made NaN (0: none), for the keep-the-last-good-weights tests
    nan_at: int = 0


class TinyDecoder(nn.Module):
    """(z, y) → cells: a class embedding added to a linear map of z, then softplus (non-negative)."""

    def __init__(self, latent_dim: int, n_classes: int, n_genes: int):
        super().__init__()
        self.embed = nn.Embedding(n_classes, latent_dim)
        self.out = nn.Linear(latent_dim, n_genes)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.out(z + self.embed(y)))


class TinyGenerator(TorchGenerator):
    """Fitted to its classes' mean counts by a few Adam steps (enough to be class-dependent)."""

    conditional = True
    output_state = "nonnegative"

    def __init__(self, config: TinyGenConfig | None = None):
        super().__init__(config or TinyGenConfig())
        self.latent_dim = self.config.latent_dim

    def _build(self, n_genes: int) -> nn.ModuleDict:
        return nn.ModuleDict({"decoder": TinyDecoder(self.latent_dim, len(self.classes), n_genes)})

    def _fit(self, X, y: np.ndarray | None) -> None:
        torch.manual_seed(self.config.seed)
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
        self.nets = self._build(X.shape[1])
        means = torch.from_numpy(np.stack([X[y == k].mean(axis=0) for k in range(len(self.classes))]))
        opt = torch.optim.Adam(self.nets.parameters(), lr=self.config.lr)
        codes = torch.arange(len(self.classes))
        last_good = LastGood(self.nets)
        try:
            for step in range(1, self.config.steps + 1):
                opt.zero_grad()
                loss = ((self.nets["decoder"](torch.zeros(len(codes), self.latent_dim), codes) - means) ** 2).mean()
                if step == self.config.nan_at:
                    loss = loss * float("nan")
                finite_loss(loss, "tiny generator loss", 1, step)
                loss.backward()
                opt.step()
                last_good.keep(f"step {step}")
        except TrainingError as exc:
            raise last_good.restore(exc) from exc
        self.training_record = {"steps": self.config.steps, "final_loss": float(loss.detach())}

    def decoder(self) -> nn.Module:
        self._check_fitted()
        return self.nets["decoder"]

    def restore_artifact_state(self, state: Mapping) -> None:
        super().restore_artifact_state(state)
        self.training_record = state.get("training")
        self.nets = self._build(len(self.manifest.genes)).eval()


# -- a tiny up-scaler ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TinyUpConfig:
    seed: int = 0
    scales: tuple[int, ...] = (2, 4)
    steps: int = 30
    tile: int = 0
    device: str = "cpu"


class TinyUpNet(nn.Module):
    """Nearest up-sampling plus a learned 3×3 residual: traceable with any height and width."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(lr, scale_factor=self.scale, mode="nearest")
        return up + self.conv(up)


class TinyUpscaler(TorchUpscaler):
    def _build(self) -> nn.ModuleDict:
        return nn.ModuleDict({f"x{s}": TinyUpNet(s) for s in self.scales})

    def _fit(self, images) -> None:
        from cellzoo.data.images import downsample, random_patches

        torch.manual_seed(self.config.seed)
        self.nets = self._build()
        rng = np.random.default_rng(self.config.seed)
        for s in self.scales:
            patches = random_patches(images, 8 * s, 8, rng)
            hr = torch.from_numpy(np.ascontiguousarray(patches.transpose(0, 3, 1, 2)))
            lr = torch.from_numpy(np.stack([downsample(p, s) for p in patches]).transpose(0, 3, 1, 2).copy())
            opt = torch.optim.Adam(self.nets[f"x{s}"].parameters(), lr=0.01)
            for _ in range(self.config.steps):
                opt.zero_grad()
                loss = ((self.nets[f"x{s}"](lr) - hr) ** 2).mean()
                loss.backward()
                opt.step()
        self.training_record = {"steps": self.config.steps}

    def network(self, scale: int) -> nn.Module:
        self._check_fitted()
        return self.nets[f"x{self.checked_scale(scale)}"]

    def restore_artifact_state(self, state: Mapping) -> None:
        super().restore_artifact_state(state)
        self.nets = self._build().eval()


def _spec(name: str, builder: type, exportable: bool = True) -> ModelSpec:
    return ModelSpec(name, task="annotate", builder=builder, config=TinyConfig, exportable=exportable,
                     summary="A tiny attention classifier for export tests.", license="MIT")  # fmt: skip


class TinyPlugin:
    @hookimpl
    def cellzoo_models(self):
        return [
            _spec("tinyatt", TinyAttention),
            _spec("tinynoisy", NoisyAttention),
            _spec("tinybaked", BakedBatchAttention),
            _spec("tinyplain", TinyAttention, exportable=False),
            ModelSpec(
                "tinygen",
                task="generate",
                builder=TinyGenerator,
                config=TinyGenConfig,
                exportable=True,
                summary="A tiny conditional generator for export tests.",
                license="MIT",
            ),
            ModelSpec(
                "tinyup",
                task="upscale",
                builder=TinyUpscaler,
                config=TinyUpConfig,
                exportable=True,
                summary="A tiny up-scaler for export tests.",
                license="MIT",
            ),
        ]


def make_zoo() -> ZooPluginManager:
    pm = ZooPluginManager(discover=False)
    pm.register(TinyPlugin(), name="tiny", distribution="cellzoo-tiny", version="0.0.1")
    return pm


def train(name: str = "tinyatt", seed: int = 0, n_cells: int = 90, **config) -> Annotator:
    adata = tiny_annotate_adata(n_cells=n_cells, n_genes=N_GENES, n_classes=N_CLASSES, seed=seed)
    return cellzoo.create_model(name, seed=seed, **config).fit(adata, "cell_type")


def train_generator(seed: int = 0, n_cells: int = 90) -> TinyGenerator:
    adata = tiny_annotate_adata(n_cells=n_cells, n_genes=N_GENES, n_classes=N_CLASSES, seed=seed)
    return cellzoo.create_model("tinygen", seed=seed).fit(adata, "cell_type")
