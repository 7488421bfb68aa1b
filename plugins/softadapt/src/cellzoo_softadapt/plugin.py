"""cellzoo hook implementations of the SoftAdapt plugin (declarative: imports neither numpy's math nor torch)."""

from __future__ import annotations

from cellzoo import LossWeightingSpec, hookimpl

from .config import FixedConfig, NormalisedSoftAdaptConfig, SoftAdaptConfig, UncertaintyConfig

SOFTADAPT_CITATION = """@article{heydari2019softadapt,
  title   = {{SoftAdapt}: Techniques for Adaptive Loss Weighting of Neural Networks with Multi-Part Loss Functions},
  author  = {Heydari, A. Ali and Thompson, Craig A. and Mehmood, Asif},
  journal = {arXiv preprint arXiv:1912.12355},
  year    = {2019}
}"""

KENDALL_CITATION = """@inproceedings{kendall2018multitask,
  title     = {Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics},
  author    = {Kendall, Alex and Gal, Yarin and Cipolla, Roberto},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {7482--7491},
  year      = {2018},
  doi       = {10.1109/CVPR.2018.00781}
}"""


@hookimpl
def cellzoo_loss_weightings():
    return [
        LossWeightingSpec(
            name="softadapt",
            builder="cellzoo_softadapt.softadapt:SoftAdapt",
            config=SoftAdaptConfig,
            summary=(
                "SoftAdapt (original): softmax_β of each loss part's forward-difference slope over the last "
                "`window` values; β > 0 up-weights the parts that improve least."
            ),
            citation=SOFTADAPT_CITATION,
            license="MIT",
        ),
        LossWeightingSpec(
            name="softadapt_normalised",
            builder="cellzoo_softadapt.softadapt:NormalisedSoftAdapt",
            config=NormalisedSoftAdaptConfig,
            summary=(
                "SoftAdapt on slopes divided by Σ|s_j| (keeps the order of the slopes); signed_sum=True is the "
                "reference's division by the signed Σ s_j, which reverses it when the losses fall."
            ),
            citation=SOFTADAPT_CITATION,
            license="MIT",
        ),
        LossWeightingSpec(
            name="softadapt_loss_weighted",
            builder="cellzoo_softadapt.softadapt:LossWeightedSoftAdapt",
            config=SoftAdaptConfig,
            summary="SoftAdapt with each part's softmax term multiplied by its mean value over the window.",
            citation=SOFTADAPT_CITATION,
            license="MIT",
        ),
        LossWeightingSpec(
            name="equal",
            builder="cellzoo_softadapt.simple:EqualWeighting",
            config=None,
            summary="Every loss part weighs 1 (the control).",
            license="MIT",
        ),
        LossWeightingSpec(
            name="fixed",
            builder="cellzoo_softadapt.simple:FixedWeighting",
            config=FixedConfig,
            summary="Constant hand-set weights, one per loss part (`weights=(...)`).",
            license="MIT",
        ),
        LossWeightingSpec(
            name="uncertainty",
            builder="cellzoo_softadapt.uncertainty:UncertaintyWeighting",
            config=UncertaintyConfig,
            summary=(
                "Kendall, Gal & Cipolla (2018) homoscedastic uncertainty: learnable s_k, "
                "L = Σ exp(−s_k)·L_k + s_k (needs torch; its parameters go to the optimiser)."
            ),
            citation=KENDALL_CITATION,
            license="MIT",
        ),
    ]
