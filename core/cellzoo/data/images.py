"""What every image model and the harness share: layouts and bit depths, MATLAB-style bicubic
resizing, HR/LR pairs, patches, tiles, and reading and writing image files.

Models work on float32 H × W × C arrays in [0, 1] (C = 1 or 3); :func:`as_float_image` brings any
accepted image there and :func:`restore_image` takes the result back to the input's own dtype and
layout. Resizing is MATLAB's ``imresize`` bicubic (kernel a = −0.5, antialiased when shrinking,
symmetric padding) through ``resize-right``: the SR literature's LR images are made that way, and
Pillow's bicubic differs by up to ~13 grey levels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

#: integer dtypes an image may come in, with their full-scale value
INTEGER_RANGES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
#: file suffixes :func:`write_image` writes
WRITABLE = (".png", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`restore_image` needs to give a result the input's own form."""

    dtype: np.dtype
    channels: int
    ndim: int


def as_float_image(image: Any) -> tuple[np.ndarray, np.ndarray | None, ImageInfo]:
    """``(float32 H × W × C in [0, 1] with C = 1 or 3, alpha H × W or None, info)``."""
    array = np.asarray(image)
    if array.dtype == bool or array.dtype.kind not in "uif":
        raise InputError(f"an image must hold numbers (uint8, uint16 or float in [0, 1]), not {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputError(
            f"an image must be height × width (grey) or height × width × 1/3/4 channels (grey, RGB, RGBA), "
            f"got shape {np.asarray(image).shape}"
        )
    if min(array.shape[:2]) < 1:
        raise InputError(f"the image is empty (shape {array.shape})")
    info = ImageInfo(np.asarray(image).dtype, int(array.shape[2]), np.asarray(image).ndim)
    if array.dtype.kind == "f":
        x = array.astype(np.float32)
        if not np.isfinite(x).all():
            raise InputError("the image holds NaN or infinite values")
        if x.min() < 0.0 or x.max() > 1.0:
            raise InputError(
                f"a float image must lie in [0, 1], this one spans [{x.min():.3g}, {x.max():.3g}]; divide by its "
                "full-scale value (255 for 8-bit data) or pass the integer array"
            )
    elif array.dtype in INTEGER_RANGES:
        x = array.astype(np.float32) / INTEGER_RANGES[array.dtype]
    else:
        raise InputError(f"{array.dtype} images are not supported; convert to uint8, uint16 or float in [0, 1]")
    alpha = None
    if x.shape[2] == 4:
        x, alpha = x[..., :3], x[..., 3]
    return np.ascontiguousarray(x), alpha, info


def restore_image(x: np.ndarray, alpha: np.ndarray | None, info: ImageInfo) -> np.ndarray:
    """``x`` (float H × W × C in [0, 1]) in the dtype and channel layout ``info`` describes."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    if info.channels == 4:
        if alpha is None:
            raise ConfigError("an RGBA image needs its alpha channel back")
        x = np.concatenate([x, np.clip(alpha, 0.0, 1.0)[..., None].astype(np.float32)], axis=2)
    if info.ndim == 2:
        x = x[..., 0]
    if info.dtype in INTEGER_RANGES:
        return np.round(x * INTEGER_RANGES[info.dtype]).astype(info.dtype)
    return x.astype(info.dtype)


def to_rgb(x: np.ndarray) -> np.ndarray:
    """H × W × 3: a one-channel image repeated over three channels."""
    return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x


def from_rgb(x: np.ndarray, channels: int) -> np.ndarray:
    """Back to ``channels`` (1: BT.601 luma, full range, of an RGB result; 3: as it is)."""
    if channels == 1:
        return (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None].astype(np.float32)
    return x


def imresize(x: np.ndarray, scale_factor: float) -> np.ndarray:
    """MATLAB-style bicubic resize of H × W × C by ``scale_factor`` over the spatial axes (float64)."""
    from resize_right import interp_methods, resize

    x = np.asarray(x, dtype=np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[..., None]
    out = resize(
        x,
        scale_factors=[float(scale_factor), float(scale_factor), 1.0],
        interp_method=interp_methods.cubic,
        antialiasing=True,
        pad_mode="symmetric",
    )
    return out[..., 0] if squeeze else out


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """``image`` cropped (top-left anchored) to a height and width divisible by ``scale``."""
    h, w = image.shape[0] // scale * scale, image.shape[1] // scale * scale
    return image[:h, :w]


def downsample(hr: np.ndarray, scale: int) -> np.ndarray:
    """The LR image of ``hr`` (float [0, 1]): MATLAB bicubic shrinking of its ``scale``-cropped self."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 2:
        raise InputError(f"the scale factor must be an integer ≥ 2, got {scale!r}")
    if min(hr.shape[:2]) < scale:
        raise InputError(
            f"a {hr.shape[1]}×{hr.shape[0]} image is smaller than the ×{scale} factor; it has no low-resolution version"
        )
    return np.clip(imresize(modcrop(hr, scale), 1.0 / scale), 0.0, 1.0).astype(np.float32)


def random_patches(images: Sequence[np.ndarray], size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random ``size`` × ``size`` patches (n × size × size × C float32), uniform over valid positions."""
    positions = np.array([max(0, im.shape[0] - size + 1) * max(0, im.shape[1] - size + 1) for im in images], float)
    if positions.sum() == 0:
        raise InputError(f"no training image is at least {size}×{size} pixels; use smaller patches or larger images")
    picks = rng.choice(len(images), size=n, p=positions / positions.sum())
    out = np.empty((n, size, size, images[0].shape[2]), dtype=np.float32)
    for k, i in enumerate(picks):
        im = images[i]
        y = rng.integers(0, im.shape[0] - size + 1)
        x = rng.integers(0, im.shape[1] - size + 1)
        out[k] = im[y : y + size, x : x + size]
    return out


class PatchPairs:
    """Aligned (HR, LR) training patches of ``images``: HR ``size`` × ``size``, LR ``size/scale`` on a side.

    Every image is down-sampled whole, once (:func:`downsample`, as the test images are), and
    patches are cut at matching places of both, so no patch has the borders a per-patch resize
    would give. Images smaller than a patch are left out.
    """

    def __init__(self, images: Sequence[np.ndarray], scale: int, size: int):
        if size % scale:
            raise ConfigError(f"a ×{scale} training patch must be a multiple of {scale} pixels, not {size}")
        self.scale, self.size, self.small = int(scale), int(size), int(size) // int(scale)
        self.pairs = [(modcrop(im, scale), downsample(im, scale)) for im in images if min(im.shape[:2]) >= size]
        if not self.pairs:
            raise InputError(
                f"no training image is at least {size}×{size} pixels; use smaller patches or larger images"
            )
        positions = [(lr.shape[0] - self.small + 1) * (lr.shape[1] - self.small + 1) for _, lr in self.pairs]
        self.weights = np.asarray(positions, float) / float(sum(positions))

    def sample(self, n: int, rng: np.random.Generator, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``n`` pairs as float32 ``n × size × size × C`` and ``n × size/s × size/s × C``, uniform over positions.

        ``augment`` applies one of the eight flips and 90° turns to each pair (exact: the bicubic
        kernel is symmetric).
        """
        s, size, small = self.scale, self.size, self.small
        channels = self.pairs[0][0].shape[2]
        hr_out = np.empty((n, size, size, channels), dtype=np.float32)
        lr_out = np.empty((n, small, small, channels), dtype=np.float32)
        for k, i in enumerate(rng.choice(len(self.pairs), size=n, p=self.weights)):
            hr, lr = self.pairs[i]
            y = rng.integers(0, lr.shape[0] - small + 1)
            x = rng.integers(0, lr.shape[1] - small + 1)
            a, b = hr[y * s : y * s + size, x * s : x * s + size], lr[y : y + small, x : x + small]
            if augment:
                turns = int(rng.integers(4))
                a, b = np.rot90(a, turns), np.rot90(b, turns)
                if rng.integers(2):
                    a, b = a[:, ::-1], b[:, ::-1]
            hr_out[k], lr_out[k] = a, b
        return hr_out, lr_out


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = [*range(0, length - tile, step), length - tile]  # the last tile shifted inwards
    return sorted(set(starts))


def _ramp(length: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    weight = np.ones(length, dtype=np.float64)
    if overlap > 0:
        ramp = (np.arange(overlap) + 0.5) / overlap
        if not first:
            weight[:overlap] = ramp
        if not last:
            weight[-overlap:] = ramp[::-1]
    return weight


def tiled(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, scale: int, tile: int, overlap: int) -> np.ndarray:
    """``fn`` (H' × W' × C → scale·H' × scale·W' × C) run on overlapping tiles of ``x``, blended.

    Tiles are ``tile`` input pixels on a side, ``overlap`` pixels shared with each neighbour, and
    the outputs are averaged with weights that ramp linearly across the overlap, so no seam shows.
    An image no larger than one tile goes through ``fn`` in one call.
    """
    if tile <= 2 * overlap:
        raise ConfigError(f"a tile ({tile} px) must be larger than twice the overlap ({overlap} px)")
    h, w, c = x.shape
    if h <= tile and w <= tile:
        return fn(x)
    ys, xs = _starts(h, tile, tile - overlap), _starts(w, tile, tile - overlap)
    out = np.zeros((h * scale, w * scale, c), dtype=np.float64)
    total = np.zeros((h * scale, w * scale, 1), dtype=np.float64)
    for iy, y in enumerate(ys):
        for ix, x0 in enumerate(xs):
            part = x[y : y + tile, x0 : x0 + tile]
            result = np.asarray(fn(part), dtype=np.float64)
            th, tw = result.shape[:2]
            wy = _ramp(th, overlap * scale, iy == 0, iy == len(ys) - 1)
            wx = _ramp(tw, overlap * scale, ix == 0, ix == len(xs) - 1)
            weight = (wy[:, None] * wx[None, :])[..., None]
            out[y * scale : y * scale + th, x0 * scale : x0 * scale + tw] += result * weight
            total[y * scale : y * scale + th, x0 * scale : x0 * scale + tw] += weight
    return (out / total).astype(np.float32)


def upscale_with(fn: Callable[[np.ndarray], np.ndarray], image: Any, scale: int, tile: int, overlap: int) -> np.ndarray:
    """``image`` up-scaled by ``fn`` (float32 RGB H × W × 3 → sH × sW × 3), in the image's own layout and dtype.

    The one pipeline of :meth:`cellzoo.Upscaler.upscale` and :func:`cellzoo.runtime.upscale_image`:
    grey/RGB/RGBA and 8/16-bit/float in, the same out; tiles of ``tile`` input pixels blended over
    ``overlap`` when ``tile`` > 0; an alpha channel up-scaled bicubically beside the colour.
    """
    x, alpha, info = as_float_image(image)
    rgb = to_rgb(x)
    out = tiled(fn, rgb, scale, tile, overlap) if tile else fn(rgb)
    out = from_rgb(out, x.shape[2])
    if alpha is not None:
        alpha = np.clip(imresize(alpha[..., None], scale)[..., 0], 0.0, 1.0).astype(np.float32)
    return restore_image(out, alpha, info)


# -- files --------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file (PNG, TIFF, JPEG, BMP) as uint8 / uint16, H × W (grey) or H × W × 3/4."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path} is not a file; pass the path of an image (PNG, TIFF, JPEG)")
    try:
        with Image.open(path) as im:
            im.load()  # a truncated file fails here, not later
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im, dtype=np.uint16)
            if mode == "I":
                array = np.asarray(im)
                if array.min() < 0 or array.max() > 65535:
                    raise InputError(f"{path} holds 32-bit values outside the 16-bit range; save it as 16-bit")
                return array.astype(np.uint16)
            if mode in ("1", "L", "P", "LA", "PA", "RGBA", "RGB", "CMYK", "YCbCr"):
                target = {"1": "L", "L": "L", "LA": "RGBA", "PA": "RGBA", "RGBA": "RGBA"}.get(mode)
                if mode == "P":
                    target = "RGBA" if "transparency" in im.info else "RGB"
                return np.asarray(im.convert(target or "RGB"))
            raise InputError(f"{path}: image mode {mode!r} is not supported; save it as 8/16-bit grey, RGB or RGBA")
    except UnidentifiedImageError as exc:
        raise InputError(f"{path} is not an image file Pillow can read (PNG, TIFF, JPEG, BMP)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path} is damaged or truncated: {exc}") from exc


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write ``image`` (uint8 grey/RGB/RGBA, uint16 grey, or float in [0, 1] as 8-bit) as PNG or TIFF, atomically."""
    from PIL import Image

    from ..fileio import atomic_path

    path = Path(path).expanduser()
    if path.suffix.lower() not in WRITABLE:
        raise ConfigError(f"{path}: write a {', '.join(WRITABLE)} file")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) or choose another path")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder of {path} does not exist; create it first")
    array = np.asarray(image)
    if array.dtype.kind == "f":
        x, alpha, info = as_float_image(array)
        array = restore_image(x, alpha, ImageInfo(np.dtype(np.uint8), info.channels, info.ndim))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.dtype == np.uint16:
        if array.ndim != 2:
            raise ConfigError("16-bit images can be written as grey only (Pillow has no 16-bit RGB); convert to 8-bit")
        picture = Image.fromarray(array)
    elif array.dtype == np.uint8 and (array.ndim == 2 or array.shape[2] in (3, 4)):
        picture = Image.fromarray(array)
    else:
        raise ConfigError(f"cannot write a {array.dtype} image of shape {array.shape}; use uint8 or uint16")
    with atomic_path(path, suffix=path.suffix) as tmp:
        picture.save(tmp, format="PNG" if path.suffix.lower() == ".png" else "TIFF")
    return path
