"""The upscale task: the Upscaler base, the interpolation controls, the harness on image sets, `cellzoo upscale`."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import cellzoo
from cellzoo import DatasetSpec, hookimpl
from cellzoo.errors import ConfigError, InputError
from cellzoo.imagemetrics import psnr_y
from cellzoo.testing import contract_suite, tiny_images

test_controls_contract = contract_suite(["nearest", "bicubic"])


def _fitted(name: str):
    return cellzoo.create_model(name).fit(tiny_images(1, 16))


class ImagePlugin:
    @hookimpl
    def cellzoo_datasets(self):
        return [
            DatasetSpec(
                "tiny_images", tasks=("upscale",), loader=f"{__name__}:load_tiny", data="images",
                summary="Smooth synthetic images with a fixed split.",
            ),
            DatasetSpec(
                "tiny_image_list", tasks=("upscale",), loader=f"{__name__}:load_list", data="images",
                summary="Smooth synthetic images, no split of their own.",
            ),
        ]  # fmt: skip


def load_tiny():
    test = [(im * 255).round().astype(np.uint8) for im in tiny_images(2, 40, seed=1)]  # 8-bit, like real files
    return {"train": tiny_images(3, 32, seed=0), "test": test}


def load_list():
    return tiny_images(4, 32, seed=2)


@pytest.fixture
def image_pm(zoo_pm):
    zoo_pm.register(ImagePlugin(), name="images-test", distribution="cellzoo-images-test", version="0")
    return zoo_pm


# -- the base and the controls ---------------------------------------------------------------------


def test_every_layout_comes_back_in_its_own_layout_and_depth():
    model = _fitted("bicubic")
    rgb = tiny_images(1, 20, seed=3)[0]
    grey16 = (rgb[..., 0] * 65535).round().astype(np.uint16)
    rgba = np.concatenate([(rgb * 255).round().astype(np.uint8), np.full((20, 20, 1), 200, np.uint8)], axis=2)
    for image, shape in ((rgb, (40, 40, 3)), (grey16, (40, 40)), (rgba, (40, 40, 4))):
        out = model.upscale(image, 2)
        assert out.shape == shape and out.dtype == image.dtype
    assert np.abs(model.upscale(rgba, 2)[..., 3].astype(int) - 200).max() <= 1  # a flat alpha stays flat
    odd = model.upscale(rgb[:7, :5], 4)
    assert odd.shape == (28, 20, 3)


def test_bicubic_beats_nearest_on_smooth_images_and_scales_are_checked():
    from cellzoo.data.images import downsample

    hr = tiny_images(1, 64, seed=4)[0]
    lr = downsample(hr, 4)
    near, bic = _fitted("nearest").upscale(lr, 4), _fitted("bicubic").upscale(lr, 4)
    assert psnr_y(hr, bic, crop=4) > psnr_y(hr, near, crop=4)
    with pytest.raises(ConfigError, match="up-scales by"):
        _fitted("bicubic").upscale(lr, 5)
    with pytest.raises(InputError):
        _fitted("bicubic").upscale(hr * 3.0, 2)  # floats outside [0, 1]


def test_tiles_give_the_whole_image_result_in_the_interior():
    lr = tiny_images(1, 48, seed=5)[0]
    whole = cellzoo.create_model("bicubic").fit([lr]).upscale(lr, 2)
    tiled = cellzoo.create_model("bicubic", tile=20).fit([lr]).upscale(lr, 2)
    assert tiled.shape == whole.shape
    assert np.abs(tiled[16:-16, 16:-16] - whole[16:-16, 16:-16]).max() < 2e-3


# -- the harness -----------------------------------------------------------------------------------


def test_the_harness_scores_up_scalers_on_the_datasets_own_split(image_pm, tmp_path):
    from cellzoo.bench import run_suite

    suite = {
        "name": "upscale-tiny",
        "task": "upscale",
        "models": ["*"],
        "seeds": [0],
        "datasets": [{"name": "tiny_images"}],
    }
    result = run_suite(suite, tmp_path / "out", progress=False)
    records = {r["model"]["name"]: r for r in result.records}
    assert set(records) == {"nearest", "bicubic"}
    assert all(r["status"] == "ok" for r in records.values()), [r.get("error") for r in records.values()]
    assert records["bicubic"]["metrics"]["psnr_y_x2"] > records["nearest"]["metrics"]["psnr_y_x2"]
    assert records["bicubic"]["megapixels_per_second"] > 0
    table = records["bicubic"]["tables"]["upscale_per_image"]
    assert len(table["x4"]["psnr_y"]) == 2  # the two test images, never the training ones
    rows = {row["model"]: row for row in result.leaderboard.rows}
    assert rows["bicubic"]["score"] == pytest.approx(1.0) and rows["nearest"]["score"] == pytest.approx(0.0)
    again = run_suite(suite, tmp_path / "out", progress=False, retry_failed=True)
    assert again.counts["reused"] == 2


def test_a_fixed_split_needs_the_datasets_own_parts(image_pm, tmp_path):
    from cellzoo.bench import run_suite
    from cellzoo.errors import BenchmarkError

    suite = {"name": "u", "task": "upscale", "models": ["*"], "seeds": [0], "datasets": [{"name": "tiny_image_list"}]}
    with pytest.raises(BenchmarkError, match="holdout"):
        run_suite(suite, tmp_path / "a", progress=False)
    held_out = {**suite, "split": {"kind": "holdout", "test_fraction": 0.5}}
    result = run_suite(held_out, tmp_path / "b", progress=False)
    assert all(r["status"] == "ok" for r in result.records)


# -- the command line ------------------------------------------------------------------------------


def test_cli_upscale_writes_the_image_and_refuses_bad_input(tmp_path):
    from cellzoo.cli import main
    from cellzoo.data.images import read_image, write_image

    image = tmp_path / "in.png"
    write_image(image, (tiny_images(1, 24, seed=6)[0] * 255).round().astype(np.uint8))
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, ["upscale", "bicubic", str(image), "--scale", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert read_image(out).shape == (96, 96, 3)
    again = CliRunner().invoke(main, ["upscale", "bicubic", str(image), "--scale", "4", "-o", str(out)])
    assert again.exit_code != 0 and "exists" in again.output
    broken = tmp_path / "broken.png"
    broken.write_bytes(image.read_bytes()[:40])
    bad = CliRunner().invoke(main, ["upscale", "bicubic", str(broken), "--scale", "2", "-o", str(tmp_path / "b.png")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output and not (tmp_path / "b.png").exists()
    wrong = CliRunner().invoke(main, ["upscale", "bicubic", str(image), "--scale", "5", "-o", str(tmp_path / "c.png")])
    assert wrong.exit_code != 0 and "up-scales by" in wrong.output and not (tmp_path / "c.png").exists()
