"""ACTIVA's own error (torch-free): conditional sampling that could not finish within its bound."""

from __future__ import annotations

from cellzoo.errors import SamplingError


class SamplingBoundError(SamplingError):
    """Classifier-guided sampling drew ``max_draws_factor × n`` latent vectors without finding ``n`` cells of the type.

    A :class:`~cellzoo.errors.SamplingError` (a ConfigError: the bound is a configuration value): the message names the
    cell type, how many cells were found in how many draws, the acceptance rate and what to change.
    """

    def __init__(self, cell_type: str, wanted: int, found: int, draws: int, factor: int):
        self.cell_type, self.wanted, self.found, self.draws = cell_type, wanted, found, draws
        rate = found / draws if draws else 0.0
        super().__init__(
            f"could not generate {wanted} cells of type {cell_type!r}: the ACTINN conditioner assigned only "
            f"{found} of {draws} decoded cells to it (acceptance rate {rate:.4g}) within the bound of "
            f"max_draws_factor={factor} × {wanted} draws. Ask for fewer cells, raise max_draws_factor "
            "(e.g. create_model('activa', max_draws_factor=...) or --set max_draws_factor=...), or train longer: "
            "a type the decoder rarely produces has a low acceptance rate"
        )
