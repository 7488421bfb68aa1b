"""Where a trained model comes from, by the name a user writes.

* ``arch.tag`` — a named checkpoint (``scanna.pbmc68k_reduced``), loaded from the local cache
  (:func:`cellzoo.paths.artifact_dir`);
* ``local-dir:PATH`` — an artifact directory anywhere on disk;
* ``hf-hub:ORG/NAME[@REV]`` — an artifact repository on the Hugging Face Hub (or ``HF_ENDPOINT``),
  downloaded into the Hub's cache with huggingface_hub, which honours ``HF_HUB_OFFLINE``.

As in timm, a bare name that looks like a path is refused rather than guessed at, so a folder
named like a checkpoint can never shadow the registry (or the other way round).

A checkpoint name resolves here, and only here (:func:`resolve_pretrained`)::

    $CELLZOO_OFFLINE_DIR bundle  →  local cache  →  Hub at the pinned commit  →  local build
                                    (sha256 of every file re-checked on every hit)   (unless no_build)

A published registry entry pins a commit and the sha256 + size of every file: what is
downloaded is checked against those before it enters the cache, and a cache hit is checked
again. An entry that is not published yet is built from its recipe (:mod:`cellzoo.build`), which
is what makes every name usable with no network at all. Each file is hashed once per load: the
resolver hashes it, so loading the resolved folder does not hash it again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import VerifyReport, load_artifact
from .artifacts import verify as verify_model
from .build import build_into
from .cache import cache_hit, checkpoint_lock, describe_origin, offline_artifact, read_origin
from .constants import COMMIT, __version__, hub_offline
from .errors import ArtifactError, ConfigError, HubError, UnknownNameError
from .hub import download, hub_errors, resolve_commit
from .paths import artifact_dir, looks_like_path
from .pretrained import pretrained_entries, pretrained_entry
from .registry import list_models

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
    directory = resolve_pretrained(name, revision=revision, no_build=no_build)
    kwargs.pop("verify_hashes", None)  # the resolver has just hashed every file; once per load is enough
    return load_artifact(directory, verify_hashes=False, **kwargs)


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


# ---------------------------------------------------------------------------------------------
# checkpoints by name
# ---------------------------------------------------------------------------------------------


def split_revision(name: str) -> tuple[str, str | None]:
    """``"arch.tag@rev"`` → ``("arch.tag", "rev")``; no ``@`` → ``(name, None)``."""
    base, at, revision = name.partition("@")
    if at and not revision:
        raise ConfigError(
            f"{name!r} ends with '@' but names no revision; write NAME@REVISION (a commit, branch or tag)"
        )
    return base, (revision or None)


def resolve_pretrained(
    name: str,
    *,
    revision: str | None = None,
    no_build: bool = False,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """The artifact directory of checkpoint ``name`` (``arch.tag`` or ``arch.tag@REV``), fetched if needed.

    Order: a bundle in ``$CELLZOO_OFFLINE_DIR``; the local cache; the Hub at the registry's
    pinned commit; a local build from the registry recipe (refused with ``no_build``). An explicit
    ``revision`` (or ``@REV``) pulls that revision of the entry's Hub repository instead of the
    pinned one and caches it under ``arch.tag@<commit>``. ``force`` fetches or builds again.
    """
    base, at_revision = split_revision(name)
    if revision and at_revision and revision != at_revision:
        raise ConfigError(f"{name!r} already names revision {at_revision!r}; revision={revision!r} contradicts it")
    revision = revision or at_revision
    if revision is None and not force:
        bundled = offline_artifact(base)
        if bundled is not None:
            return bundled

    entry = pretrained_entries().get(base)
    if entry is None:
        # not (or no longer) in the registry: a checkpoint already in the cache still loads
        target = artifact_dir(base)
        if revision is None and (target / "config.json").is_file():
            with checkpoint_lock(base):
                cache_hit(target, None, base, fix=f"delete {target} and get the checkpoint again")
            return target
        pretrained_entry(base)  # raises UnknownNameError with the closest names
    if revision is not None and revision != entry.hub.revision:
        return _resolve_revision(entry, revision, force=force)

    target = artifact_dir(entry.name)
    pinned = entry.hub.files if entry.published else None
    fix = f"run `cellzoo pull {entry.name} --force` to fetch it again (or delete {target})"
    with checkpoint_lock(entry.name):
        if not force and cache_hit(target, pinned, entry.name, fix):
            return target
        if entry.published:
            if hub_offline():
                raise HubError(_offline_message(entry.name, target, entry))
            download(entry.hub.repo_id, entry.hub.revision, target, expected=entry.hub.files, name=entry.name)
            return target
        if no_build:
            raise HubError(
                f"{entry.name!r} is not published on the Hub yet (registry file {entry.path} pins no commit) and "
                f"building it here was refused (--no-build / no_build=True). Run `cellzoo build {entry.name}` to "
                "train it from its recipe, or drop --no-build."
            )
        build_into(entry, target, progress=progress)
        return target


def _offline_message(name: str, target: Path, entry: Any) -> str:
    origin = read_origin(target) if (target / "config.json").is_file() else None
    held = f" The cache holds {describe_origin(origin)}, not the pinned files." if origin or target.exists() else ""
    return (
        f"checkpoint {name!r} is published as {entry.hub.repo_id}@{entry.hub.revision[:12]} but is not in the local "
        f"cache ({target}), and HF_HUB_OFFLINE is set, so it cannot be downloaded.{held} Run `cellzoo pull {name}` "
        f"with network access (unset HF_HUB_OFFLINE), or on a connected machine run `cellzoo bundle {name} -o DIR`, "
        "copy DIR here and set CELLZOO_OFFLINE_DIR=DIR."
    )


def _resolve_revision(entry: Any, revision: str, *, force: bool) -> Path:
    """Pull ``revision`` of the entry's repository into ``arch.tag@<commit>`` (not the pinned checkpoint)."""
    if COMMIT.match(revision):
        commit = revision
    elif hub_offline():
        raise HubError(
            f"{entry.name}@{revision}: a branch or tag can only be resolved online and HF_HUB_OFFLINE is set; "
            f"name a full commit hash ({entry.name}@<40 hex digits>) to use a cached revision"
        )
    else:
        commit = resolve_commit(entry.hub.repo_id, revision)
    cached_name = f"{entry.name}@{commit}"
    target = artifact_dir(cached_name)
    fix = f"run `cellzoo pull {cached_name} --force` to fetch it again (or delete {target})"
    with checkpoint_lock(cached_name):
        if not force and cache_hit(target, None, cached_name, fix):
            return target
        if hub_offline():
            raise HubError(
                f"{cached_name} is not in the local cache ({target}) and HF_HUB_OFFLINE is set; run "
                f"`cellzoo pull {cached_name}` with network access first"
            )
        download(entry.hub.repo_id, commit, target, expected=None, name=cached_name)
    return target


def artifact_path(artifact: str | os.PathLike[str]) -> Path:
    """An artifact directory from a path, ``local-dir:PATH`` or a checkpoint name in the cache."""
    if isinstance(artifact, os.PathLike):
        return Path(artifact)
    text = str(artifact)
    if text.startswith(f"{LOCAL_DIR}:"):
        return Path(text.removeprefix(f"{LOCAL_DIR}:")).expanduser()
    if looks_like_path(text):
        return Path(text).expanduser()
    cached = artifact_dir(text)
    if cached.is_dir():
        return cached
    raise ArtifactError(
        f"{text!r} is neither an artifact directory nor a checkpoint in the cache ({cached}); pass a path "
        f"(e.g. ./{text}) or run `cellzoo build {text}` / `cellzoo pull {text}` first"
    )


def verify(
    model_or_name: Any, *, atol: float | None = None, rtol: float | None = None, strict: bool = False
) -> VerifyReport:
    """:func:`cellzoo.artifacts.verify` for a loaded model, an artifact directory or any model name.

    A name (``arch.tag``, ``local-dir:PATH``, ``hf-hub:ORG/NAME@REV``) is resolved and loaded first.
    """
    if isinstance(model_or_name, str) and not Path(model_or_name).expanduser().is_dir():
        model = load_source(model_or_name)
        report = verify_model(model, atol=atol, rtol=rtol, strict=strict)
        report.source = model_or_name
        return report
    return verify_model(model_or_name, atol=atol, rtol=rtol, strict=strict)


#: the facade's ``cellzoo.load``
load = load_source
