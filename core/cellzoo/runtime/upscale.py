"""Up-scale an image with an exported up-scaler: onnxruntime and numpy, no torch.

The image goes through the same pipeline as :meth:`cellzoo.Upscaler.upscale`
(:func:`cellzoo.data.images.upscale_with`), so the ONNX file and the torch model give the same
picture to the export's tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.images import upscale_with
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

    def run(part: np.ndarray) -> np.ndarray:
        lr = np.ascontiguousarray(np.transpose(part, (2, 0, 1))[None], dtype=np.float32)
        sr = session.run_feeds({session.input_name: lr})["sr"][0]
        return np.clip(np.transpose(sr, (1, 2, 0)), 0.0, 1.0)

    return upscale_with(run, image, scale, int(tile), int(upscaler.get("tile_overlap", 8)))
