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


def dataset_argument(name: str | os.PathLike[str]) -> tuple[str, str] | None:
    """``("image-folder", "PATH")`` for ``"image-folder:PATH"``: a dataset name with its one argument.

    The name part is two or more characters (so a Windows drive letter is not one); anything else
    gives None.
    """
    if isinstance(name, os.PathLike):
        return None
    head, sep, tail = str(name).partition(":")
    if sep and tail and len(head) > 1 and head[0].isalpha() and all(c.isalnum() or c in "_-" for c in head):
        return head, tail
    return None


def looks_like_path(name: str | os.PathLike[str]) -> bool:
    """The one rule for "is this a path?" (timm's): a PathLike, separators, a leading ``.`` or ``~``,
    an ``.h5ad`` ending, or an existing file or folder. Everything else is a name."""
    if isinstance(name, os.PathLike):
        return True
    text = str(name)
    if dataset_argument(text):
        return False
    return "/" in text or "\\" in text or text.startswith((".", "~")) or text.endswith(".h5ad") or os.path.exists(text)
