"""Up-scalers through ONNX: one graph per scale with dynamic height and width, torch-free up-scaling."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import cellzoo
from cellzoo.cli import main
from cellzoo.data.images import read_image, write_image
from cellzoo.errors import ConfigError, InputError
from cellzoo.export import EXPORT_FILE, export_onnx, upscaler_file
from cellzoo.runtime import Session, upscale_image, verify_onnx
from cellzoo.testing import tiny_images


@pytest.fixture(scope="module")
def upscaler(tiny_zoo):
    return cellzoo.create_model("tinyup").fit(tiny_images(3, 40, seed=0))


@pytest.fixture(scope="module")
def up_artifact(upscaler, tmp_path_factory) -> Path:
    return cellzoo.save(upscaler, tmp_path_factory.mktemp("up") / "tinyup")


@pytest.fixture(scope="module")
def up_onnx(up_artifact, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("up-onnx") / "tinyup-onnx"
    export_onnx(f"local-dir:{up_artifact}", out)
    return out


def _photo(size: tuple[int, int], seed: int) -> np.ndarray:
    return (tiny_images(1, max(size), seed=seed)[0][: size[0], : size[1]] * 255).round().astype(np.uint8)


def test_one_graph_per_scale_with_any_height_and_width(up_onnx):
    report = json.loads((up_onnx / "export.json").read_text())
    assert report["passed"]
    assert [v["file"] for v in report["variants"]] == [upscaler_file(2), upscaler_file(4)]
    assert not (up_onnx / EXPORT_FILE).exists()
    names = [c["name"] for c in report["variants"][0]["checks"]]
    assert any(n.startswith("golden set") for n in names)
    graph = onnx.load(str(up_onnx / upscaler_file(4)))
    (lr,) = graph.graph.input
    dims = [d.dim_param or d.dim_value for d in lr.type.tensor_type.shape.dim]
    assert lr.name == "lr" and dims[1] == 3 and all(isinstance(d, str) and d for d in (dims[0], dims[2], dims[3]))
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["cellzoo.task"] == "upscale"
    assert json.loads(meta["cellzoo.upscaler"])["scale"] == 4


def test_onnx_gives_the_torch_models_picture(upscaler, up_onnx):
    for scale in (2, 4):
        session = Session(up_onnx / upscaler_file(scale), threads=1)
        for image in (
            _photo((13, 21), 1),
            _photo((30, 17), 2)[..., 0],
            (tiny_images(1, 9, seed=3)[0] * 65535).astype(np.uint16),
        ):
            ours, want = upscale_image(session, image), upscaler.upscale(image, scale)
            assert ours.shape == want.shape and ours.dtype == want.dtype
            assert np.abs(ours.astype(np.int64) - want.astype(np.int64)).max() <= (1 if image.dtype == np.uint8 else 64)
    session = Session(up_onnx / upscaler_file(2), threads=1)
    big = _photo((50, 44), 4)
    tiled = upscale_image(session, big, tile=20)
    assert tiled.shape == (100, 88, 3)
    assert np.abs(tiled.astype(int) - upscale_image(session, big).astype(int)).mean() < 1.0


def test_verify_and_the_runtimes_other_entry_points(up_onnx, up_artifact):
    report = verify_onnx(up_onnx / upscaler_file(2), up_artifact)
    assert report.passed
    session = Session(up_onnx / upscaler_file(2), threads=1)
    with pytest.raises(InputError, match="up-scales images"):
        session.run(np.zeros((2, 3), np.float32))


def test_image_exports_refuse_cell_options(up_artifact, tmp_path):
    with pytest.raises(ConfigError, match="image model"):
        export_onnx(f"local-dir:{up_artifact}", tmp_path / "x", fp16=True)
    assert not (tmp_path / "x").exists()


def test_cli_upscales_through_the_export_without_torch(up_onnx, upscaler, tmp_path):
    image = tmp_path / "in.png"
    write_image(image, _photo((20, 26), 5))
    out = tmp_path / "out.png"
    script = textwrap.dedent(f"""
        import sys
        from cellzoo.cli import main
        sys.modules["torch"] = None  # any import of torch fails
        try:
            main(["upscale", {str(up_onnx)!r}, {str(image)!r}, "--scale", "4", "-o", {str(out)!r}])
        except SystemExit as stop:
            assert stop.code in (0, None), stop.code
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    got = read_image(out)
    assert got.shape == (80, 104, 3)
    assert np.abs(got.astype(int) - upscaler.upscale(read_image(image), 4).astype(int)).max() <= 1
    missing = CliRunner().invoke(
        main, ["upscale", str(up_onnx), str(image), "--scale", "3", "-o", str(tmp_path / "m.png")]
    )
    assert missing.exit_code != 0 and "model.x2.onnx, model.x4.onnx" in missing.output
    assert not (tmp_path / "m.png").exists()
    wrong = CliRunner().invoke(
        main, ["upscale", str(up_onnx / upscaler_file(2)), str(image), "--scale", "4", "-o", str(tmp_path / "w.png")]
    )
    assert wrong.exit_code != 0 and "not a ×4 up-scaler" in wrong.output and not (tmp_path / "w.png").exists()
