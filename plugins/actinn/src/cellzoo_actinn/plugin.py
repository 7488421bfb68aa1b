"""cellzoo hook implementations of the ACTINN plugin (declarative: imports no torch)."""

from __future__ import annotations

from cellzoo import ModelSpec, hookimpl

from .config import ActinnConfig

CITATION = """@article{ma2020actinn,
  title   = {{ACTINN}: automated identification of cell types in single cell {RNA} sequencing},
  author  = {Ma, Feiyang and Pellegrini, Matteo},
  journal = {Bioinformatics},
  volume  = {36},
  number  = {2},
  pages   = {533--538},
  year    = {2020},
  doi     = {10.1093/bioinformatics/btz592}
}"""


@hookimpl
def cellzoo_models():
    return [
        ModelSpec(
            name="actinn",
            task="annotate",
            builder="cellzoo_actinn.model:Actinn",
            config=ActinnConfig,
            summary=(
                "ACTINN: a G-100-50-25-C ReLU network on cells scaled to 20,000 and log2(x+1), genes "
                "filtered by expression and CV percentiles of the training data."
            ),
            role="baseline",
            paper="https://doi.org/10.1093/bioinformatics/btz592",
            license="MIT",
            authors=("Feiyang Ma", "Matteo Pellegrini"),
            citation=CITATION,
            exportable=True,
            tags=("mlp", "classifier", "torch"),
        ),
        ModelSpec(
            name="actinn_ig",
            task="markers",
            builder="cellzoo_actinn.model:ActinnIG",
            config=ActinnConfig,
            summary=(
                "ACTINN markers: integrated gradients of log p(class) against the other classes' mean cell, "
                "averaged over each class's cells."
            ),
            role="baseline",
            paper="https://doi.org/10.1093/bioinformatics/btz592",
            license="MIT",
            authors=("Feiyang Ma", "Matteo Pellegrini"),
            citation=CITATION,
            tags=("mlp", "attribution", "markers", "torch"),
        ),
    ]
