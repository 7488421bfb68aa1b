"""Where cellzoo keeps things on disk.

Everything lives under one home folder: ``$CELLZOO_HOME`` when set (tests, shared clusters,
air-gapped machines), else the platform's user cache folder. The Hub's own cache stays where
huggingface_hub puts it (``HF_HOME``); this folder holds cellzoo's trained checkpoints by name.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

HOME_ENV = "CELLZOO_HOME"


def home() -> Path:
    """``$CELLZOO_HOME``, or the user cache folder for ``cellzoo``."""
    override = os.environ.get(HOME_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cellzoo"))


def models_dir() -> Path:
    """The folder that holds one artifact directory per named checkpoint (``arch.tag``)."""
    return home() / "models"


def artifact_dir(name: str) -> Path:
    """The cache location of checkpoint ``name`` (``arch.tag``); it may not exist yet."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ConfigError(f"checkpoint name {name!r} cannot name a folder; expected 'arch.tag'")
    return models_dir() / name
