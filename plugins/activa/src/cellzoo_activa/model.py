"""ACTIVA as a cellzoo ``generate`` model: training schedule, introspective updates, guided sampling."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cellzoo.errors import ArtifactError, ConfigError, TrainingError
from cellzoo.training import (
    LastGood,
    TorchGenerator,
    WeightedLoss,
    batch_bounds,
    dense_rows,
    finite_loss,
    seed_everything,
    select_device,
)
from cellzoo_actinn.network import ActinnNet

from .config import ActivaConfig
from .errors import SamplingBoundError
from .network import (
    ActivaDecoder,
    ActivaEncoder,
    cell_type_loss,
    kl_divergence,
    library_normalise,
    margin_loss,
    reconstruction_loss,
    reparameterise,
)

#: the three phases of the schedule, in order
PHASES = ("classifier", "vae", "introspective")
CLASSIFY_BATCH = 4096

QualityTrace = Callable[[int, float, "Activa"], Any]


class Activa(TorchGenerator):
    """ACTIVA (Heydari et al. 2022): an introspective VAE kept cell-type consistent by a frozen ACTINN.

    ``fit(adata, label_key)`` needs labels (they train the conditioner). Cells are scaled per
    cell to ``target_sum`` (20,000) without log — the space the decoder generates in
    (``output_state = "nonnegative"``). ``sample(n)`` decodes standard-normal noise;
    ``sample(n, cell_type)`` rejection-samples: latent batches are decoded, classified by the
    frozen ACTINN and the cells of the asked type kept, at most ``max_draws_factor × n`` draws
    (``last_acceptance_rate``, also in ``uns["cellzoo"]["acceptance_rate"]``).

    ``quality_trace``: set it to ``fn(epoch, seconds, model)`` to be called after every
    ``checkpoint_every``-th epoch with the training seconds so far (callbacks excluded); the model
    can be sampled inside it. Training is seeded; the callback's own random draws do not change it.
    """

    output_state: ClassVar[str] = "nonnegative"
    conditional: ClassVar[bool] = False
    #: ``sample(n, cell_type)`` works (classifier-guided rejection in ``_sample``) although ``_decode`` takes no codes
    samples_types: ClassVar[bool] = True
    golden_atol: ClassVar[float] = 1e-3
    golden_rtol: ClassVar[float] = 1e-4
    #: config overrides that let the contract suite's 60-cell data train in seconds
    # ~1 count per gene (target_sum 50 over the suite's 30 genes, the per-gene scale of 20,000 over ~17k
    # genes) and lr 1e-2: at 20,000 counts over 30 genes and lr 2e-4 a few epochs leave the decoder far
    # from the data's scale (gene-mean r ≈ 0 with the default generator loss, 0.63 with these)
    contract_test_config: ClassVar[Mapping[str, Any]] = {
        "epochs": 20, "num_cf": 2, "num_vae": 3, "batch_size": 16, "lr": 1e-2, "cf_lr": 1e-3, "max_draws_factor": 200,
        "target_sum": 50.0,
    }  # fmt: skip

    def __init__(self, config: ActivaConfig | None = None):
        super().__init__(config or ActivaConfig())
        self.latent_dim = int(self.config.latent_dim)
        self.quality_trace: QualityTrace | None = None
        #: share of decoded cells the conditioner gave the asked type in the last conditional ``sample`` (None: unconditional)
        self.last_acceptance_rate: float | None = None
        #: latent vectors decoded by the last conditional ``sample``
        self.last_draws: int | None = None
        #: the loss weighting of the introspective phase (built when training starts)
        self.weighted: WeightedLoss | None = None

    @property
    def output_target_sum(self) -> float:
        """The per-cell total cells are scaled to (``target_sum``, 20,000 by default), in and out."""
        return float(self.config.target_sum)

    # -- the modules -------------------------------------------------------------------------
    def build_nets(self, n_genes: int, n_classes: int) -> nn.ModuleDict:
        cfg = self.config
        return nn.ModuleDict(
            {
                "encoder": ActivaEncoder(n_genes, cfg.latent_dim, cfg.encoder_hidden),
                "decoder": ActivaDecoder(n_genes, cfg.latent_dim, cfg.decoder_hidden, cfg.output_lsn, cfg.target_sum),
                "classifier": ActinnNet(n_genes, n_classes, cfg.cf_hidden),
            }
        )

    def decoder(self) -> nn.Module:
        self._check_nets()
        return self.nets["decoder"]

    def _check_nets(self) -> None:
        if self.nets is None:
            self._check_fitted()

    def phase_of(self, epoch: int) -> str:
        """The phase of 1-based ``epoch``: ``classifier`` (< num_cf), ``vae`` (< num_vae) or ``introspective``."""
        if epoch < self.config.num_cf:
            return "classifier"
        if epoch < self.config.num_vae:
            return "vae"
        return "introspective"

    # -- training ----------------------------------------------------------------------------
    def _fit(self, X, y: np.ndarray | None) -> None:
        if y is None:
            raise ConfigError(
                "ACTIVA needs cell-type labels: they train its ACTINN conditioner (L_CT and guided sampling). "
                "Call fit(adata, label_key=...) (--label-key on the command line)"
            )
        if X.shape[0] < 2:
            raise ConfigError(f"ACTIVA needs at least 2 cells to train (BatchNorm), got {X.shape[0]}")
        cfg = self.config
        features = library_normalise(X, cfg.target_sum)
        seed_everything(cfg.seed)
        self.nets = self.build_nets(features.shape[1], len(self.classes))
        self.training_record = None
        device = select_device(cfg.device)
        forked = [device.index or torch.cuda.current_device()] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=forked, device_type=device.type if forked else "cuda"):
                torch.manual_seed(int(cfg.seed))
                self._train(features, np.asarray(y, dtype=np.int64), device)
        finally:
            self.nets.cpu().eval()

    def _weighted_loss(self) -> WeightedLoss:
        cfg = self.config
        weighting = None
        if cfg.loss_weighting is not None:
            from cellzoo import create_loss_weighting

            weighting = create_loss_weighting(cfg.loss_weighting)
        # parts: [L_CT + L_rec, L_margin] with weights (α2, α1), as the first ACTIVA re-weighted them
        return WeightedLoss(weighting, 2, initial=(cfg.alpha_2, cfg.alpha_1))

    def _train(self, X, y: np.ndarray, device: torch.device) -> None:
        cfg = self.config
        nets = self.nets.to(device)
        enc, dec, cf = nets["encoder"], nets["decoder"], nets["classifier"]
        self.weighted = weighted = self._weighted_loss()
        if isinstance(weighted.weighting, nn.Module):  # a learnable weighting (uncertainty) trains on the same device
            weighted.weighting.to(device)
        adam = {"lr": cfg.lr, "betas": cfg.betas, "eps": cfg.eps, "weight_decay": cfg.weight_decay}
        opt_e = torch.optim.Adam([*enc.parameters(), *weighted.parameters()], **adam)
        opt_d = torch.optim.Adam(dec.parameters(), **adam)
        opt_c = torch.optim.Adam(cf.parameters(), lr=cfg.cf_lr, weight_decay=cfg.cf_weight_decay)
        sched_c = torch.optim.lr_scheduler.StepLR(opt_c, step_size=cfg.cf_decay_every, gamma=cfg.cf_lr_decay)
        optimisers = {"encoder": opt_e, "decoder": opt_d, "classifier": opt_c}
        labels = torch.from_numpy(y)
        shuffle = torch.Generator().manual_seed(int(cfg.seed))
        n = X.shape[0]
        bounds = batch_bounds(n, int(cfg.batch_size))
        history: list[dict[str, Any]] = []
        train_seconds = 0.0
        frozen = False
        last_good = LastGood(nets)
        try:
            for epoch in range(1, int(cfg.epochs) + 1):
                started = time.perf_counter()
                phase = self.phase_of(epoch)
                if phase != "classifier" and not frozen:
                    cf.eval().requires_grad_(False)  # frozen from here on, as the reference never steps it again
                    frozen = True
                order = torch.randperm(n, generator=shuffle).numpy()
                sums: dict[str, float] = {}
                for step, (start, stop) in enumerate(bounds, 1):
                    rows = order[start:stop]
                    xb = dense_rows(X, rows).to(device, non_blocking=True)
                    if phase == "classifier":
                        values = self._classifier_step(xb, labels[rows].to(device), opt_c, sched_c, epoch, step)
                    elif phase == "vae":
                        values = self._vae_step(xb, opt_e, opt_d, epoch, step)
                    else:
                        values = self.introspective_step(xb, optimisers, epoch, step)
                    for key, value in values.items():
                        sums[key] = sums.get(key, 0.0) + value * len(rows)
                if phase == "introspective" and weighted.weighting is not None:
                    weighted.update()  # once per epoch (the first ACTIVA's SoftAdapt schedule)
                seconds = time.perf_counter() - started
                train_seconds += seconds
                record = {"epoch": epoch, "phase": phase, "seconds": round(seconds, 4)}
                record.update({k: v / n for k, v in sums.items()})
                history.append(record)
                self.training_record = self._record(history, train_seconds, n, X.shape[1])
                last_good.keep(f"epoch {epoch}")
                if self.quality_trace is not None and epoch % int(cfg.checkpoint_every) == 0:
                    self._call_quality_trace(epoch, train_seconds, device)
        except TrainingError as exc:
            raise last_good.restore(exc) from exc

    def _record(self, history: list[dict[str, Any]], seconds: float, n_cells: int, n_genes: int) -> dict[str, Any]:
        weighted = getattr(self, "weighted", None)
        return {
            "epochs_run": len(history),
            "seconds": round(seconds, 3),
            "seconds_per_epoch": round(seconds / max(1, len(history)), 4),
            "cells": int(n_cells),
            "genes": int(n_genes),
            "phases": {p: sum(1 for h in history if h["phase"] == p) for p in PHASES},
            "loss_weighting": self.config.loss_weighting,
            "weights_trace": None if weighted is None else [list(w) for w in weighted.trace],
            "history": history,
        }

    def _call_quality_trace(self, epoch: int, seconds: float, device: torch.device) -> None:
        modes = {name: module.training for name, module in self.nets.items()}
        was_fitted = self.fitted
        forked = [device.index or torch.cuda.current_device()] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=forked, device_type=device.type if forked else "cuda"):
                self.fitted = True  # sampling works inside the callback
                self.quality_trace(epoch, seconds, self)
        finally:
            self.fitted = was_fitted
            self.nets.to(device)
            for name, module in self.nets.items():
                module.train(modes[name])

    def _classifier_step(self, xb, yb, opt_c, sched_c, epoch: int, step: int) -> dict[str, float]:
        cf = self.nets["classifier"].train()
        loss = F.cross_entropy(cf(xb), yb)
        value = finite_loss(loss, "ACTINN conditioner loss", epoch, step)
        opt_c.zero_grad(set_to_none=True)
        loss.backward()
        opt_c.step()
        sched_c.step()  # ×cf_lr_decay every cf_decay_every iterations, as ACTINN
        return {"classifier_ce": value}

    def _vae_step(self, xb, opt_e, opt_d, epoch: int, step: int) -> dict[str, float]:
        enc, dec = self.nets["encoder"].train(), self.nets["decoder"].train()
        mu, logvar = enc(xb)
        x_rec = dec(reparameterise(mu, logvar))
        rec, kl = reconstruction_loss(x_rec, xb), kl_divergence(mu, logvar)
        loss = rec + kl
        finite_loss(loss, "VAE warm-up loss (L_rec + KL)", epoch, step)
        opt_e.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_e.step()
        opt_d.step()
        return {"rec": float(rec.detach()), "kl": float(kl.detach())}

    def generator_loss(self, x_rec: torch.Tensor, x_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The adversarial part of the generator loss, ½·(KL(Enc(x_r)) + KL(Enc(x_p))), and the KL pair.

        With ``faithful_detach`` the cells are detached before re-encoding (the released code), so
        the result has no gradient path to the decoder; otherwise (IntroVAE) it has one.
        """
        enc = self.nets["encoder"]
        if self.config.faithful_detach:
            x_rec, x_fake = x_rec.detach(), x_fake.detach()
        kl_rec, kl_fake = kl_divergence(*enc(x_rec)), kl_divergence(*enc(x_fake))
        return 0.5 * (kl_rec + kl_fake), torch.stack([kl_rec.detach(), kl_fake.detach()])

    def introspective_step(self, xb: torch.Tensor, optimisers: Mapping[str, Any], epoch: int = 0, step: int = 0):
        """One introspective update on the batch ``xb`` (scaled cells on the model's device); the loss values.

        1. x_r = Dec(z), z ~ Enc(x); x_p = Dec(ε), ε ~ N(0, I); L_rec, L_CT (frozen ACTINN), KL(x).
        2. Encoder: L_E = α1·L_margin + α2·(L_rec + L_CT), the hinges on *detached* x_r, x_p; only
           the encoder (and a learnable weighting) is stepped.
        3. Decoder: L_D = α1·½(KL(Enc'(x_r)) + KL(Enc'(x_p))) + α2·(L_rec + L_CT), re-encoded by the
           updated encoder Enc'; only the decoder is stepped. The α2 part is the gradient the
           released code leaves in the decoder from step 2; the α1 part is IntroVAE's adversarial
           term, which ``faithful_detach`` cuts (detached re-encodings), as the released code does.

        Gradients are taken with ``torch.autograd.grad`` for exactly the parameters each update
        moves, so nothing leaks between the two updates and no stale gradient is stepped.
        """
        cfg = self.config
        enc, dec, cf = self.nets["encoder"].train(), self.nets["decoder"].train(), self.nets["classifier"]
        if self.weighted is None:
            self.weighted = self._weighted_loss()
        weighted = self.weighted
        enc_params = [*enc.parameters(), *weighted.parameters()]
        dec_params = list(dec.parameters())

        mu, logvar = enc(xb)
        x_rec = dec(reparameterise(mu, logvar))
        x_fake = dec(torch.randn(xb.shape[0], cfg.latent_dim, device=xb.device, dtype=xb.dtype))
        rec = reconstruction_loss(x_rec, xb)
        with torch.no_grad():
            logits_real = cf(xb)
        ct = cell_type_loss(cf(x_rec), logits_real, cfg.faithful_reductions)
        kl_real = kl_divergence(mu, logvar)
        data_part = rec + ct

        # encoder update: hinge terms on detached reconstructions and samples
        kl_rec_e = kl_divergence(*enc(x_rec.detach()))
        kl_fake_e = kl_divergence(*enc(x_fake.detach()))
        margin = margin_loss(kl_real, kl_rec_e, kl_fake_e, cfg.m_plus, cfg.w_neg)
        loss_e = weighted.combine([data_part, margin])
        finite_loss(loss_e, "encoder loss L_E", epoch, step)
        grads = torch.autograd.grad(loss_e, enc_params, retain_graph=True, allow_unused=True)
        _step(optimisers["encoder"], enc_params, grads)

        # decoder update: re-encoded by the updated encoder (undetached unless faithful_detach)
        adversarial, _ = self.generator_loss(x_rec, x_fake)
        loss_d = weighted.combine([data_part, adversarial])
        finite_loss(loss_d, "decoder loss", epoch, step)
        grads = torch.autograd.grad(loss_d, dec_params, allow_unused=True)
        _step(optimisers["decoder"], dec_params, grads)

        alpha_2, alpha_1 = weighted.current
        if weighted.weighting is not None:
            weighted.record([float(data_part.detach()), float(margin.detach())])
        return {
            "rec": float(rec.detach()),
            "ct": float(ct.detach()),
            "kl": float(kl_real.detach()),
            "kl_rec": float(kl_rec_e.detach()),
            "kl_fake": float(kl_fake_e.detach()),
            "margin": float(margin.detach()),
            "loss_e": float(loss_e.detach()),
            "loss_g": float(alpha_1 * adversarial.detach()),
            "alpha_1": float(alpha_1),
            "alpha_2": float(alpha_2),
        }

    # -- sampling ----------------------------------------------------------------------------
    def classify(self, cells: np.ndarray) -> np.ndarray:
        """The frozen ACTINN conditioner's class codes for scaled cells (cells × genes)."""
        from cellzoo.training import predict_in_batches

        self._check_nets()
        cf = self.nets["classifier"]
        was_training = cf.training
        try:
            logits = predict_in_batches(cf, cells, batch_size=CLASSIFY_BATCH, device=self.config.device)
        finally:
            cf.train(was_training)
            cf.cpu()
        return np.asarray(logits).argmax(axis=1)

    def _sample(self, n: int, code: int | None, rng: np.random.Generator) -> np.ndarray:
        if code is None:
            self.last_acceptance_rate = self.last_draws = None
            return super()._sample(n, None, rng)
        cfg = self.config
        limit = int(cfg.max_draws_factor) * n
        kept: list[np.ndarray] = []
        found = drawn = 0
        while found < n and drawn < limit:
            k = min(int(cfg.draw_batch), limit - drawn)
            cells = self._decode(self.latent(k, rng), None)
            hits = cells[self.classify(cells) == code]
            kept.append(hits)
            found += len(hits)
            drawn += k
        self.last_acceptance_rate = found / drawn
        self.last_draws = drawn
        if found < n:
            raise SamplingBoundError(self.classes[code], n, found, drawn, int(cfg.max_draws_factor))
        return np.concatenate(kept)[:n]

    def sample(self, n: int, cell_type: str | None = None, seed: int | None = None):
        """``n`` generated cells (of ``cell_type`` when given, by rejection through the conditioner).

        A conditional sample records ``acceptance_rate`` and ``draws`` in ``uns["cellzoo"]``.
        """
        self.last_acceptance_rate = self.last_draws = None
        adata = super().sample(n, cell_type=cell_type, seed=seed)
        if self.last_acceptance_rate is not None:
            adata.uns["cellzoo"]["acceptance_rate"] = float(self.last_acceptance_rate)
            adata.uns["cellzoo"]["draws"] = int(self.last_draws)
        return adata

    # -- persistence -------------------------------------------------------------------------
    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        super().restore_artifact_state(state)
        if not self.classes:
            raise ArtifactError("config.json of an ACTIVA model lacks its classes; the artifact is damaged")
        self.nets = self.build_nets(len(self.manifest.genes), len(self.classes)).eval()
        training = state.get("training")
        self.training_record = dict(training) if isinstance(training, Mapping) else None


def _step(optimiser: torch.optim.Optimizer, params: list[torch.Tensor], grads) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = None if g is None else g.detach()
    optimiser.step()
    for p in params:
        p.grad = None


__all__ = ["PHASES", "Activa"]
