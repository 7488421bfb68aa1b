"""scANNA's configuration: a light module (no torch) so listing the zoo stays fast."""

from __future__ import annotations

from dataclasses import dataclass

from cellzoo.errors import ConfigError

INPUT_STATES = ("log1p_norm", "counts")

#: what early stopping can watch on the validation cells
MONITORS = ("loss", "accuracy")


@dataclass(frozen=True)
class ScannaConfig:
    """Architecture and training recipe of scANNA.

    Defaults follow the original training script where it had one (seed 12345, Adam 1e-4 with
    β = (0.9, 0.999) and eps 1e-8, batch 128, 50 epochs, point-wise feed-forward width 128).
    Two defaults are ours, tuned on pbmc68k_reduced (see the README): ``min_steps=2000`` raises
    the epochs of small data sets so that they get enough optimizer steps, and
    ``masking_fraction=0.5`` turns the reference's (default-off) input masking into a
    regulariser. Early stopping on a stratified validation split is our addition too; it runs
    only when that split has at least ``min_val_cells`` cells (``val_fraction=0`` turns it off).
    """

    seed: int = 12345
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    #: hidden width of the shared point-wise feed-forward block (G → width → G)
    ffn_width: int = 128
    #: dropout applied to the expression (not to the attention input) during training only
    masking_fraction: float = 0.5
    #: at least this many optimizer steps, whatever ``epochs`` says (epochs are raised for small data)
    min_steps: int = 2000
    #: share of the training cells held out (stratified) for early stopping; 0 disables it
    val_fraction: float = 0.1
    #: early stopping only runs when the held-out share has at least this many cells (else all cells train)
    min_val_cells: int = 256
    #: epochs without improvement of the validation loss before training stops
    patience: int = 10
    min_delta: float = 0.0
    #: what early stopping watches on the validation cells: "loss" (cross-entropy) or "accuracy"
    monitor: str = "loss"
    #: "log1p_norm" (log1p of library-size-normalised counts) or "counts" (raw UMI counts)
    input_state: str = "log1p_norm"
    #: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    device: str = "auto"

    def __post_init__(self) -> None:
        betas = tuple(float(b) for b in self.betas)
        object.__setattr__(self, "betas", betas)
        problems = []
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            problems.append(f"betas={self.betas!r} must be two numbers in [0, 1)")
        for key in ("epochs", "batch_size", "ffn_width"):
            if int(getattr(self, key)) < 1:
                problems.append(f"{key}={getattr(self, key)!r} must be at least 1")
        if not self.lr > 0:
            problems.append(f"lr={self.lr!r} must be positive")
        if not 0.0 <= self.masking_fraction < 1.0:
            problems.append(f"masking_fraction={self.masking_fraction!r} must be in [0, 1)")
        if not 0.0 <= self.val_fraction < 1.0:
            problems.append(f"val_fraction={self.val_fraction!r} must be in [0, 1)")
        if self.patience < 1:
            problems.append(
                f"patience={self.patience!r} must be at least 1 (use val_fraction=0 to disable early stopping)"
            )
        if self.input_state not in INPUT_STATES:
            problems.append(f"input_state={self.input_state!r} must be one of {INPUT_STATES}")
        if self.min_steps < 0 or self.min_val_cells < 0:
            problems.append(f"min_steps={self.min_steps!r} and min_val_cells={self.min_val_cells!r} must be >= 0")
        if self.monitor not in MONITORS:
            problems.append(f"monitor={self.monitor!r} must be one of {MONITORS}")
        if problems:
            raise ConfigError("invalid scanna configuration: " + "; ".join(problems))
