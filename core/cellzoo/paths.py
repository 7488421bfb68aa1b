"""Where cellzoo keeps things on disk.

Everything lives under one home folder: ``$CELLZOO_HOME`` when set (tests, shared clusters,
air-gapped machines), else the platform's user cache folder. The Hub's own cache stays where
huggingface_hub puts it (``HF_HOME``); this folder holds cellzoo's trained checkpoints by name.
"""

from __future__ import annotations

import os
from pathlib import Path

from .constants import HOME_ENV
from .errors import ConfigError


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


def looks_like_path(name: str | os.PathLike[str]) -> bool:
    """The one rule for "is this a path?" (timm's): a PathLike, separators, a leading ``.`` or ``~``,
    an ``.h5ad`` ending, or an existing file or folder. Everything else is a name."""
    if isinstance(name, os.PathLike):
        return True
    text = str(name)
    return "/" in text or "\\" in text or text.startswith((".", "~")) or text.endswith(".h5ad") or os.path.exists(text)
