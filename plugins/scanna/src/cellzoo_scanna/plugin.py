"""cellzoo hook implementations of the scANNA plugin (declarative: imports no torch)."""

from __future__ import annotations

from cellzoo import ModelSpec, hookimpl

from .config import ScannaConfig

CITATION = """@article{heydari2023scanna,
  title   = {Boosting Single-Cell RNA Sequencing Analysis with Simple Neural Attention},
  author  = {Heydari, A. Ali and Davalos, Oscar A. and Hoyer, Katrina K. and Sindi, Suzanne S.},
  journal = {bioRxiv},
  year    = {2023},
  doi     = {10.1101/2023.05.29.542760}
}"""


_COMMON = dict(
    config=ScannaConfig,
    role="method",
    paper="https://doi.org/10.1101/2023.05.29.542760",
    license="MIT",
    authors=("A. Ali Heydari", "Oscar A. Davalos", "Katrina K. Hoyer", "Suzanne S. Sindi"),
    citation=CITATION,
)


@hookimpl
def cellzoo_models():
    return [
        ModelSpec(
            name="scanna",
            task="annotate",
            builder="cellzoo_scanna.model:Scanna",
            summary=(
                "scANNA: softmax gene attention, two projection blocks sharing one feed-forward block, "
                "LeakyReLU logits; per-cell attention ranks marker genes."
            ),
            exportable=True,
            tags=("attention", "classifier", "markers", "torch"),
            **_COMMON,
        ),
        # the same network as a marker ranker (task "markers"), by each of its two rankings
        ModelSpec(
            name="scanna_attention",
            task="markers",
            builder="cellzoo_scanna.model:Scanna",
            summary="scANNA markers: attention α summed over each class's correctly predicted cells (the reference).",
            tags=("attention", "markers", "torch"),
            **_COMMON,
        ),
        ModelSpec(
            name="scanna_tfidf",
            task="markers",
            builder="cellzoo_scanna.model:ScannaTfidf",
            summary="scANNA markers: the attention sums re-ranked by tf-idf (genes on top of many classes pushed down).",
            tags=("attention", "markers", "torch"),
            **_COMMON,
        ),
        ModelSpec(
            name="scanna_gamma",
            task="markers",
            builder="cellzoo_scanna.model:ScannaGamma",
            summary="scANNA markers: the gene scores γ = α ⊙ x summed over each class's cells.",
            tags=("attention", "markers", "torch"),
            **_COMMON,
        ),
        ModelSpec(
            name="scanna_gamma_contrast",
            task="markers",
            builder="cellzoo_scanna.model:ScannaGammaContrast",
            summary="scANNA markers: the gene scores γ = α ⊙ x, their mean in the class over their mean elsewhere.",
            tags=("attention", "markers", "torch"),
            **_COMMON,
        ),
        # rankings from the network's gene attributions (cellzoo.attribution), not from α
        ModelSpec(
            name="scanna_ig",
            task="markers",
            builder="cellzoo_scanna.model:ScannaIG",
            summary=(
                "scANNA markers: integrated gradients of log p(class) against the other classes' mean cell, "
                "averaged over each class's cells."
            ),
            tags=("attribution", "markers", "torch"),
            **_COMMON,
        ),
        ModelSpec(
            name="scanna_ig_zeros",
            task="markers",
            builder="cellzoo_scanna.model:ScannaIGZeros",
            summary="scANNA markers: integrated gradients of log p(class) from the all-zero cell, averaged per class.",
            tags=("attribution", "markers", "torch"),
            **_COMMON,
        ),
        ModelSpec(
            name="scanna_grad_input",
            task="markers",
            builder="cellzoo_scanna.model:ScannaGradInput",
            summary="scANNA markers: gradient × input of log p(class), averaged over each class's cells.",
            tags=("attribution", "markers", "torch"),
            **_COMMON,
        ),
    ]
