"""ACTIVA's configuration: a light module (no torch) so listing the zoo stays fast."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from cellzoo import TrainingConfig


@dataclass(frozen=True)
class ActivaConfig(TrainingConfig):
    """Architecture, losses, schedule and sampling of ACTIVA (defaults: the reference run script).

    Training fields inherited from :class:`cellzoo.TrainingConfig`: ``seed``, ``epochs`` (the
    reference ``--nEpochs``: epochs are numbered 1..epochs), ``batch_size`` (128), ``lr`` (Adam's
    learning rate of the encoder and of the decoder, 2e-4 each), ``betas``, ``eps``, ``device``.
    ``weight_decay`` applies to encoder and decoder (0 as in the reference). Early stopping is not
    used (``val_fraction`` defaults to 0 and must stay 0; ``patience``/``monitor`` are ignored) and
    ``min_steps`` is ignored: the three-phase schedule is defined in epochs.

    Schedule (epochs counted from 1, as the reference): epochs ``< num_cf`` train only the ACTINN
    conditioner; epochs ``num_cf .. num_vae-1`` are a plain VAE warm-up (L_rec + KL); from epoch
    ``num_vae`` on the introspective updates run and the conditioner is frozen.
    """

    # -- training recipe (TrainingConfig's fields, with ACTIVA's defaults)
    epochs: int = 500
    lr: float = 2e-4
    val_fraction: float = 0.0
    # -- architecture
    latent_dim: int = 128
    encoder_hidden: tuple[int, ...] = (1024, 512, 256)
    decoder_hidden: tuple[int, ...] = (256, 512, 1024)
    #: per-cell library size the counts are scaled to (no log), input and output space
    target_sum: float = 20000.0
    #: rescale every generated cell to ``target_sum`` inside the decoder (the reference's LSN layer, which
    #: was commented out there and which summed over the whole batch; ours is per cell). Off, as in the reference.
    output_lsn: bool = False
    # -- losses
    #: margin m of the hinge terms (reference default 150; its run script and our default: 110)
    m_plus: float = 110.0
    #: weight of the two hinge terms (each carries ½·w_neg)
    w_neg: float = 0.5
    #: α1 (weight_kl): weight of the margin / adversarial KL terms
    alpha_1: float = 1.0
    #: α2 (weight_rec): weight of L_rec + L_CT
    alpha_2: float = 0.05
    #: a registered loss weighting (``cellzoo.list_loss_weightings()``, e.g. SoftAdapt) that re-weights the two
    #: groups [L_CT + L_rec, L_margin] once per introspective epoch, starting from (α2, α1); None: fixed α1, α2
    loss_weighting: str | None = None
    #: the released code: the generator step re-encodes *detached* x_r, x_p, so the decoder gets no adversarial
    #: gradient (it is trained by α2·(L_rec + L_CT) only). False: the IntroVAE generator step.
    faithful_detach: bool = False
    #: the released code: L_CT summed over the batch (L_rec averaged). False: both summed over genes/classes and
    #: averaged over cells, so L_CT's weight does not grow with batch_size.
    faithful_reductions: bool = False
    # -- schedule
    num_cf: int = 5
    num_vae: int = 10
    # -- the ACTINN conditioner (cellzoo_actinn.ActinnNet) and its own optimiser (ACTINN's recipe)
    cf_hidden: tuple[int, ...] = (100, 50, 25)
    cf_lr: float = 1e-4
    cf_weight_decay: float = 5e-3
    cf_lr_decay: float = 0.95
    cf_decay_every: int = 1000
    # -- classifier-guided sampling of one cell type
    #: at most ``max_draws_factor × n`` latent vectors are decoded to find ``n`` cells of the asked type
    max_draws_factor: int = 100
    #: latent vectors decoded and classified per round (the reference: 10,000)
    draw_batch: int = 10000
    # -- monitoring
    #: ``model.quality_trace(epoch, seconds, model)`` is called after every ``checkpoint_every``-th epoch
    checkpoint_every: int = 25

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("encoder_hidden", "decoder_hidden", "cf_hidden"):
            value = getattr(self, key)
            with contextlib.suppress(TypeError, ValueError):
                object.__setattr__(self, key, tuple(int(h) for h in value))
        problems = self.integer_problems(
            ("latent_dim", "num_cf", "num_vae", "cf_decay_every", "max_draws_factor", "draw_batch", "checkpoint_every")
        )
        for key in ("encoder_hidden", "decoder_hidden", "cf_hidden"):
            value = getattr(self, key)
            if not isinstance(value, tuple) or not value or min(value) < 1:
                problems.append(f"{key}={value!r} must be one or more positive layer widths")
        if not self.target_sum > 0:
            problems.append(f"target_sum={self.target_sum!r} must be positive")
        if not self.m_plus >= 0:
            problems.append(f"m_plus={self.m_plus!r} must be >= 0")
        for key in ("w_neg", "alpha_1", "alpha_2", "cf_weight_decay"):
            if not getattr(self, key) >= 0:
                problems.append(f"{key}={getattr(self, key)!r} must be >= 0")
        if not self.cf_lr > 0:
            problems.append(f"cf_lr={self.cf_lr!r} must be positive")
        if not 0.0 < self.cf_lr_decay <= 1.0:
            problems.append(f"cf_lr_decay={self.cf_lr_decay!r} must be in (0, 1]")
        if isinstance(self.num_cf, int) and self.num_cf < 2:
            problems.append(
                f"num_cf={self.num_cf!r} must be at least 2: epochs 1..num_cf-1 train the ACTINN conditioner, "
                "which L_CT and conditional sampling need"
            )
        if isinstance(self.num_vae, int) and isinstance(self.num_cf, int) and self.num_vae < self.num_cf:
            problems.append(f"num_vae={self.num_vae!r} must be >= num_cf={self.num_cf!r}")
        if self.val_fraction != 0:
            problems.append(
                f"val_fraction={self.val_fraction!r}: ACTIVA trains on every cell without early stopping; use 0"
            )
        if self.loss_weighting is not None and (not isinstance(self.loss_weighting, str) or not self.loss_weighting):
            problems.append(f"loss_weighting={self.loss_weighting!r} must be a loss-weighting name or None")
        for key in ("output_lsn", "faithful_detach", "faithful_reductions"):
            if not isinstance(getattr(self, key), bool):
                problems.append(f"{key}={getattr(self, key)!r} must be true or false")
        self.reject(problems)
