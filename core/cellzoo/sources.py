"""Where a trained model comes from, by the name a user writes.

* ``arch.tag`` — a named checkpoint (``scanna.pbmc68k_reduced``), loaded from the local cache
  (:func:`cellzoo.paths.artifact_dir`);
* ``local-dir:PATH`` — an artifact directory anywhere on disk;
* ``hf-hub:ORG/NAME[@REV]`` — an artifact repository on the Hugging Face Hub (or ``HF_ENDPOINT``),
  downloaded into the Hub's cache with huggingface_hub, which honours ``HF_HUB_OFFLINE``.

As in timm, a bare name that looks like a path is refused rather than guessed at, so a folder
named like a checkpoint can never shadow the registry (or the other way round).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, UnknownNameError

LOCAL_DIR = "local-dir"
HF_HUB = "hf-hub"
CHECKPOINT = "checkpoint"
PREFIXES = (LOCAL_DIR, HF_HUB)

_LOAD_OPTIONS = {"verify_hashes"}
_HUB_OPTIONS = _LOAD_OPTIONS | {"revision", "cache_dir", "local_files_only", "token"}
_CHECKPOINT_OPTIONS = _LOAD_OPTIONS | {"revision", "no_build"}


@dataclass(frozen=True)
class Source:
    """A parsed model name: ``kind`` is ``local-dir``, ``hf-hub`` or ``checkpoint``."""

    kind: str
    target: str
    revision: str | None = None

    def __str__(self) -> str:
        if self.kind == CHECKPOINT:
            return self.target
        return f"{self.kind}:{self.target}" + (f"@{self.revision}" if self.revision else "")


def looks_like_path(name: str) -> bool:
    """timm's rule: separators, a leading ``.`` or ``~``, or an existing file or folder."""
    return "/" in name or "\\" in name or name.startswith((".", "~")) or os.path.exists(name)


def parse_source(name: str) -> Source:
    """Split a model name into its source; path-looking names without a prefix are an error."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a model name must be a non-empty string, got {name!r}")
    name = name.strip()
    prefix, sep, rest = name.partition(":")
    if sep and prefix in PREFIXES:
        if not rest:
            raise ConfigError(f"{name!r} names no {prefix} location; write {prefix}:{_example(prefix)}")
        if prefix == LOCAL_DIR:
            return Source(LOCAL_DIR, rest)
        repo_id, at, revision = rest.partition("@")
        org, slash, repo = repo_id.partition("/")
        if not (org and slash and repo) or "/" in repo or (at and not revision):
            raise ConfigError(
                f"{name!r} is not a Hub name; write hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION "
                "(a branch, tag or commit hash), e.g. hf-hub:cellzoo/scanna-pbmc68k_reduced@main"
            )
        return Source(HF_HUB, repo_id, revision or None)
    # a scheme-like prefix (two or more letters: not a Windows drive) is a source we do not know
    if sep and len(prefix) > 1 and re.fullmatch(r"[A-Za-z][A-Za-z0-9+._-]*", prefix):
        raise ConfigError(
            f"{name!r} has the unknown source prefix {prefix!r}; use local-dir:PATH, hf-hub:ORG/NAME[@REV] "
            "or a checkpoint name arch.tag"
        )
    if looks_like_path(name):
        raise ConfigError(
            f"{name!r} looks like a path. To load an artifact directory write 'local-dir:{name}'; a name "
            "without a prefix is looked up as a checkpoint 'arch.tag' (see `cellzoo list --pretrained`)."
        )
    if sep:
        raise ConfigError(f"{name!r} is not a model name; a checkpoint is named arch.tag (letters, digits, '_', '-')")
    return Source(CHECKPOINT, name)


def _example(prefix: str) -> str:
    return "path/to/artifact" if prefix == LOCAL_DIR else "ORG/NAME[@REV]"


def load_source(name_or_path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Load the trained model ``name_or_path`` names (see the module docstring for the forms).

    A :class:`os.PathLike` (e.g. a :class:`pathlib.Path`) is unambiguous and loads as a directory.
    ``verify_hashes`` is passed to :func:`cellzoo.artifacts.load_artifact`; Hub sources also take
    ``revision``, ``cache_dir``, ``local_files_only`` and ``token``.
    """
    from .artifacts import load_artifact

    if isinstance(name_or_path, os.PathLike):
        _check_options(kwargs, _LOAD_OPTIONS, str(name_or_path))
        return load_artifact(Path(name_or_path), **kwargs)
    source = parse_source(name_or_path)
    if source.kind == LOCAL_DIR:
        _check_options(kwargs, _LOAD_OPTIONS, name_or_path)
        return load_artifact(Path(source.target).expanduser(), **kwargs)
    if source.kind == HF_HUB:
        _check_options(kwargs, _HUB_OPTIONS, name_or_path)
        return _load_from_hub(source, **kwargs)
    _check_options(kwargs, _CHECKPOINT_OPTIONS, name_or_path)
    return _load_checkpoint(source.target, **kwargs)


def _check_options(kwargs: dict[str, Any], allowed: set[str], name: str) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ConfigError(f"loading {name!r} takes no option {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")


def _load_checkpoint(name: str, *, revision: str | None = None, no_build: bool = False, **kwargs: Any) -> Any:
    from .artifacts import load_artifact
    from .hub import resolve_pretrained
    from .registry import list_models

    arch, dot, tag = name.partition(".")
    installed = list_models()
    if not dot:
        if arch in installed:
            raise ConfigError(
                f"{name!r} is an architecture; use create_model({name!r}) to build it untrained or "
                f"load('{name}.TAG') for a trained checkpoint (`cellzoo list --pretrained` shows the tags)"
            )
        raise UnknownNameError("model", name, installed)
    if not arch or not tag:
        raise ConfigError(f"{name!r} is not a checkpoint name; write arch.tag, e.g. scanna.pbmc68k_reduced")
    if arch not in installed:
        raise UnknownNameError(
            "model", arch, installed, hint=f" ({name!r} names a checkpoint of architecture {arch!r}.)"
        )
    # cache → Hub at the pinned revision → local build from the registry recipe
    return load_artifact(resolve_pretrained(name, revision=revision, no_build=no_build), **kwargs)


def _load_from_hub(
    source: Source,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
    verify_hashes: bool = True,
) -> Any:
    from huggingface_hub import constants, snapshot_download

    from . import __version__
    from .artifacts import load_artifact
    from .hub import hub_errors

    if revision and source.revision and revision != source.revision:
        raise ConfigError(f"{source} already pins revision {source.revision!r}; revision={revision!r} contradicts it")
    revision = revision or source.revision
    offline = bool(constants.HF_HUB_OFFLINE) if local_files_only is None else bool(local_files_only)
    advice = "copy the artifact folder here and load it with local-dir:PATH"
    with hub_errors(source.target, revision, offline=offline, fallback=advice):
        snapshot = snapshot_download(
            source.target,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=offline,
            token=token,
            library_name="cellzoo",
            library_version=__version__,
        )
    return load_artifact(Path(snapshot), verify_hashes=verify_hashes)
