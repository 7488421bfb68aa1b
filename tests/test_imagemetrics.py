"""PSNR-Y and SSIM-Y the BasicSR way, cross-checked against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest

from cellzoo import imagemetrics as m
from cellzoo.errors import ConfigError, InputError
from cellzoo.testing import tiny_images

skimage_metrics = pytest.importorskip("skimage.metrics")


def _pair(seed=0, noise=0.05):
    hr = tiny_images(1, 48, seed=seed)[0]
    sr = np.clip(hr + np.random.default_rng(seed).normal(0, noise, hr.shape), 0, 1).astype(np.float32)
    return hr, sr


def test_psnr_matches_scikit_image_on_y():
    hr, sr = _pair()
    y_hr, y_sr = m.rgb_to_y(hr)[4:-4, 4:-4], m.rgb_to_y(sr)[4:-4, 4:-4]
    ref = skimage_metrics.peak_signal_noise_ratio(y_hr, y_sr, data_range=255)
    assert m.psnr_y(hr, sr, crop=4) == pytest.approx(ref, abs=1e-10)
    assert m.psnr_y(hr, hr) == float("inf")
    grey = np.clip(hr[..., 0], 0, 0.9)
    assert m.psnr_y(grey, grey + 2 / 255) == pytest.approx(20 * np.log10(255 / 2), abs=1e-4)  # a 2-level offset


def test_ssim_matches_scikit_images_gaussian_ssim_on_the_valid_region():
    hr, sr = _pair(seed=1)
    ours = m.ssim_y(hr, sr, crop=2)
    y_hr, y_sr = m.rgb_to_y(hr)[2:-2, 2:-2], m.rgb_to_y(sr)[2:-2, 2:-2]
    _, full = skimage_metrics.structural_similarity(
        y_hr, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, full=True,
        truncate=3.5,
    )  # fmt: skip
    valid = full[5:-5, 5:-5].mean()  # skimage filters with reflection; MATLAB/BasicSR keep the valid part only
    assert ours == pytest.approx(valid, abs=1e-6)
    assert m.ssim_y(hr, hr) == pytest.approx(1.0)
    assert m.ssim_y(*_pair(seed=1, noise=0.1)) < m.ssim_y(*_pair(seed=1, noise=0.02)) < 1.0


def test_harness_wrappers_crop_by_the_scale_and_check_their_input():
    hrs = tiny_images(2, 30, seed=2)
    sr = {4: [hr[:28, :28] for hr in hrs], 2: [hr for hr in hrs]}
    assert m.psnr_y_x4(hrs, sr) == float("inf") and m.ssim_y_x2(hrs, sr) == pytest.approx(1.0)
    table = m.per_image(hrs, sr)
    assert set(table) == {"x2", "x4"} and len(table["x2"]["ssim_y"]) == 2
    with pytest.raises(ConfigError, match="×4"):
        m.psnr_y_x4(hrs, {2: sr[2]})
    with pytest.raises(InputError, match="differ in size"):
        m.psnr_y(hrs[0], hrs[0][:20])
