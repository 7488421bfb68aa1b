"""SRCNN and SRVAE as cellzoo ``upscale`` models: one network per scale, trained on aligned HR/LR patches."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cellzoo import PatchPairs
from cellzoo.errors import TrainingError
from cellzoo.training import LastGood, TorchUpscaler, finite_loss, seed_everything

from .config import SrcnnConfig, SrvaeConfig
from .networks import Srcnn, Srvae, kl_per_element, reparameterise


def _tensor(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """n × H × W × C float32 → n × C × H × W on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).to(device)


class _PatchTrained(TorchUpscaler):
    """Trains ``self.nets["x<s>"]`` for every scale on random patch pairs, ``config.steps`` steps each.

    A subclass builds the network of one scale (:meth:`_network`) and makes one training step
    (:meth:`_step`, returning its named losses); the patches, the seeding, the learning-rate
    schedule (cosine from ``lr`` to ``lr / 10``), the loss curve and keeping the last finite
    weights are done here.
    """

    golden_atol: ClassVar[float] = 1e-5
    golden_rtol: ClassVar[float] = 1e-4
    export_atol: ClassVar[float] = 1e-4
    export_rtol: ClassVar[float] = 1e-3
    #: small networks and few steps, so the project's contract suite trains in seconds
    contract_test_config: ClassVar[Mapping[str, Any]] = {"steps": 150, "patch": 16, "batch_size": 8}

    def _network(self, scale: int) -> nn.Module:
        raise NotImplementedError

    def _optimisers(self, net: nn.Module) -> list[torch.optim.Optimizer]:
        cfg = self.config
        return [
            torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
        ]

    def _step(self, net: nn.Module, opts: list, hr: torch.Tensor, lr: torch.Tensor, step: int) -> dict[str, float]:
        raise NotImplementedError

    def _build(self) -> nn.ModuleDict:
        return nn.ModuleDict({f"x{s}": self._network(s) for s in self.scales})

    def network(self, scale: int) -> nn.Module:
        self._check_fitted()
        return self.nets[f"x{self.checked_scale(scale)}"]

    def _fit(self, images: list[np.ndarray]) -> None:
        cfg = self.config
        seed_everything(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        device = self.device
        self.nets = self._build().to(device).train()
        record: dict[str, Any] = {"steps": cfg.steps, "patch": cfg.patch, "batch_size": cfg.batch_size, "scales": {}}
        last_good = LastGood(self.nets)
        started = time.perf_counter()
        try:
            for scale in self.scales:
                record["scales"][f"x{scale}"] = self._train_scale(
                    scale, PatchPairs(images, scale, cfg.patch), rng, device, last_good
                )
        except TrainingError as exc:
            raise last_good.restore(exc) from None
        finally:
            self.nets.to("cpu").eval()
        record["seconds"] = round(time.perf_counter() - started, 2)
        self.training_record = record

    def _train_scale(self, scale, pairs, rng, device, last_good) -> dict[str, Any]:
        cfg = self.config
        net = self.nets[f"x{scale}"]
        opts = self._optimisers(net)
        started, log, sums, count = time.perf_counter(), [], {}, 0
        for step in range(cfg.steps):
            rate = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
            for opt in opts:
                for group in opt.param_groups:
                    group["lr"] = rate
            hr, lr = pairs.sample(cfg.batch_size, rng)
            losses = self._step(net, opts, _tensor(hr, device), _tensor(lr, device), step + 1)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                log.append({"step": step + 1, **{k: round(v / count, 6) for k, v in sums.items()}, "lr": rate})
                sums, count = {}, 0
                last_good.keep(f"×{scale} step {step + 1}")
        return {"seconds": round(time.perf_counter() - started, 2), "log": log}

    def restore_artifact_state(self, state: Mapping) -> None:
        super().restore_artifact_state(state)
        self.training_record = state.get("training")
        self.nets = self._build().eval()


class SrcnnModel(_PatchTrained):
    """SRCNN 9-1-5 (Dong et al.): bicubic up-sampling followed by three convolutions, trained on MSE."""

    config_class: ClassVar[type] = SrcnnConfig
    contract_expected_failures: ClassVar[Mapping[str, str]] = {
        "upscale.learns": (
            "SRCNN maps the bicubic image to the output from random weights (no residual): it needs ~2,000 steps "
            "to pass bicubic, and on the contract's 32-pixel images 1,000 steps still leave it below nearest at ×2"
        )
    }

    def _network(self, scale: int) -> nn.Module:
        return Srcnn(scale, self.config.n1, self.config.n2)

    def _step(self, net, opts, hr, lr, step) -> dict[str, float]:
        loss = F.mse_loss(net(lr), hr)
        value = finite_loss(loss, f"{self.name} loss", 1, step)
        opts[0].zero_grad(set_to_none=True)
        loss.backward()
        opts[0].step()
        return {"mse": value}


class SrvaeModel(_PatchTrained):
    """SRVAE: an introspective VAE of HR patches, a VAE of LR patches, and the path between them.

    One step, as IntroVAE's (Huang et al. 2018), with two optimisers: the *encoder side* (HR
    encoder, LR encoder and decoder) and the *HR decoder*. Fakes are the HR reconstructions,
    images decoded from prior samples and the super-resolved images. The encoder side minimises
    ``w_kl·KL(real) + w_adv·Σ_fakes [margin − KL(E_H(fake))]⁺`` (fakes detached) plus the HR,
    LR and SR reconstruction errors; the decoder minimises ``w_adv·Σ_fakes KL(E_H(fake))`` plus
    the HR and SR reconstruction errors — the adversarial gradient reaches the decoder through
    the encoder, which its step does not update. Both sides step on gradients of the same forward
    pass (simultaneous updates).
    """

    config_class: ClassVar[type] = SrvaeConfig

    def _network(self, scale: int) -> nn.Module:
        c = self.config
        return Srvae(scale, c.channels, c.blocks, c.latent, c.lr_latent)

    def _optimisers(self, net: Srvae) -> list[torch.optim.Optimizer]:
        c = self.config
        encoder_side = [*net.hr_encoder.parameters(), *net.lr_encoder.parameters(), *net.lr_decoder.parameters()]
        return [
            torch.optim.Adam(params, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay)
            for params in (encoder_side, list(net.hr_decoder.parameters()))
        ]

    def _step(self, net: Srvae, opts, hr, lr, step) -> dict[str, float]:
        c = self.config
        opt_e, opt_d = opts
        # -- the forward passes: HR through its VAE, LR through its VAE and on through the HR pair
        mu, logvar = net.hr_encoder(hr)
        hr_rec = net.hr_decoder(reparameterise(mu, logvar))
        lr_rec, mu_l, logvar_l = net.lr_reconstruction(lr, sample=True)
        sr = net(lr)  # the super-resolution path as inference runs it: posterior means, no noise
        prior = net.hr_decoder(torch.randn_like(mu))
        fakes = (hr_rec, prior, sr)

        rec_hr, rec_sr, rec_lr = F.mse_loss(hr_rec, hr), F.mse_loss(sr, hr), F.mse_loss(lr_rec, lr)
        kl_real = kl_per_element(mu, logvar).mean()
        kl_lr = kl_per_element(mu_l, logvar_l).mean()
        hinge = sum(F.relu(c.margin - kl_per_element(*net.hr_encoder(f.detach()))).mean() for f in fakes)
        loss_e = c.w_kl * (kl_real + kl_lr) + c.w_adv * hinge + c.w_rec * rec_hr + c.w_sr * rec_sr + c.w_lr * rec_lr
        fooled = sum(kl_per_element(*net.hr_encoder(f)).mean() for f in fakes)
        loss_d = c.w_adv * fooled + c.w_rec * rec_hr + c.w_sr * rec_sr
        value_e = finite_loss(loss_e, f"{self.name} encoder loss", 1, step)
        value_d = finite_loss(loss_d, f"{self.name} decoder loss", 1, step)
        # each side's gradient of its own loss only (the decoder's reaches it through the encoder,
        # which it does not update), then both steps: IntroVAE's game with simultaneous updates
        for opt, loss, keep in ((opt_e, loss_e, True), (opt_d, loss_d, False)):
            params = [p for group in opt.param_groups for p in group["params"]]
            for param, grad in zip(params, torch.autograd.grad(loss, params, retain_graph=keep)):
                param.grad = grad
        opt_e.step()
        opt_d.step()
        return {
            "encoder": value_e, "decoder": value_d, "mse_hr": float(rec_hr.detach()), "mse_sr": float(rec_sr.detach()),
            "mse_lr": float(rec_lr.detach()), "kl_real": float(kl_real.detach()),
            "kl_fake": float(fooled.detach()) / len(fakes),
        }  # fmt: skip
