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
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .artifacts import load_artifact, verify
from .cache import BUNDLE_FORMAT, INDEX_FILE, artifact_files, describe_origin, file_records, read_origin
from .constants import OFFLINE_DIR_ENV, __version__
from .errors import ConfigError
from .fileio import atomic_dir, write_json, write_text
from .pretrained import pretrained_entry
from .sources import resolve_pretrained


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
