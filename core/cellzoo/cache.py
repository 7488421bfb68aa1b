"""The local cache of checkpoints by name, and the offline bundles that stand in for it.

Each cached checkpoint is an artifact directory (``cellzoo.paths.artifact_dir(name)``) with an
origin record, ``.cellzoo-origin.json``: where it came from (``hub``, ``build``, ``copy``) and the
sha256 + size of every file then. A cache hit re-hashes every file, so a changed file is an
:class:`~cellzoo.errors.IntegrityError`, never different weights. A per-name file lock lets
concurrent processes fill the same name safely.

A bundle (written by ``cellzoo bundle``, see :mod:`cellzoo.bundle`) is a folder of checkpoints with
an ``index.json`` of their hashes; ``$CELLZOO_OFFLINE_DIR`` names the bundles to read first.

This module only keeps bytes: it never downloads (:mod:`cellzoo.hub`) and never builds
(:mod:`cellzoo.build`); :mod:`cellzoo.sources` decides which to do.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .artifacts import CARD_FILE, CONFIG_FILE, check_files, read_config, sha256_file
from .constants import OFFLINE_DIR_ENV, __version__, env_list
from .errors import ConfigError, HubError, IntegrityError
from .fileio import write_json
from .paths import models_dir
from .pretrained import pretrained_entries

ORIGIN_FILE = ".cellzoo-origin.json"
LOCKS_DIR = ".locks"
#: seconds a process waits for another one that is pulling or building the same name
LOCK_TIMEOUT = 2 * 3600
INDEX_FILE = "index.json"
BUNDLE_FORMAT = 1


# ---------------------------------------------------------------------------------------------
# origin records
# ---------------------------------------------------------------------------------------------


def file_records(directory: Path, paths: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size"}}`` for ``paths`` (default: every file but cellzoo's own)."""
    directory = Path(directory)
    if paths is None:
        paths = sorted(
            p.relative_to(directory).as_posix()
            for p in directory.rglob("*")
            if p.is_file() and not p.relative_to(directory).as_posix().startswith((".cache/", ORIGIN_FILE))
        )
    return {rel: {"sha256": sha256_file(directory / rel), "size": (directory / rel).stat().st_size} for rel in paths}


def artifact_files(directory: Path) -> list[str]:
    """The files that make up the artifact in ``directory``: config.json, its card and every hashed file."""
    config_json = read_config(directory)
    files = [CONFIG_FILE, *sorted(config_json["files"])]
    if (directory / CARD_FILE).is_file():
        files.append(CARD_FILE)
    return files


def read_origin(directory: Path) -> dict[str, Any] | None:
    """Where a cached artifact came from (hub / build / copy) and the hashes of its files then."""
    path = Path(directory) / ORIGIN_FILE
    try:
        origin = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return origin if isinstance(origin, dict) else None


def write_origin(directory: Path, source: str, *, files: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    """Record where the artifact in ``directory`` came from and the hashes of ``files`` (default: its files)."""
    origin = {
        "source": source,
        **fields,
        "files": file_records(directory, files if files is not None else artifact_files(directory)),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "cellzoo": __version__,
    }
    write_json(Path(directory) / ORIGIN_FILE, origin)
    return origin


def describe_origin(origin: Mapping[str, Any] | None) -> str:
    if not origin:
        return "an artifact of unknown origin"
    if origin.get("source") == "hub":
        return f"Hub {origin.get('repo_id')}@{str(origin.get('revision'))[:12]}"
    if origin.get("source") == "build":
        return "a local build from the registry recipe"
    if origin.get("source") == "copy":
        return "the pinned files, copied into the cache"
    return str(origin.get("source"))


@contextlib.contextmanager
def checkpoint_lock(name: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """An inter-process lock for one checkpoint name, so concurrent pulls leave one copy."""
    from filelock import FileLock, Timeout

    locks = models_dir() / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / f"{name}.lock"))
    try:
        with lock.acquire(timeout=timeout):
            yield
    except Timeout:
        raise HubError(
            f"waited {timeout:.0f} s for another process pulling or building {name!r} (lock {lock.lock_file}); "
            "if no such process is running, delete the lock file and retry"
        ) from None


def cache_hit(directory: Path, pinned: Mapping[str, Any] | None, name: str, fix: str) -> bool:
    """True when ``directory`` holds the wanted artifact, every file re-hashed; False when absent or stale.

    With ``pinned`` (a published entry's files) the cache must hold exactly that content: an
    artifact recorded with other hashes (another revision, a local build) is stale, while one
    recorded with the pinned hashes whose files changed since is an :class:`IntegrityError`.
    After a hit every file of the artifact has been hashed, so loading it need not hash again.
    """
    if not (directory / CONFIG_FILE).is_file():
        return False
    origin = read_origin(directory)
    what = f"the cached checkpoint {name!r}"
    if pinned is not None:
        recorded = (origin or {}).get("files") or {}
        if {p: r.get("sha256") for p, r in recorded.items()} != {p: _sha(r) for p, r in pinned.items()}:
            # recorded as something else (or copied in by hand): a hit only if it is the pinned content
            try:
                check_files(directory, pinned)
            except IntegrityError:
                return False
            write_origin(directory, "copy", files=sorted(pinned), name=name)
            return True
        check_files(directory, pinned, what=what, fix=fix)
        return True
    expected = (origin or {}).get("files")
    if not expected:  # placed there by hand (e.g. `cellzoo train -o`): its config.json hashes are what we have
        expected = read_config(directory)["files"]
    check_files(directory, expected, what=what, fix=fix)
    return True


def _sha(record: Any) -> str:
    return getattr(record, "sha256", None) or record["sha256"]


# ---------------------------------------------------------------------------------------------
# offline bundles
# ---------------------------------------------------------------------------------------------


def offline_dirs() -> list[Path]:
    """The bundle folders named in ``$CELLZOO_OFFLINE_DIR``."""
    return [Path(p).expanduser() for p in env_list(OFFLINE_DIR_ENV)]


def read_index(directory: Path) -> dict[str, Any]:
    """The index of the bundle in ``directory`` (validated)."""
    path = Path(directory) / INDEX_FILE
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{OFFLINE_DIR_ENV} names {directory}, which is not a cellzoo bundle (no {INDEX_FILE}); make one with "
            f"`cellzoo bundle NAMES... -o DIR` or fix the variable"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read as a bundle index ({exc}); re-create the bundle") from exc
    if (
        not isinstance(index, dict)
        or index.get("cellzoo_bundle") != BUNDLE_FORMAT
        or not isinstance(index.get("models"), dict)
    ):
        raise ConfigError(f"{path} is not a bundle index this cellzoo reads (format {BUNDLE_FORMAT})")
    return index


def offline_artifact(name: str) -> Path | None:
    """The bundled artifact folder of ``name`` from ``$CELLZOO_OFFLINE_DIR``, every file re-checked; else None."""
    for directory in offline_dirs():
        index = read_index(directory)
        record = index["models"].get(name)
        if record is None:
            continue
        rel = Path(str(record.get("path") or name))
        if rel.is_absolute() or ".." in rel.parts:
            raise IntegrityError(f"{directory / INDEX_FILE} points {name!r} outside the bundle ({rel}); refusing it")
        path = directory / rel
        check_files(
            path,
            record.get("files") or {},
            what=f"the bundle {directory}",
            fix="the bundle was changed after it was made; copy it again or re-create it with `cellzoo bundle`",
        )
        _warn_if_not_pinned(name, record, directory)
        return path
    return None


def _warn_if_not_pinned(name: str, record: dict[str, Any], directory: Path) -> None:
    entry = pretrained_entries().get(name)
    if entry is None or not entry.published:
        return
    bundled = {p: r.get("sha256") for p, r in (record.get("files") or {}).items() if p in entry.hub.files}
    if bundled != {p: r.sha256 for p, r in entry.hub.files.items()}:
        warnings.warn(
            f"{name!r} in the bundle {directory} is not the commit the registry pins "
            f"({entry.hub.repo_id}@{entry.hub.revision[:12]}): it is {record.get('origin')}. Using the bundle as asked.",
            stacklevel=3,
        )
