"""Pretrained checkpoints by name: resolve, pull from and push to the Hugging Face Hub.

Resolution of ``arch.tag`` (:func:`resolve_pretrained`)::

    $CELLZOO_OFFLINE_DIR bundle  →  local cache  →  Hub at the pinned commit  →  local build
                                    (sha256 of every file re-checked on every hit)   (unless no_build)

A published registry entry pins a commit and the sha256 + size of every file; what is
downloaded is checked against those before it enters the cache, and a cache hit is checked again,
so a corrupted download, a changed file in the cache or a force-pushed repository all fail loudly
(:class:`~cellzoo.errors.IntegrityError` naming the file) instead of loading different weights.
An entry that is not published yet is built from its recipe (:mod:`cellzoo.build`), which is
what makes every name usable with no network at all.

All Hub traffic goes through ``huggingface_hub`` and honours ``HF_ENDPOINT`` (self-hosted
mirrors), ``HF_TOKEN`` and ``HF_HUB_OFFLINE``. huggingface_hub reads those once, at import; here
``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` are also read at call time, so a process (or a test) that
sets them later is obeyed too. Offline with a cold cache is an immediate error that says what to
run — never a wait on retries.

Downloads go straight into the cellzoo cache (``cellzoo.paths.artifact_dir(name)``), one copy
per name; a per-name file lock lets concurrent processes pull the same name safely.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ArtifactError, ConfigError, HubError, IntegrityError

ORIGIN_FILE = ".cellzoo-origin.json"
LOCKS_DIR = ".locks"
#: seconds a process waits for another one that is pulling or building the same name
LOCK_TIMEOUT = 2 * 3600
#: what an artifact holds on the Hub (anything else in a repository is ignored)
ARTIFACT_PATTERNS = ("config.json", "model.safetensors", "README.md", "test/*")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "on", "yes", "true"}


# ---------------------------------------------------------------------------------------------
# settings read at call time
# ---------------------------------------------------------------------------------------------


def hub_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``$HF_ENDPOINT`` as it is now, else huggingface_hub's (read at its import)."""
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """Whether downloads are forbidden (``HF_HUB_OFFLINE`` now, or when huggingface_hub was imported)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def split_revision(name: str) -> tuple[str, str | None]:
    """``"arch.tag@rev"`` → ``("arch.tag", "rev")``; no ``@`` → ``(name, None)``."""
    base, at, revision = name.partition("@")
    if at and not revision:
        raise ConfigError(
            f"{name!r} ends with '@' but names no revision; write NAME@REVISION (a commit, branch or tag)"
        )
    return base, (revision or None)


# ---------------------------------------------------------------------------------------------
# the cache: origin records, hashes and locks
# ---------------------------------------------------------------------------------------------


def file_records(directory: Path, paths: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size"}}`` for ``paths`` (default: every file but cellzoo's own)."""
    from .artifacts import sha256_file

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
    from .artifacts import CARD_FILE, CONFIG_FILE, read_config

    config_json = read_config(directory)
    files = [CONFIG_FILE, *sorted(config_json["files"])]
    if (directory / CARD_FILE).is_file():
        files.append(CARD_FILE)
    return files


def check_files(directory: Path, expected: Mapping[str, Any], *, what: str, fix: str) -> None:
    """Raise :class:`IntegrityError` naming the first file that is missing or differs from ``expected``."""
    from .artifacts import sha256_file

    for rel in sorted(expected):
        record = expected[rel]
        sha = getattr(record, "sha256", None) or record["sha256"]
        size = getattr(record, "size", None)
        size = record["size"] if size is None else size
        path = Path(directory) / rel
        if not path.is_file():
            raise IntegrityError(f"{rel} is missing from {what} ({path}); {fix}")
        got_size = path.stat().st_size
        if got_size != size:
            raise IntegrityError(
                f"{rel} in {what} has {got_size} bytes, expected {size} ({path}): it was changed or truncated; {fix}"
            )
        got = sha256_file(path)
        if got != sha:
            raise IntegrityError(
                f"{rel} in {what} does not match its pinned hash: expected sha256 {sha}, got {got} ({path}); {fix}"
            )


def read_origin(directory: Path) -> dict[str, Any] | None:
    """Where a cached artifact came from (hub / build / bundle) and the hashes of its files then."""
    path = Path(directory) / ORIGIN_FILE
    try:
        origin = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return origin if isinstance(origin, dict) else None


def write_origin(directory: Path, source: str, *, files: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    """Record where the artifact in ``directory`` came from and the hashes of ``files`` (default: its files)."""
    from . import __version__
    from .fileio import write_json

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

    from .paths import models_dir

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


def _cache_hit(directory: Path, pinned: Mapping[str, Any] | None, name: str, fix: str) -> bool:
    """True when ``directory`` holds the wanted artifact, every file re-hashed; False when absent or stale.

    With ``pinned`` (a published entry's files) the cache must hold exactly that content: an
    artifact recorded with other hashes (another revision, a local build) is stale, while one
    recorded with the pinned hashes whose files changed since is an :class:`IntegrityError`.
    """
    if not (directory / "config.json").is_file():
        return False
    origin = read_origin(directory)
    if pinned is not None:
        recorded = (origin or {}).get("files") or {}
        if {p: r.get("sha256") for p, r in recorded.items()} != {p: _sha(r) for p, r in pinned.items()}:
            # recorded as something else (or copied in by hand): a hit only if it is the pinned content
            try:
                check_files(directory, pinned, what="", fix="")
            except IntegrityError:
                return False
            write_origin(directory, "copy", files=sorted(pinned), name=name)
            return True
        check_files(directory, pinned, what=f"the cached checkpoint {name!r}", fix=fix)
        return True
    expected = (origin or {}).get("files")
    if not expected:  # placed there by hand (e.g. `cellzoo train -o`): its config.json hashes are what we have
        from .artifacts import read_config

        expected = read_config(directory)["files"]
    check_files(directory, expected, what=f"the cached checkpoint {name!r}", fix=fix)
    return True


def _sha(record: Any) -> str:
    return getattr(record, "sha256", None) or record["sha256"]


# ---------------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------------


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
    from .bundle import offline_artifact
    from .catalogue import pretrained_entries, pretrained_entry
    from .paths import artifact_dir

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
                _cache_hit(target, None, base, fix=f"delete {target} and get the checkpoint again")
            return target
        pretrained_entry(base)  # raises UnknownNameError with the closest names
    if revision is not None and revision != entry.hub.revision:
        return _resolve_revision(entry, revision, force=force)

    target = artifact_dir(entry.name)
    pinned = entry.hub.files if entry.published else None
    fix = f"run `cellzoo pull {entry.name} --force` to fetch it again (or delete {target})"
    with checkpoint_lock(entry.name):
        if not force and _cache_hit(target, pinned, entry.name, fix):
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
        from .build import build_into

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
    from .paths import artifact_dir

    if _COMMIT.match(revision):
        commit = revision
    elif hub_offline():
        raise HubError(
            f"{entry.name}@{revision}: a branch or tag can only be resolved online and HF_HUB_OFFLINE is set; "
            f"name a full commit hash ({entry.name}@<40 hex digits>) to use a cached revision"
        )
    else:
        commit = _resolve_commit(entry.hub.repo_id, revision)
    cached_name = f"{entry.name}@{commit}"
    target = artifact_dir(cached_name)
    fix = f"run `cellzoo pull {cached_name} --force` to fetch it again (or delete {target})"
    with checkpoint_lock(cached_name):
        if not force and _cache_hit(target, None, cached_name, fix):
            return target
        if hub_offline():
            raise HubError(
                f"{cached_name} is not in the local cache ({target}) and HF_HUB_OFFLINE is set; run "
                f"`cellzoo pull {cached_name}` with network access first"
            )
        download(entry.hub.repo_id, commit, target, expected=None, name=cached_name)
    return target


def _resolve_commit(repo_id: str, revision: str) -> str:
    from huggingface_hub import HfApi

    with hub_errors(repo_id, revision):
        info = HfApi(endpoint=hub_endpoint()).repo_info(repo_id, revision=revision)
    return str(info.sha)


def pull(name: str, **kwargs: Any) -> Path:
    """Same as :func:`resolve_pretrained` (the name the CLI command has)."""
    return resolve_pretrained(name, **kwargs)


def load_pretrained(name: str, *, revision: str | None = None, no_build: bool = False, verify_hashes: bool = True):
    """Resolve checkpoint ``name`` and load it (what ``cellzoo.load("arch.tag")`` does)."""
    from .artifacts import load_artifact

    return load_artifact(resolve_pretrained(name, revision=revision, no_build=no_build), verify_hashes=verify_hashes)


# ---------------------------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def hub_errors(
    repo_id: str,
    revision: str | None,
    *,
    offline: bool = False,
    fallback: str = "set HF_HUB_OFFLINE=1 to work from the local cache and bundles only",
) -> Iterator[None]:
    """Turn huggingface_hub's exceptions into cellzoo errors whose messages say what to do.

    ``offline``: downloading was switched off, so a cache miss is not a network problem;
    ``fallback``: what the user can do without the Hub, for the message of a failed download.
    """
    from huggingface_hub import errors as hf

    where = f"{repo_id}@{revision}" if revision else repo_id
    endpoint = hub_endpoint()
    try:
        yield
    except hf.RevisionNotFoundError as exc:
        raise HubError(f"revision {revision!r} does not exist in Hub repository {repo_id!r} at {endpoint}") from exc
    except (hf.RepositoryNotFoundError, hf.GatedRepoError) as exc:
        raise HubError(
            f"Hub repository {repo_id!r} was not found at {endpoint}, or it is private and no valid token was "
            "sent: check the name and set HF_TOKEN (or run `hf auth login`)"
        ) from exc
    # LocalEntryNotFoundError is an EntryNotFoundError: a cache miss must not read as a missing file
    except (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled) as exc:
        why = (
            "downloading is off (HF_HUB_OFFLINE=1 or local_files_only=True)"
            if offline
            else f"{endpoint} could not be reached ({exc.__class__.__name__}); check the network (or HF_ENDPOINT)"
        )
        raise HubError(
            f"{where} is not in the local Hugging Face cache and {why}. To go on without the Hub, {fallback}"
        ) from exc
    except hf.EntryNotFoundError as exc:
        raise IntegrityError(f"{where} at {endpoint} lacks a file the registry pins: {exc}") from exc
    except hf.HFValidationError as exc:
        raise ConfigError(f"{repo_id!r} is not a valid Hub repository name: {exc}") from exc
    except (hf.HfHubHTTPError, OSError) as exc:
        raise HubError(f"the Hub at {endpoint} refused or failed {where}: {exc}") from exc


def download(
    repo_id: str,
    revision: str,
    target: Path,
    *,
    expected: Mapping[str, Any] | None,
    name: str,
) -> Path:
    """Download ``repo_id@revision`` into ``target`` atomically, checking every file first.

    With ``expected`` (a published entry's files) exactly those files are fetched and each
    must match its pinned sha256 and size; otherwise the artifact files are fetched and checked
    against the hashes in their own config.json. Nothing reaches ``target`` unless all pass.
    """
    import shutil

    from huggingface_hub import snapshot_download

    from . import __version__
    from .artifacts import read_config
    from .fileio import atomic_dir

    patterns = sorted(expected) if expected else list(ARTIFACT_PATTERNS)
    with atomic_dir(target, overwrite=True) as tmp:
        with hub_errors(repo_id, revision):
            snapshot_download(
                repo_id,
                revision=revision,
                local_dir=tmp,
                endpoint=hub_endpoint(),
                allow_patterns=patterns,
                library_name="cellzoo",
                library_version=__version__,
            )
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping for local_dir
        source = f"{repo_id}@{revision[:12]} as downloaded from {hub_endpoint()}"
        if expected:
            check_files(
                tmp,
                expected,
                what=source,
                fix="the Hub copy differs from what the registry pinned; nothing was written to the cache. "
                "Report it to the repository owner, or pin the new commit after checking it",
            )
        else:
            if not (tmp / "config.json").is_file():
                raise ArtifactError(f"{source} holds no config.json: it is not a cellzoo artifact repository")
            check_files(
                tmp, read_config(tmp)["files"], what=source, fix="the repository is damaged; nothing was cached"
            )
        # the pinned list when there is one: it may hold files the artifact itself does not hash
        kept = sorted(expected) if expected else sorted(file_records(tmp))
        write_origin(tmp, "hub", files=kept, repo_id=repo_id, revision=revision, endpoint=hub_endpoint(), name=name)
    return target


# ---------------------------------------------------------------------------------------------
# model card
# ---------------------------------------------------------------------------------------------


def hub_license(license_id: str | None) -> tuple[str, str | None]:
    """(Hub licence id, licence name) for a spec or registry licence (SPDX-like, any case)."""
    from .catalogue import HUB_LICENSES

    lid = (license_id or "").strip().lower()
    if lid in HUB_LICENSES and lid != "other":
        return lid, None
    return "other", (license_id or "unspecified")


def _eval_results(config_json: Mapping[str, Any], entry: Any) -> list[Any]:
    from huggingface_hub import EvalResult

    task = config_json.get("task") or "annotate"
    results = []
    recipe = config_json.get("recipe") or {}
    split = (recipe.get("split") or {}).get("kind")
    # numbers the build measured on its own held-out cells (the artifact's config.json)
    held_out = "test" if split == "holdout" else "train"
    for dataset, values in (config_json.get("metrics") or {}).items():
        if not isinstance(values, Mapping):
            values, dataset = {dataset: values}, recipe.get("dataset") or "unspecified"
        for metric, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                results.append(
                    EvalResult(
                        task_type=task,
                        dataset_type=str(dataset),
                        dataset_name=str(dataset),
                        dataset_split=held_out,
                        metric_type=str(metric),
                        metric_value=float(value),
                        metric_name=f"{metric} ({held_out})",
                    )
                )
    # numbers the benchmark harness measured (the registry file)
    for m in entry.metrics if entry is not None else ():
        results.append(
            EvalResult(
                task_type=task,
                dataset_type=m.dataset,
                dataset_name=m.dataset,
                dataset_split=m.split,
                metric_type=m.metric,
                metric_value=m.value,
                metric_name=f"{m.metric} ({m.split})",
            )
        )
    return results


def hub_card(
    directory: str | os.PathLike[str],
    *,
    entry: Any = None,
    repo_id: str | None = None,
) -> str:
    """The README.md pushed to the Hub: the artifact's card with Hub metadata and the registry's facts.

    Built on :func:`cellzoo.artifacts.model_card` (description, usage, input contract, gene
    manifest, classes, recipe, verification, citation); the front matter gets the Hub fields
    (``library_name: cellzoo``, licence id, tags, datasets, ``model-index`` from the measured
    metrics) and, for a registry checkpoint, a section on the training data and pinning.
    """
    from huggingface_hub import ModelCard

    from .artifacts import model_card, read_config
    from .registry import contribution

    directory = Path(directory)
    config_json = read_config(directory)
    arch = config_json["architecture"]
    spec = contribution("model", arch).spec
    name = entry.name if entry is not None else (config_json.get("recipe") or {}).get("name") or arch
    source = name if entry is not None else (f"hf-hub:{repo_id}" if repo_id else None)
    card = ModelCard(model_card(config_json, spec, {}, source=source))
    data = card.data
    task = config_json.get("task") or spec.task
    data.library_name = "cellzoo"
    data.license, license_name = hub_license(entry.license if entry is not None else spec.license)
    if license_name:
        data.license_name = license_name
    extra_tags = entry.tags if entry is not None else ()
    data.tags = list(dict.fromkeys(["cellzoo", "single-cell", "scRNA-seq", task, arch, *spec.tags, *extra_tags]))
    recipe = config_json.get("recipe") or {}
    if recipe.get("dataset"):
        data.datasets = [str(recipe["dataset"])]
    data.model_name = name
    results = _eval_results(config_json, entry)
    data.eval_results = results or None

    lines: list[str] = []
    if entry is not None:
        lines += [
            "",
            f"## Pretrained checkpoint `{entry.name}`",
            "",
            entry.summary,
            "",
            f"**Training data.** {entry.training_data}",
            "",
            "Load it by name; cellzoo downloads the commit pinned in its registry file and checks the sha256 of "
            "every file (also on cache hits), or builds it from the recipe when it is not published:",
            "",
            "```bash",
            f"cellzoo pull {entry.name}",
            f"cellzoo predict {entry.name} my.h5ad -o annotated.h5ad",
            "```",
            "",
            f'To pin a commit of this repository yourself: `cellzoo.load("hf-hub:{repo_id or entry.hub.repo_id}'
            '@<commit>")`.',
        ]
    if results:
        lines += ["", "## Measured metrics", "", "| dataset | split | metric | value |", "|---|---|---|---|"]
        lines += [f"| {r.dataset_name} | {r.dataset_split} | {r.metric_type} | {r.metric_value:.4g} |" for r in results]
        if any(r.dataset_split == "test" for r in results):
            frac = (recipe.get("split") or {}).get("test_fraction")
            lines += [
                "",
                f"`test` numbers come from the {frac:.0%} of cells the recipe held out (never trained on); "
                "`cellzoo build` recomputes them."
                if isinstance(frac, (int, float))
                else "",
            ]
    if entry is not None and entry.citation and entry.citation.strip() != (spec.citation or "").strip():
        lines += ["", "## Checkpoint citation", "", "```text", entry.citation.strip(), "```"]
    card.text = card.text.rstrip("\n") + "\n" + "\n".join(lines).rstrip("\n") + "\n"
    return str(card)


def check_card(text: str, *, endpoint: str | None = None, remote: bool = True, token: str | None = None) -> None:
    """Validate a model card: its YAML here, then with the Hub's ``/api/validate-yaml``.

    Raises :class:`HubError` listing every problem. The remote check is the request
    :meth:`huggingface_hub.ModelCard.validate` makes, sent to ``endpoint`` (that method always
    uses the endpoint read at import, which would miss an ``HF_ENDPOINT`` set later).
    """
    import yaml
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from .catalogue import HUB_LICENSES

    problems: list[str] = []
    if not text.startswith("---\n"):
        raise HubError("the model card has no YAML front matter (it must start with a '---' line)")
    try:
        front = text.split("---\n", 2)[1]
        meta = yaml.safe_load(front)
    except (IndexError, yaml.YAMLError) as exc:
        raise HubError(f"the model card's YAML front matter does not parse: {exc}") from exc
    if not isinstance(meta, dict):
        raise HubError("the model card's YAML front matter must be a mapping")
    if meta.get("library_name") != "cellzoo":
        problems.append(f"library_name must be 'cellzoo', got {meta.get('library_name')!r}")
    if meta.get("license") not in HUB_LICENSES:
        problems.append(f"license {meta.get('license')!r} is not a Hub licence id")
    if meta.get("license") == "other" and not meta.get("license_name"):
        problems.append("license 'other' needs license_name")
    for key in ("tags", "datasets"):
        if key in meta and not (isinstance(meta[key], list) and all(isinstance(t, str) for t in meta[key])):
            problems.append(f"{key} must be a list of strings")
    if "model-index" in meta:
        try:
            _, results = model_index_to_eval_results(meta["model-index"])
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"model-index is malformed ({exc!r})")
        else:
            for r in results:
                if not isinstance(r.metric_value, (int, float)) or not math.isfinite(r.metric_value):
                    problems.append(f"model-index metric {r.metric_type!r} has the non-number {r.metric_value!r}")
    try:
        ModelCard(text)  # what huggingface_hub itself will parse
    except Exception as exc:  # its parser raises several types
        problems.append(f"huggingface_hub cannot parse it: {exc}")
    if problems:
        raise HubError("the model card is not valid for the Hub: " + "; ".join(problems))
    if not remote:
        return
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = f"{hub_endpoint(endpoint)}/api/validate-yaml"
    headers = {"Accept": "text/plain", **build_hf_headers(token=token, library_name="cellzoo")}
    try:
        response = get_session().post(url, json={"repoType": "model", "content": text}, headers=headers)
    except Exception as exc:  # connection problems come as httpx errors
        raise HubError(f"could not reach {url} to validate the model card: {exc}") from exc
    if response.status_code == 400:
        raise HubError(f"the Hub rejected the model card: {response.text.strip()}")
    with hub_errors("validate-yaml", None):
        hf_raise_for_status(response)


# ---------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------


@dataclass
class PushResult:
    """What :func:`push` published."""

    repo_id: str
    revision: str
    commit_url: str
    pr_url: str | None = None
    name: str | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    registry_file: Path | None = None

    @property
    def source(self) -> str:
        """The ``hf-hub:`` name that loads exactly this commit."""
        return f"hf-hub:{self.repo_id}@{self.revision}"


def artifact_path(artifact: str | os.PathLike[str]) -> Path:
    """An artifact directory from a path, ``local-dir:PATH`` or a checkpoint name in the cache."""
    from .paths import artifact_dir

    if isinstance(artifact, os.PathLike):
        return Path(artifact)
    text = str(artifact)
    if text.startswith("local-dir:"):
        return Path(text.removeprefix("local-dir:")).expanduser()
    path = Path(text).expanduser()
    if path.exists() or "/" in text or "\\" in text:
        return path
    cached = artifact_dir(text)
    if cached.is_dir():
        return cached
    raise ArtifactError(
        f"{text!r} is neither an artifact directory nor a checkpoint in the cache ({cached}); pass a path "
        f"(e.g. ./{text}) or run `cellzoo build {text}` / `cellzoo pull {text}` first"
    )


def push(
    artifact: str | os.PathLike[str],
    repo_id: str,
    *,
    create_pr: bool = False,
    private: bool = False,
    name: str | None = None,
    update_registry: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> PushResult:
    """Publish an artifact directory to ``repo_id`` on the Hub and return the commit.

    The artifact is loaded (hashes and safetensors headers checked) and verified against its
    golden set before anything is sent; the model card is generated and validated. Files go up
    in one commit (``create_pr=True``: on a pull-request ref, leaving ``main`` alone).
    ``update_registry=True`` pins the registry entry ``name`` (default: the checkpoint name
    recorded in the artifact's recipe, else the repository name) to the new commit.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    from . import __version__
    from .artifacts import CARD_FILE, load_artifact, verify
    from .catalogue import _REPO_ID, pretrained_entries

    if not _REPO_ID.match(repo_id or ""):
        raise ConfigError(f"--repo must look like ORG/NAME (e.g. cellzoo/scanna.pbmc68k_reduced), got {repo_id!r}")
    directory = artifact_path(artifact)
    model = load_artifact(directory)
    report = verify(model)
    if not report.passed:
        raise IntegrityError(f"refusing to publish an artifact that fails its golden check:\n{report.summary()}")
    config_json = model.artifact_config
    entries = pretrained_entries()
    name = name or (config_json.get("recipe") or {}).get("name") or repo_id.split("/", 1)[1]
    entry = entries.get(name)
    if entry is not None and entry.architecture != config_json["architecture"]:
        raise ConfigError(
            f"registry entry {name!r} is architecture {entry.architecture!r} but {directory} holds "
            f"{config_json['architecture']!r}; pass --name for the right entry"
        )
    if update_registry and entry is None:
        raise ConfigError(
            f"--update-registry needs a registry entry to pin, but {name!r} is not one "
            f"(known: {', '.join(entries) or 'none'}); pass --name ARCH.TAG or add registry/{name}.toml first"
        )

    card = hub_card(directory, entry=entry, repo_id=repo_id)
    endpoint = hub_endpoint()
    check_card(card, endpoint=endpoint, token=token)
    contents: dict[str, bytes] = {rel: (directory / rel).read_bytes() for rel in artifact_files(directory)}
    contents[CARD_FILE] = card.encode("utf-8")
    files = {rel: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for rel, data in contents.items()}
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=data) for rel, data in sorted(contents.items())]

    api = HfApi(endpoint=endpoint, token=token, library_name="cellzoo", library_version=__version__)
    with hub_errors(repo_id, None):
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message
            or f"cellzoo push {name} ({config_json['architecture']}, cellzoo {__version__})",
            create_pr=create_pr,
        )
    result = PushResult(
        repo_id=repo_id,
        revision=info.oid,
        commit_url=str(info.commit_url),
        pr_url=info.pr_url,
        name=name if entry is not None else None,
        files=files,
    )
    if update_registry:
        from .catalogue import update_hub_record

        result.registry_file = update_hub_record(name, repo_id, info.oid, files)
    elif entry is not None and entry.published and entry.hub.repo_id == repo_id and not create_pr:
        warnings.warn(
            f"{name!r} stays pinned to {entry.hub.revision[:12]} in {entry.path}; pass --update-registry to pin "
            f"the new commit {info.oid[:12]}",
            stacklevel=2,
        )
    return result
