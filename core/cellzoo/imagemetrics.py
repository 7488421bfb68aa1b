"""PSNR and SSIM of up-scaled images, the way SR papers compute them (BasicSR's definitions).

Both work on the Y channel of ITU-R BT.601 YCbCr (Y = 16 + 65.481 R + 128.553 G + 24.966 B for R,
G, B in [0, 1]: range 16–235, no rounding), in float64, with ``crop`` pixels removed from every
border (the convention is crop = scale). A grey image is its own luma: its values × 255 are
used as they are, as BasicSR does for one-channel images. PSNR = 10·log10(255² / MSE); SSIM is
MATLAB's: an 11 × 11 Gaussian window (σ 1.5), C1 = (0.01·255)², C2 = (0.03·255)², 'valid'
filtering, the mean of the map.

The harness calls the ``*_x<scale>`` functions as ``fn(hr_images, sr_by_scale)``: the original
images and ``{scale: [up-scaled image, …]}`` in the same order, each up-scaled image the size of
its original cropped to a multiple of the scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .data.images import as_float_image, modcrop
from .errors import ConfigError, InputError


def rgb_to_y(x: np.ndarray) -> np.ndarray:
    """BT.601 luma of float RGB H × W × 3 in [0, 1], in the 16–235 range (float64)."""
    x = np.asarray(x, dtype=np.float64)
    return 16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def _y(image: Any) -> np.ndarray:
    x, _, _ = as_float_image(image)
    return rgb_to_y(x) if x.shape[2] == 3 else x[..., 0].astype(np.float64) * 255.0


def _pair(hr: Any, sr: Any, crop: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _y(hr), _y(sr)
    if a.shape != b.shape:
        raise InputError(f"the images to compare differ in size: {a.shape[::-1]} vs {b.shape[::-1]}")
    if crop:
        if min(a.shape) <= 2 * crop:
            raise InputError(f"a {a.shape[1]}×{a.shape[0]} image has nothing left after cropping {crop} px per border")
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    return a, b


def psnr_y(hr: Any, sr: Any, crop: int = 0) -> float:
    """PSNR in dB on Y (BT.601), ``crop`` border pixels removed; ``inf`` for identical images."""
    a, b = _pair(hr, sr, crop)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    window = np.outer(g, g)
    return window / window.sum()


def _filter_valid(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    from scipy.signal import correlate2d

    return correlate2d(x, window, mode="valid")


def ssim_y(hr: Any, sr: Any, crop: int = 0) -> float:
    """MATLAB-style SSIM on Y (BT.601), ``crop`` border pixels removed."""
    a, b = _pair(hr, sr, crop)
    window = _gaussian_window()
    if min(a.shape) < window.shape[0]:
        raise InputError(f"SSIM needs at least 11×11 pixels after cropping, got {a.shape[1]}×{a.shape[0]}")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = _filter_valid(a, window), _filter_valid(b, window)
    var_a = _filter_valid(a * a, window) - mu_a**2
    var_b = _filter_valid(b * b, window) - mu_b**2
    cov = _filter_valid(a * b, window) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


# -- harness wrappers --------------------------------------------------------------------------


def _scored(hr_images: Sequence[Any], sr_by_scale: Mapping[int, Sequence[Any]], scale: int, fn) -> list[float]:
    if scale not in sr_by_scale:
        raise ConfigError(f"no ×{scale} results to score (scales given: {sorted(sr_by_scale)})")
    srs = sr_by_scale[scale]
    if len(srs) != len(hr_images):
        raise InputError(f"×{scale}: {len(srs)} up-scaled images for {len(hr_images)} originals")
    return [fn(modcrop(np.asarray(hr), scale), sr, crop=scale) for hr, sr in zip(hr_images, srs)]


def psnr_y_x2(hr_images, sr_by_scale) -> float:
    return float(np.mean(_scored(hr_images, sr_by_scale, 2, psnr_y)))


def psnr_y_x4(hr_images, sr_by_scale) -> float:
    return float(np.mean(_scored(hr_images, sr_by_scale, 4, psnr_y)))


def ssim_y_x2(hr_images, sr_by_scale) -> float:
    return float(np.mean(_scored(hr_images, sr_by_scale, 2, ssim_y)))


def ssim_y_x4(hr_images, sr_by_scale) -> float:
    return float(np.mean(_scored(hr_images, sr_by_scale, 4, ssim_y)))


def per_image(hr_images, sr_by_scale) -> dict[str, dict[str, list[float]]]:
    """PSNR-Y and SSIM-Y of every image at every scale given: ``{"x2": {"psnr_y": [...], "ssim_y": [...]}}``."""
    return {
        f"x{scale}": {
            "psnr_y": _scored(hr_images, sr_by_scale, scale, psnr_y),
            "ssim_y": _scored(hr_images, sr_by_scale, scale, ssim_y),
        }
        for scale in sorted(sr_by_scale)
    }
