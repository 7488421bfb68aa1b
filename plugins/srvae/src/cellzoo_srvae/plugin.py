"""cellzoo hook implementations of the SRVAE plugin (declarative: imports no torch)."""

from __future__ import annotations

from cellzoo import DatasetSpec, ModelSpec, hookimpl

from .config import SrcnnConfig, SrvaeConfig

SRVAE_CITATION = """@inproceedings{heydari2020srvae,
  title     = {{SRVAE}: super resolution using variational autoencoders},
  author    = {Heydari, A. Ali and Mehmood, Asif},
  booktitle = {Pattern Recognition and Tracking XXXI},
  series    = {Proc. SPIE},
  volume    = {11400},
  year      = {2020}
}"""
SRCNN_CITATION = """@article{dong2016srcnn,
  title   = {Image Super-Resolution Using Deep Convolutional Networks},
  author  = {Dong, Chao and Loy, Chen Change and He, Kaiming and Tang, Xiaoou},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume  = {38},
  number  = {2},
  pages   = {295--307},
  year    = {2016},
  doi     = {10.1109/TPAMI.2015.2439281}
}"""
SKIMAGE_CITATION = """@article{vanderwalt2014skimage,
  title   = {scikit-image: image processing in {P}ython},
  author  = {van der Walt, St{\\'e}fan and Sch{\\"o}nberger, Johannes L. and Nunez-Iglesias, Juan and others},
  journal = {PeerJ},
  volume  = {2},
  pages   = {e453},
  year    = {2014}
}"""


@hookimpl
def cellzoo_models():
    return [
        ModelSpec(
            name="srvae",
            task="upscale",
            builder="cellzoo_srvae.model:SrvaeModel",
            config=SrvaeConfig,
            summary=(
                "SRVAE: an introspective VAE of high-resolution images and a VAE of low-resolution ones; the LR "
                "reconstruction, up-sampled and encoded by the HR encoder, is decoded into the super-resolved image."
            ),
            role="method",
            paper="https://doi.org/10.1117/12.2559808",
            license="MIT",
            authors=("A. Ali Heydari", "Asif Mehmood"),
            citation=SRVAE_CITATION,
            exportable=True,
            tags=("vae", "introvae", "super-resolution", "torch"),
        ),
        ModelSpec(
            name="srcnn",
            task="upscale",
            builder="cellzoo_srvae.model:SrcnnModel",
            config=SrcnnConfig,
            summary="SRCNN 9-1-5: MATLAB-bicubic up-sampling, then 9×9, 1×1 and 5×5 convolutions trained on MSE.",
            role="baseline",
            paper="https://doi.org/10.1109/TPAMI.2015.2439281",
            license="MIT",
            authors=("Chao Dong", "Chen Change Loy", "Kaiming He", "Xiaoou Tang"),
            citation=SRCNN_CITATION,
            exportable=True,
            tags=("cnn", "super-resolution", "torch"),
        ),
    ]


@hookimpl
def cellzoo_datasets():
    return [
        DatasetSpec(
            name="sr_images",
            tasks=("upscale",),
            loader="cellzoo_srvae.datasets:sr_images",
            data="images",
            summary=(
                "11 public-domain / CC0 photographs and textures bundled with scikit-image: 6 to train on, a fixed "
                "Set5-like test set of 5 (astronaut, camera, chelsea, coffee, brick)."
            ),
            n_obs=11,
            citation=SKIMAGE_CITATION,
            license="public domain / CC0 (each image's licence: cellzoo_srvae.datasets.IMAGES)",
        ),
        DatasetSpec(
            name="image-folder",
            tasks=("upscale",),
            loader="cellzoo_srvae.datasets:image_folder",
            data="images",
            summary=(
                "Your own images: image-folder:PATH reads every PNG/TIFF/JPEG in PATH (train/ and test/ sub-folders "
                "give a fixed split, as a local DIV2K copy)."
            ),
            license="that of your images",
        ),
    ]
