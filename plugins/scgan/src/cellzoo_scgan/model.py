"""scGAN and cscGAN as cellzoo ``generate`` models."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from cellzoo import scale_to_total
from cellzoo.errors import ArtifactError, ConfigError, InputError, TrainingError
from cellzoo.training import LastGood, TorchGenerator, finite_loss, seed_everything, select_device

from .config import CscganConfig, ScganConfig
from .network import ScganCritic, ScganGenerator, gradient_penalty

_COUNTER = "num_batches_tracked"


def library_normalise(X: Any, target: float = 20000.0) -> Any:
    """Every cell (row) of the counts ``X`` scaled to sum to ``target`` (no log); all-zero cells stay zero.

    Dense input gives a float32 array, sparse input a float32 CSR matrix (:func:`cellzoo.scale_to_total`).
    """
    return scale_to_total(X, target)


class _RealCells:
    """Shuffled batches of training rows (and their class codes), reshuffled after every pass."""

    def __init__(self, X: Any, y: np.ndarray | None, batch_size: int, generator: torch.Generator):
        self.X = X
        self.y = None if y is None else torch.from_numpy(np.asarray(y, dtype=np.int64))
        self.n = X.shape[0]
        # every batch has the same size (the last, short one of a pass is dropped)
        self.batch_size = min(int(batch_size), self.n)
        self.generator = generator
        self.order: np.ndarray = np.zeros(0, dtype=np.int64)
        self.position = 0
        self.passes = 0

    def next(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > len(self.order):
            self.order = torch.randperm(self.n, generator=self.generator).numpy()
            self.position = 0
            self.passes += 1
        rows = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        block = self.X[rows]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).to(device)
        return x, None if self.y is None else self.y[rows].to(device)


class Scgan(TorchGenerator):
    """scGAN (Marouf et al. 2020): a WGAN-GP whose generator ends in a per-cell library-size normalisation.

    ``fit(adata)`` reads raw counts, scales every cell to ``library_size`` (20,000; no log) and
    trains the generator and critic; ``sample(n, seed=...)`` returns cells in that same scale
    (``output_state = "nonnegative"``, each cell summing to 20,000). ``self.nets`` holds
    ``generator`` and ``critic`` (both are saved; the generator alone is the decoder).

    Set :attr:`quality_trace` to a callable before ``fit`` and ``checkpoint_every`` > 0 in the
    config to have ``quality_trace(step, seconds, model)`` called during training (see README).
    """

    output_state: ClassVar[str] = "nonnegative"
    output_target_sum: ClassVar[float] = 20000.0
    conditional: ClassVar[bool] = False
    # cells sum to 20,000: absolute differences of float32 sums are ~1e-3 where values are ~1e3
    golden_atol: ClassVar[float] = 1e-3
    golden_rtol: ClassVar[float] = 1e-4
    export_atol: ClassVar[float] = 5e-2
    export_rtol: ClassVar[float] = 1e-3
    config_class: ClassVar[type] = ScganConfig
    #: config overrides that let the project's contract suite train on its 60-cell data in seconds
    contract_test_config: ClassVar[Mapping[str, Any]] = {
        "steps": 30, "lr": 3e-3, "lr_final": 3e-4, "bn_momentum": 0.1, "batch_size": 32, "latent_dim": 16,
        "gen_layers": (32, 64), "critic_layers": (64, 32), "device": "cpu",
    }  # fmt: skip

    def __init__(self, config: ScganConfig | None = None):
        super().__init__(config or self.config_class())
        self.latent_dim = int(self.config.latent_dim)
        #: ``fn(step, seconds, model)`` called every ``config.checkpoint_every`` generator steps during fit
        self.quality_trace: Callable[[int, float, Any], None] | None = None

    # -- the networks ---------------------------------------------------------------------------
    def _build_nets(self, n_genes: int, n_classes: int | None) -> nn.ModuleDict:
        cfg = self.config
        return nn.ModuleDict(
            {
                "generator": ScganGenerator(
                    n_genes, cfg.latent_dim, cfg.gen_layers, cfg.library_size, n_classes, cfg.bn_momentum
                ),
                "critic": ScganCritic(n_genes, cfg.critic_layers, n_classes),
            }
        )

    def _n_classes(self) -> int | None:
        return len(self.classes) if self.conditional else None

    def decoder(self) -> nn.Module:
        self._check_nets()
        return self.nets["generator"]

    def _check_nets(self) -> None:
        if self.nets is None:
            self._check_fitted()

    # -- sampling -------------------------------------------------------------------------------
    # -- training -------------------------------------------------------------------------------
    def _fit(self, X, y: np.ndarray | None) -> None:
        cfg = self.config
        if self.conditional and y is None:
            raise ConfigError(f"model {self.name!r} is a conditional generator: pass label_key")
        if X.shape[0] < 2:
            raise InputError(f"{self.name} needs at least 2 training cells (BatchNorm), got {X.shape[0]}")
        seed_everything(cfg.seed)
        device = select_device(cfg.device)
        cells = library_normalise(X, cfg.library_size)
        steps = cfg.generator_steps(X.shape[0])
        n_classes = self._n_classes()
        codes = y if self.conditional else None

        generator = torch.Generator().manual_seed(int(cfg.seed))
        self.nets = self._build_nets(X.shape[1], n_classes).to(device)
        gen, critic = self.nets["generator"], self.nets["critic"]
        gen.train()
        critic.train()
        opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad)
        opt_c = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad)
        real_cells = _RealCells(cells, codes, cfg.batch_size, generator)
        batch = real_cells.batch_size
        if self.conditional:
            class_p = torch.as_tensor(np.asarray(self.class_counts, dtype=np.float64) / sum(self.class_counts))

        def noise(n: int) -> torch.Tensor:
            return torch.randn(n, cfg.latent_dim, generator=generator).to(device)

        record: dict[str, Any] = {
            "steps_planned": steps, "critic_steps": cfg.critic_steps, "batch_size": batch,
            "generator_updates": 0, "critic_updates": 0, "log": [],
        }  # fmt: skip
        sums = np.zeros(4)  # critic loss, generator loss, Wasserstein estimate, gradient penalty
        counted = np.zeros(4)
        traced_seconds = 0.0
        started = time.perf_counter()
        decay = cfg.lr_final / cfg.lr

        last_good = LastGood(self.nets)
        try:
            for step in range(steps):
                lr = cfg.lr * decay ** (step / steps)
                for opt in (opt_g, opt_c):
                    for group in opt.param_groups:
                        group["lr"] = lr
                epoch = max(real_cells.passes, 1)

                # -- critic: critic_steps updates on real batches and freshly generated cells
                critic.requires_grad_(True)
                for _ in range(cfg.critic_steps):
                    real, y_real = real_cells.next(device)
                    with torch.no_grad():
                        fake = gen(noise(batch), y_real)
                    alpha = torch.rand(batch, generator=generator).to(device)
                    score_real = critic(real, y_real).mean()
                    score_fake = critic(fake, y_real).mean()
                    penalty = gradient_penalty(critic, real, fake, alpha, y_real)
                    loss_c = score_fake - score_real + cfg.gp_lambda * penalty
                    value = finite_loss(loss_c, f"{self.name} critic loss", epoch, step + 1)
                    opt_c.zero_grad(set_to_none=True)
                    loss_c.backward()
                    opt_c.step()
                    record["critic_updates"] += 1
                    sums[[0, 2, 3]] += (value, float((score_real - score_fake).detach()), float(penalty.detach()))
                    counted[[0, 2, 3]] += 1

                # -- generator: one update against the critic (whose weights are not trained here)
                critic.requires_grad_(False)
                y_fake = None
                if self.conditional:
                    y_fake = torch.multinomial(class_p, batch, replacement=True, generator=generator).to(device)
                loss_g = -critic(gen(noise(batch), y_fake), y_fake).mean()
                sums[1] += finite_loss(loss_g, f"{self.name} generator loss", epoch, step + 1)
                counted[1] += 1
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                record["generator_updates"] += 1

                done = step + 1
                if done % cfg.log_every == 0 or done == steps:
                    means = sums / np.maximum(counted, 1)
                    record["log"].append(
                        {
                            "step": done,
                            "critic_loss": round(float(means[0]), 6),
                            "generator_loss": round(float(means[1]), 6),
                            "wasserstein": round(float(means[2]), 6),
                            "gradient_penalty": round(float(means[3]), 6),
                            "lr": lr,
                            "seconds": round(time.perf_counter() - started - traced_seconds, 3),
                        }
                    )
                    sums[:], counted[:] = 0.0, 0.0
                    last_good.keep(f"generator step {done}")
                if (
                    self.quality_trace is not None
                    and cfg.checkpoint_every
                    and (done % cfg.checkpoint_every == 0 or done == steps)
                ):
                    traced_seconds += self._trace(done, time.perf_counter() - started - traced_seconds, device)
        except TrainingError as exc:
            raise last_good.restore(exc) from exc

        critic.requires_grad_(True)
        self.nets.cpu().eval()
        seconds = time.perf_counter() - started - traced_seconds
        record["seconds"] = round(seconds, 3)
        record["steps_per_second"] = round(steps / seconds, 3) if seconds > 0 else None
        record["epochs_of_critic_batches"] = round(record["critic_updates"] * batch / X.shape[0], 3)
        record["device"] = str(device)
        self.training_record = record

    def _trace(self, step: int, seconds: float, device: torch.device) -> float:
        """Call :attr:`quality_trace` with the model usable for sampling; the seconds the call took."""
        started = time.perf_counter()
        was_fitted = self.fitted
        self.fitted = True
        # the hook may draw from torch's global generator: keep training's stream intact
        with torch.random.fork_rng(devices=[]):
            try:
                self.quality_trace(step, seconds, self)
            finally:
                self.fitted = was_fitted
                self.nets.to(device)  # sampling moves the decoder to the CPU afterwards
                self.nets.train()
        return time.perf_counter() - started

    # -- persistence (tensors, decoding and the training record: TorchGenerator) ----------------
    # BatchNorm's ``num_batches_tracked`` counters are not saved: with a fixed momentum nothing reads
    # them, and the core's artifact writer turns 0-d arrays into shape (1,) (np.ascontiguousarray),
    # which strict loading then refuses. They are left at their freshly built value on load.
    def state_tensors(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in super().state_tensors().items() if not k.endswith(_COUNTER)}

    def state_names(self) -> list[str]:
        return [k for k in super().state_names() if not k.endswith(_COUNTER)]

    def load_state_tensors(self, tensors: Any) -> None:
        self._check_fitted()
        tensors = {k: v for k, v in tensors.items() if not k.endswith(_COUNTER)}
        counters = {k: v.detach().cpu().numpy() for k, v in self.nets.state_dict().items() if k.endswith(_COUNTER)}
        super().load_state_tensors({**tensors, **counters})

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        super().restore_artifact_state(state)
        if self.conditional and not self.classes:
            raise ArtifactError(f"config.json of {self.name!r} has no classes; a conditional model needs them")
        self.training_record = state.get("training")
        self.nets = self._build_nets(len(self.manifest.genes), self._n_classes()).eval()


class Cscgan(Scgan):
    """cscGAN: scGAN conditioned on the cell type — conditional BatchNorm in the generator, a projection critic.

    ``fit(adata, label_key)`` is required; ``sample(n, cell_type=T)`` feeds ``T``'s class code to
    the generator, ``sample(n)`` draws codes in the training proportions.
    """

    conditional: ClassVar[bool] = True
    config_class: ClassVar[type] = CscganConfig
