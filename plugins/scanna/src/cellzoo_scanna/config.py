"""scANNA's configuration: a light module (no torch) so listing the zoo stays fast."""

from __future__ import annotations

from dataclasses import dataclass

from cellzoo import TrainingConfig

INPUT_STATES = ("log1p_norm", "counts")


@dataclass(frozen=True)
class ScannaConfig(TrainingConfig):
    """Architecture and training recipe of scANNA.

    Defaults follow the original training script where it had one (seed 12345, Adam 1e-4 with
    β = (0.9, 0.999) and eps 1e-8, batch 128, 50 epochs, point-wise feed-forward width 128).
    Two defaults are ours, tuned on pbmc68k_reduced (see the README): ``min_steps=2000`` raises
    the epochs of small data sets so that they get enough optimizer steps, and
    ``masking_fraction=0.5`` turns the reference's (default-off) input masking into a
    regulariser. Early stopping on a stratified validation split is our addition too; it runs
    only when that split has at least ``min_val_cells`` cells (``val_fraction=0`` turns it off).
    Data with more than ``n_top_genes`` genes (5,000) trains on the most variable of them (Seurat's
    normalised dispersion, :mod:`cellzoo.data.hvg`), as the papers did. The training fields (seed,
    epochs, batch_size, lr, betas, eps, weight_decay, min_steps, val_fraction, min_val_cells,
    patience, min_delta, monitor, device) are :class:`cellzoo.TrainingConfig`'s; ``n_top_genes=0``
    keeps every gene.
    """

    # -- the training recipe: TrainingConfig's fields, with scANNA's defaults where they differ
    #: the seed of the original training script
    seed: int = 12345
    #: at least this many optimizer steps, whatever ``epochs`` says (epochs are raised for small data)
    min_steps: int = 2000
    #: the papers trained on the 5,000 most variable genes; three G × G layers make more impractical
    n_top_genes: int = 5000
    # -- scANNA's network and input
    #: hidden width of the shared point-wise feed-forward block (G → width → G)
    ffn_width: int = 128
    #: dropout applied to the expression (not to the attention input) during training only
    masking_fraction: float = 0.5
    #: "log1p_norm" (log1p of library-size-normalised counts) or "counts" (raw UMI counts)
    input_state: str = "log1p_norm"

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = self.integer_problems(("ffn_width",))
        problems += self.integer_problems(("n_top_genes",), minimum=0)
        if not 0.0 <= self.masking_fraction < 1.0:
            problems.append(f"masking_fraction={self.masking_fraction!r} must be in [0, 1)")
        if self.input_state not in INPUT_STATES:
            problems.append(f"input_state={self.input_state!r} must be one of {INPUT_STATES}")
        self.reject(problems)
