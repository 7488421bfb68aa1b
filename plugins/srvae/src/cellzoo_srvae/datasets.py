"""Image sets: the public-domain / CC0 photographs scikit-image ships in its wheel, and a local folder.

``sr_images`` is split once, by name, into a training set and a Set5-like held-out test set, so
every model and every seed sees the same pictures. Nothing is downloaded: the files come with
the installed ``scikit-image``. Each licence below was read from the loader's docstring
(scikit-image 0.26).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cellzoo import read_image
from cellzoo.errors import InputError

#: name → (licence as the scikit-image docstring states it, what the picture shows)
IMAGES: dict[str, tuple[str, str]] = {
    "astronaut": ("public domain (NASA)", "portrait of astronaut Eileen Collins, 512×512 RGB"),
    "camera": ("CC0 (Lav Varshney)", "man with a camera, 512×512 grey"),
    "chelsea": ("CC0 (Stefan van der Walt)", "a cat, 451×300 RGB"),
    "coffee": ("CC0 (Rachel Michetti)", "a cup of coffee, 600×400 RGB"),
    "brick": ("CC0 (CC0Textures)", "brick wall texture, 512×512 grey"),
    "rocket": ("public domain (SpaceX)", "a rocket on its launch pad, 640×427 RGB"),
    "retina": ("CC0 (Häggström)", "fundus photograph of a human retina, 1411×1411 RGB"),
    "grass": ("CC0 (CC0Textures)", "grass texture, 512×512 grey"),
    "gravel": ("CC0 (CC0Textures)", "gravel texture, 512×512 grey"),
    "hubble_deep_field": ("public domain (NASA)", "Hubble eXtreme Deep Field, 1000×872 RGB"),
    "cell": ("CC0", "a cell in phase contrast, 550×660 grey"),
}
#: the held-out pictures (as Set5: a face, an animal, an object, a grey photograph, a texture)
TEST = ("astronaut", "camera", "chelsea", "coffee", "brick")
TRAIN = tuple(name for name in IMAGES if name not in TEST)
#: extensions the folder loader reads
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def sr_images() -> dict[str, list[np.ndarray]]:
    """``{"train": 6 images, "test": 5 images}``, uint8, as scikit-image ships them (grey stays grey)."""
    from skimage import data

    def load(name: str) -> np.ndarray:
        return np.ascontiguousarray(getattr(data, name)())

    return {"train": [load(n) for n in TRAIN], "test": [load(n) for n in TEST]}


def image_folder(path: str | os.PathLike[str]) -> list[np.ndarray] | dict[str, list[np.ndarray]]:
    """Every image file in ``path`` (sorted by name), e.g. a local DIV2K or CelebA copy.

    A folder with ``train/`` and ``test/`` sub-folders gives that split (DIV2K's train/valid
    layout); otherwise the images come as one list, which a suite splits with ``kind = "holdout"``.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(f"image-folder: {root} is not a folder; pass a folder of PNG, TIFF or JPEG images")
    parts = {part: root / part for part in ("train", "test")}
    if all(p.is_dir() for p in parts.values()):
        return {part: _read_all(folder) for part, folder in parts.items()}
    return _read_all(root)


def _read_all(folder: Path) -> list[np.ndarray]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"image-folder: {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return [read_image(p) for p in files]
