"""The one seeding function: Python, numpy and — when a model brought it in — torch."""

from __future__ import annotations

import random
import sys

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (every device) and make cuDNN deterministic.

    torch is seeded only when it is already imported: seeding must not pull torch into a
    process whose models do not use it. Fully deterministic algorithms
    (``torch.use_deterministic_algorithms``) stay off: some CUDA kernels raise or crawl under them.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
