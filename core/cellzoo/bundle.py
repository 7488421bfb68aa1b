"""Self-contained folders of verified checkpoints, for machines without network.

``cellzoo bundle NAMES... -o DIR`` resolves each name (cache → Hub → build), checks it against
its golden set, copies its files into ``DIR/<name>/`` and writes ``DIR/index.json`` with the
sha256 and size of every file. Carry ``DIR`` to the air-gapped machine and set
``CELLZOO_OFFLINE_DIR=DIR`` there (several bundles: separate them with ``os.pathsep``):
``cellzoo.load(name)`` then loads from the bundle, re-checking every hash, with no cache, no Hub
and no build involved.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError, IntegrityError

INDEX_FILE = "index.json"
OFFLINE_DIR_ENV = "CELLZOO_OFFLINE_DIR"
BUNDLE_FORMAT = 1


def bundle(
    names: Iterable[str],
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    no_build: bool = False,
    progress: bool = True,
) -> Path:
    """Write the checkpoints ``names`` (``arch.tag``), verified, into ``out_dir`` with an index.

    Every name is checked against the registry before anything is fetched; the folder is
    assembled in a temporary directory and renamed into place, so a failure leaves nothing.
    """
    from . import __version__
    from .artifacts import load_artifact, verify
    from .catalogue import pretrained_entry
    from .fileio import atomic_dir, write_json, write_text
    from .hub import artifact_files, describe_origin, file_records, read_origin, resolve_pretrained

    names = list(dict.fromkeys(names))
    if not names:
        raise ConfigError("name at least one checkpoint to bundle (see `cellzoo list --pretrained`)")
    entries = {name: pretrained_entry(name) for name in names}  # unknown names fail before any work
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file; a bundle is a folder. Choose another -o path")

    index: dict[str, Any] = {
        "cellzoo_bundle": BUNDLE_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "cellzoo": __version__,
        "models": {},
    }
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for name, entry in entries.items():
            source = resolve_pretrained(name, no_build=no_build, progress=progress)
            report = verify(load_artifact(source), strict=True)
            files = artifact_files(source)
            for rel in files:
                (tmp / name / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / rel, tmp / name / rel)
            origin = read_origin(source) or {}
            index["models"][name] = {
                "path": name,
                "architecture": entry.architecture,
                "task": entry.task,
                "origin": {k: origin.get(k) for k in ("source", "repo_id", "revision") if origin.get(k)},
                "pinned_revision": entry.hub.revision,
                "files": file_records(tmp / name, files),
                "verified": {"passed": report.passed, "n": report.n, "atol": report.atol, "rtol": report.rtol},
            }
            if progress:
                from rich.console import Console

                Console(stderr=True, highlight=False).print(
                    f"[bold cyan]bundle[/] {name}: {describe_origin(origin)}, golden check passed"
                )
        write_json(tmp / INDEX_FILE, index)
        write_text(tmp / "README.md", _readme(index))
    return out_dir


def _readme(index: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| `{name}` | {m['architecture']} | {m['task']} | {m['origin'].get('source', '?')} "
        f"{str(m['origin'].get('revision') or '')[:12]} |"
        for name, m in index["models"].items()
    )
    return (
        "# cellzoo offline bundle\n\n"
        f"Made with cellzoo {index['cellzoo']} on {index['created']}. Every file's sha256 is in `{INDEX_FILE}`.\n\n"
        "| name | architecture | task | from |\n|---|---|---|---|\n"
        f"{rows}\n\n"
        "Use it on a machine without network:\n\n"
        "```bash\n"
        f"export {OFFLINE_DIR_ENV}=/path/to/this/folder\n"
        "export HF_HUB_OFFLINE=1\n"
        f"cellzoo predict {next(iter(index['models']))} my.h5ad -o annotated.h5ad\n"
        "```\n"
    )


def offline_dirs() -> list[Path]:
    raw = os.environ.get(OFFLINE_DIR_ENV, "")
    return [Path(p.strip()).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def read_index(directory: Path) -> dict[str, Any]:
    """The index of the bundle in ``directory`` (validated)."""
    import json

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
    from .hub import check_files

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
    from .catalogue import pretrained_entries

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
