"""cellzoo hook implementations of the ACTIVA plugin (declarative: imports no torch)."""

from __future__ import annotations

from cellzoo import ModelSpec, hookimpl

from .config import ActivaConfig

CITATION = """@article{heydari2022activa,
  title   = {{ACTIVA}: realistic single-cell {RNA}-seq generation with automatic cell-type identification
             using introspective variational autoencoders},
  author  = {Heydari, A. Ali and Davalos, Oscar A. and Zhao, Lihong and Hoyer, Katrina K. and Sindi, Suzanne S.},
  journal = {Bioinformatics},
  volume  = {38},
  number  = {8},
  pages   = {2194--2201},
  year    = {2022},
  doi     = {10.1093/bioinformatics/btac095}
}"""


@hookimpl
def cellzoo_models():
    return [
        ModelSpec(
            name="activa",
            task="generate",
            builder="cellzoo_activa.model:Activa",
            config=ActivaConfig,
            summary=(
                "ACTIVA: an introspective VAE (MLP encoder G-1024-512-256-2x128, decoder 128-256-512-1024-G) on "
                "cells scaled to 20,000 (no log), kept cell-type consistent by a frozen ACTINN classifier that "
                "also guides sampling of a requested type."
            ),
            role="method",
            paper="https://doi.org/10.1093/bioinformatics/btac095",
            license="MIT",
            authors=("A. Ali Heydari", "Oscar A. Davalos", "Lihong Zhao", "Katrina K. Hoyer", "Suzanne S. Sindi"),
            citation=CITATION,
            exportable=True,
            tags=("vae", "introvae", "generator", "torch"),
        )
    ]
