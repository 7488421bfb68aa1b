"""Image plumbing: layouts and depths, MATLAB bicubic, HR/LR pairs, patches, tiles, image files."""

from __future__ import annotations

import numpy as np
import pytest

from cellzoo.data import images as im
from cellzoo.errors import ConfigError, InputError
from cellzoo.testing import tiny_images


def _cubic(x):
    a = np.abs(x)
    return (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1) + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2))


def _matlab_axis(x, scale, axis):
    """MATLAB imresize's bicubic along one axis (an independent port: contributions, symmetric borders)."""
    n_in = x.shape[axis]
    n_out = int(np.ceil(n_in * scale))
    width = 4.0 / scale if scale < 1 else 4.0
    kernel = (lambda d: scale * _cubic(scale * d)) if scale < 1 else _cubic
    u = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    ind = left[:, None] + np.arange(int(np.ceil(width)) + 2)
    w = kernel(u[:, None] - ind)
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    idx = mirror[np.mod(ind - 1, 2 * n_in).astype(int)]
    moved = np.moveaxis(x, axis, 0)
    out = np.einsum("op,op...->o...", w, moved[idx])
    return np.moveaxis(out, 0, axis)


def matlab_imresize(x, scale):
    return _matlab_axis(_matlab_axis(np.asarray(x, np.float64), scale, 0), scale, 1)


@pytest.mark.parametrize("scale", [0.5, 0.25, 2.0])
def test_imresize_is_matlabs_bicubic(scale):
    x = tiny_images(1, 32, seed=1)[0]
    assert np.abs(im.imresize(x, scale) - matlab_imresize(x, scale)).max() < 1e-6


def test_pillows_bicubic_is_not_matlabs():
    from PIL import Image

    x = (tiny_images(1, 64, seed=2)[0] * 255).round().astype(np.uint8)
    pil = np.asarray(Image.fromarray(x).resize((16, 16), Image.BICUBIC), dtype=np.float64)
    ours = np.clip(im.imresize(x / 255.0, 0.25), 0, 1) * 255
    assert np.abs(pil - ours).max() > 2  # grey levels: swapping Pillow in would move every LR image


def test_layouts_round_trip_in_their_own_dtype():
    rgb = tiny_images(1, 8, seed=3)[0]
    for image in (rgb, (rgb * 255).round().astype(np.uint8), (rgb[..., 0] * 65535).astype(np.uint16),
                  np.concatenate([rgb, rgb[..., :1]], axis=2)):  # fmt: skip
        x, alpha, info = im.as_float_image(image)
        assert x.dtype == np.float32 and x.shape[2] in (1, 3)
        back = im.restore_image(x, alpha, info)
        assert back.dtype == image.dtype and back.shape == image.shape
        np.testing.assert_allclose(back.astype(np.float64), image.astype(np.float64), atol=1e-6)
    for bad in (np.zeros((4, 4), bool), np.zeros((4, 4, 2)), np.full((4, 4), 2.0), np.zeros((4, 4), np.int32),
                np.zeros((0, 3)), np.full((3, 3), np.nan)):  # fmt: skip
        with pytest.raises(InputError):
            im.as_float_image(bad)


def test_downsample_makes_the_lr_of_the_cropped_image():
    hr = tiny_images(1, 30, seed=4)[0]
    lr = im.downsample(hr, 4)
    assert lr.shape == (7, 7, 3) and lr.dtype == np.float32
    assert np.abs(lr - np.clip(matlab_imresize(hr[:28, :28], 0.25), 0, 1)).max() < 1e-6
    with pytest.raises(InputError, match="smaller"):
        im.downsample(hr[:3, :3], 4)
    with pytest.raises(InputError):
        im.downsample(hr, 1)


def test_random_patches_come_from_the_images():
    images = tiny_images(2, 20, seed=5)
    patches = im.random_patches(images, 8, 10, np.random.default_rng(0))
    assert patches.shape == (10, 8, 8, 3)
    with pytest.raises(InputError):
        im.random_patches(images, 32, 1, np.random.default_rng(0))


@pytest.mark.parametrize("shape", [(37, 45), (20, 20), (1, 30), (50, 9)])
def test_tiles_blend_to_the_whole_image(shape):
    x = np.random.default_rng(6).random((*shape, 3)).astype(np.float32)

    def nearest(t):
        return np.repeat(np.repeat(t, 2, 0), 2, 1)

    np.testing.assert_allclose(im.tiled(nearest, x, 2, 16, 4), nearest(x), atol=1e-6)
    smooth = tiny_images(1, 64, seed=7)[0]
    whole = im.imresize(smooth, 2)
    tiled = im.tiled(lambda t: im.imresize(t, 2), smooth, 2, 24, 8)
    assert np.abs(tiled - whole)[16:-16, 16:-16].max() < 1e-3
    with pytest.raises(ConfigError):
        im.tiled(nearest, x, 2, 8, 4)


def test_files_round_trip_and_bad_files_are_refused(tmp_path):
    rgb = (tiny_images(1, 12, seed=8)[0] * 255).round().astype(np.uint8)
    grey16 = (tiny_images(1, 12, seed=9)[0][..., 0] * 65535).astype(np.uint16)
    rgba = np.concatenate([rgb, rgb[..., :1]], axis=2)
    for name, image in (("a.png", rgb), ("b.png", grey16), ("c.png", rgba), ("d.tif", rgb), ("e.png", rgb[..., 0])):
        path = im.write_image(tmp_path / name, image)
        back = im.read_image(path)
        assert back.dtype == image.dtype and back.shape == image.shape
        np.testing.assert_array_equal(back, image)
    with pytest.raises(FileExistsError):
        im.write_image(tmp_path / "a.png", rgb)
    with pytest.raises(ConfigError):
        im.write_image(tmp_path / "x.gif", rgb)
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:60])
    for bad in ("text.png", "cut.png", "missing.png"):
        with pytest.raises(InputError):
            im.read_image(tmp_path / bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.png",
        "b.png",
        "c.png",
        "cut.png",
        "d.tif",
        "e.png",
        "text.png",
    ]
