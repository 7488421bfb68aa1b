"""cellzoo hook implementations of the scGAN plugin (declarative: imports no torch)."""

from __future__ import annotations

from cellzoo import ModelSpec, hookimpl

from .config import CscganConfig, ScganConfig

PAPER = "https://doi.org/10.1038/s41467-019-14018-z"
AUTHORS = ("Mohamed Marouf", "Pierre Machart", "Vikas Bansal", "Christoph Kilian", "Daniel S. Magruder",
           "Christian F. Krebs", "Stefan Bonn")  # fmt: skip
CITATION = """@article{marouf2020scgan,
  title   = {Realistic in silico generation and augmentation of single-cell {RNA}-seq data using generative adversarial networks},
  author  = {Marouf, Mohamed and Machart, Pierre and Bansal, Vikas and Kilian, Christoph and Magruder, Daniel S. and Krebs, Christian F. and Bonn, Stefan},
  journal = {Nature Communications},
  volume  = {11},
  pages   = {166},
  year    = {2020},
  doi     = {10.1038/s41467-019-14018-z}
}"""


@hookimpl
def cellzoo_models():
    return [
        ModelSpec(
            name="scgan",
            task="generate",
            builder="cellzoo_scgan.model:Scgan",
            config=ScganConfig,
            summary=(
                "scGAN: a WGAN-GP generating cells scaled to 20,000 counts (no log); generator 128-256-512-1024-G "
                "with BatchNorm, ReLU and per-cell library-size normalisation, critic G-1024-512-256-1."
            ),
            role="baseline",
            paper=PAPER,
            license="MIT",
            authors=AUTHORS,
            citation=CITATION,
            exportable=True,
            tags=("gan", "wgan-gp", "generator", "torch"),
        ),
        ModelSpec(
            name="cscgan",
            task="generate",
            builder="cellzoo_scgan.model:Cscgan",
            config=CscganConfig,
            summary=(
                "cscGAN: scGAN conditioned on the cell type through conditional BatchNorm in the generator and a "
                "projection critic; samples cells of a requested type."
            ),
            role="baseline",
            paper=PAPER,
            license="MIT",
            authors=AUTHORS,
            citation=CITATION,
            exportable=True,
            tags=("gan", "wgan-gp", "conditional", "generator", "torch"),
        ),
    ]
