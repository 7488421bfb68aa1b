"""ACTINN's configuration: a light module (no torch) so listing the zoo stays fast."""

from __future__ import annotations

from dataclasses import dataclass

from cellzoo import TrainingConfig


@dataclass(frozen=True)
class ActinnConfig(TrainingConfig):
    """Architecture, preprocessing and training recipe of ACTINN.

    Defaults are the PyTorch port's: hidden layers 100-50-25 with ReLU, Adam (lr 1e-4,
    β = (0.9, 0.999), eps 1e-8, weight decay 5e-3), the learning rate multiplied by 0.95 every
    1,000 mini-batch iterations, 50 epochs of batch 128, cells scaled to 20,000 and log2(x+1),
    genes kept between the 1st and 99th percentiles of total expression and of the coefficient
    of variation. Two additions are ours (see the README): ``min_steps=5000`` raises the epochs of
    small data sets so that they get enough optimizer steps (large ones keep 50 epochs), and
    early stopping on a stratified validation split, which runs only when that split has at
    least ``min_val_cells`` cells (``val_fraction=0`` turns it off). The training fields (seed,
    epochs, batch_size, lr, betas, eps, weight_decay, min_steps, val_fraction, min_val_cells,
    patience, min_delta, monitor, device) are :class:`cellzoo.TrainingConfig`'s.
    """

    # -- the training recipe: TrainingConfig's fields, with ACTINN's defaults where they differ
    #: Adam's (L2) weight decay, as in the reference
    weight_decay: float = 5e-3
    #: at least this many optimizer steps, whatever ``epochs`` says (epochs are raised for small data)
    min_steps: int = 5000
    # -- ACTINN's own
    hidden: tuple[int, ...] = (100, 50, 25)
    #: the learning rate is multiplied by ``lr_decay`` every ``decay_every`` mini-batches
    lr_decay: float = 0.95
    decay_every: int = 1000
    #: per-cell library size the expression is scaled to before log2(x+1)
    scale_to: float = 20000.0
    #: genes are kept when total expression and CV lie within these training-set percentiles
    gene_percentiles: tuple[float, float] = (1.0, 99.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "gene_percentiles", tuple(float(p) for p in self.gene_percentiles))
        problems = []
        if not self.hidden or min(self.hidden) < 1:
            problems.append(f"hidden={self.hidden!r} must be one or more positive layer widths")
        if int(self.decay_every) < 1:
            problems.append(f"decay_every={self.decay_every!r} must be at least 1")
        if not 0.0 < self.lr_decay <= 1.0:
            problems.append(f"lr_decay={self.lr_decay!r} must be in (0, 1]")
        if not self.scale_to > 0:
            problems.append(f"scale_to={self.scale_to!r} must be positive")
        pct = self.gene_percentiles
        if len(pct) != 2 or not 0.0 <= pct[0] < pct[1] <= 100.0:
            problems.append(
                f"gene_percentiles={self.gene_percentiles!r} must be (low, high) with 0 <= low < high <= 100"
            )
        self.reject(problems)
