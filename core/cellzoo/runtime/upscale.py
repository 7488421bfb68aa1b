"""Up-scale an image with an exported up-scaler: onnxruntime and numpy, no torch.

The image goes through the same conversions as :meth:`cellzoo.Upscaler.upscale` (layouts and
depths, tiles blended over their overlap, alpha up-scaled bicubically), so the ONNX file and the
torch model give the same picture to the export's tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.images import as_float_image, from_rgb, imresize, restore_image, tiled, to_rgb
from ..errors import ProtocolError
from .session import Session


def upscale_image(session: Session, image: Any, tile: int = 0) -> np.ndarray:
    """``image`` up-scaled by the session's graph scale, in its own layout and dtype."""
    upscaler = session.info.upscaler
    if upscaler is None:
        raise ProtocolError(
            f"{session.path.name} is a {session.info.task!r} model; up-scaling needs an exported up-scaler"
        )
    scale = int(upscaler["scale"])
    x, alpha, info = as_float_image(image)
    rgb = to_rgb(x)

    def run(part: np.ndarray) -> np.ndarray:
        lr = np.ascontiguousarray(np.transpose(part, (2, 0, 1))[None], dtype=np.float32)
        sr = session.run_feeds({session.input_name: lr})["sr"][0]
        return np.clip(np.transpose(sr, (1, 2, 0)), 0.0, 1.0)

    out = tiled(run, rgb, scale, int(tile), int(upscaler.get("tile_overlap", 8))) if tile else run(rgb)
    out = from_rgb(out, x.shape[2])
    if alpha is not None:
        alpha = np.clip(imresize(alpha[..., None], scale)[..., 0], 0.0, 1.0).astype(np.float32)
    return restore_image(out, alpha, info)
