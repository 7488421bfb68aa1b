"""Hub I/O: download an artifact repository, make and validate its model card, push an artifact.

All Hub traffic goes through ``huggingface_hub`` and honours ``HF_ENDPOINT`` (self-hosted
mirrors), ``HF_TOKEN`` and ``HF_HUB_OFFLINE``. huggingface_hub reads those once, at import; here
``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` are also read at call time (:mod:`cellzoo.constants`), so a
process (or a test) that sets them later is obeyed too.

A download goes into a temporary folder, every file is checked against the pinned (or its own
recorded) sha256 and size, and only then is the folder renamed into the cache: a corrupted
download or a force-pushed repository fails loudly and leaves nothing behind. Which name is
downloaded when (bundle → cache → Hub → build) is decided by :mod:`cellzoo.sources`, not here.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifacts import CARD_FILE, check_files, load_artifact, model_card, read_config, verify
from .cache import artifact_files, file_records, write_origin
from .constants import REPO_ID, __version__, hub_endpoint
from .errors import ArtifactError, ConfigError, HubError, IntegrityError
from .fileio import atomic_dir
from .pretrained import HUB_LICENSES, pretrained_entries, update_hub_record
from .registry import contribution

#: what an artifact holds on the Hub (anything else in a repository is ignored)
ARTIFACT_PATTERNS = ("config.json", "model.safetensors", "README.md", "test/*")


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
    from huggingface_hub import snapshot_download

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

    if not REPO_ID.match(repo_id or ""):
        raise ConfigError(f"--repo must look like ORG/NAME (e.g. cellzoo/scanna.pbmc68k_reduced), got {repo_id!r}")
    directory = Path(artifact).expanduser()
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
        result.registry_file = update_hub_record(name, repo_id, info.oid, files)
    elif entry is not None and entry.published and entry.hub.repo_id == repo_id and not create_pr:
        warnings.warn(
            f"{name!r} stays pinned to {entry.hub.revision[:12]} in {entry.path}; pass --update-registry to pin "
            f"the new commit {info.oid[:12]}",
            stacklevel=2,
        )
    return result


def resolve_commit(repo_id: str, revision: str) -> str:
    """The full commit hash that branch, tag or commit ``revision`` of ``repo_id`` names now."""
    from huggingface_hub import HfApi

    with hub_errors(repo_id, revision):
        info = HfApi(endpoint=hub_endpoint()).repo_info(repo_id, revision=revision)
    return str(info.sha)
