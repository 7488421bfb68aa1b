"""``cellzoo pull``, ``push``, ``build`` and ``bundle``: pretrained checkpoints by name."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._app import console, echo_json, json_option, overwrite_option


def _origin_text(path: Path) -> str:
    from ..cache import describe_origin, read_origin

    origin = read_origin(path)
    if origin is None and any(p in path.parents for p in _offline_roots()):
        return "an offline bundle (CELLZOO_OFFLINE_DIR)"
    return describe_origin(origin)


def _offline_roots() -> list[Path]:
    from ..cache import offline_dirs

    return offline_dirs()


@click.command("pull", short_help="Fetch a pretrained checkpoint: cache, Hub, or a local build.")
@click.argument("name")
@click.option("--no-build", is_flag=True, help="Fail instead of training an unpublished checkpoint here.")
@click.option("--force", is_flag=True, help="Download (or build) again even when the cache holds it.")
@click.option("--verify/--no-verify", default=True, show_default=True, help="Run the golden check after fetching.")
@json_option
def pull_command(name: str, no_build: bool, force: bool, verify: bool, as_json: bool) -> None:
    """Make checkpoint NAME (arch.tag, or arch.tag@REVISION) available locally.

    \b
    Resolution: $CELLZOO_OFFLINE_DIR bundle → local cache → the Hub at the commit pinned in the
    registry (sha256 of every file checked, also on cache hits) → for a checkpoint not published
    yet, a local build from its recipe. Honours HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE.
    """
    from rich.markup import escape

    from ..sources import resolve_pretrained

    start = time.perf_counter()
    path = resolve_pretrained(name, no_build=no_build, force=force, progress=not as_json)
    result = {"name": name, "path": str(path), "origin": _origin_text(path)}
    if verify:
        from ..artifacts import load_artifact
        from ..artifacts import verify as run_verify

        report = run_verify(load_artifact(path), strict=True)
        result["verify"] = report.to_json()
    result["seconds"] = round(time.perf_counter() - start, 2)
    if as_json:
        echo_json(result)
        return
    out = console()
    out.print(f"[green]✓[/] {escape(name)} → {escape(str(path))}", soft_wrap=True)
    out.print(f"  from {escape(result['origin'])} in {result['seconds']:.1f} s", soft_wrap=True)
    if verify:
        out.print(f"  golden check: [green]PASS[/] ({report.n} inputs, atol {report.atol:g})")
    out.print(f"  use it: cellzoo predict {escape(name)} data.h5ad -o annotated.h5ad", soft_wrap=True)


@click.command("push", short_help="Publish an artifact to the Hugging Face Hub.")
@click.argument("artifact")
@click.option("--repo", "repo_id", required=True, metavar="ORG/NAME", help="Hub repository to publish to.")
@click.option("--create-pr", is_flag=True, help="Commit on a pull-request ref instead of main.")
@click.option("--private", is_flag=True, help="Create the repository as private (when it does not exist).")
@click.option("--update-registry", is_flag=True, help="Pin the registry entry to the new commit and its file hashes.")
@click.option("--name", default=None, metavar="ARCH.TAG", help="Registry entry (default: the artifact's recipe name).")
@click.option("-m", "--message", default=None, help="Commit message.")
@json_option
def push_command(
    artifact: str,
    repo_id: str,
    create_pr: bool,
    private: bool,
    update_registry: bool,
    name: str | None,
    message: str | None,
    as_json: bool,
) -> None:
    """Publish ARTIFACT (a folder, local-dir:PATH, or a checkpoint name in the cache) to the Hub.

    The artifact is loaded and golden-checked first; the model card (README.md) is generated
    and validated; config.json, model.safetensors, test/io.safetensors and the card go up in
    one commit. With --update-registry the registry file pins that commit and every file's sha256.
    """
    from rich.markup import escape

    from ..hub import push
    from ..sources import artifact_path

    result = push(
        artifact_path(artifact),
        repo_id,
        create_pr=create_pr,
        private=private,
        name=name,
        update_registry=update_registry,
        commit_message=message,
    )
    if as_json:
        echo_json(
            {
                "repo_id": result.repo_id,
                "revision": result.revision,
                "commit_url": result.commit_url,
                "pr_url": result.pr_url,
                "source": result.source,
                "files": result.files,
                "registry_file": str(result.registry_file) if result.registry_file else None,
            }
        )
        return
    out = console()
    out.print(f"[green]✓[/] pushed {escape(artifact)} to {escape(result.repo_id)}", soft_wrap=True)
    out.print(f"  commit {result.revision}  {escape(result.commit_url)}", soft_wrap=True)
    if result.pr_url:
        out.print(f"  pull request: {escape(result.pr_url)}", soft_wrap=True)
    out.print(f"  load exactly this commit: cellzoo.load({escape(repr(result.source))})", soft_wrap=True)
    if result.registry_file:
        out.print(f"  pinned {escape(str(result.name))} in {escape(str(result.registry_file))}", soft_wrap=True)


@click.command("build", short_help="Train a pretrained checkpoint here from its registry recipe.")
@click.argument("name")
@click.option("--force", is_flag=True, help="Build again even when the cache holds a build of this recipe.")
@json_option
def build_command(name: str, force: bool, as_json: bool) -> None:
    """Train checkpoint NAME (arch.tag) from its registry recipe into the local cache.

    Same recipe and seed, same tensors. With a holdout split the held-out cells are predicted
    and the task's metrics are stored in the artifact.
    """
    from rich.markup import escape

    from ..artifacts import read_config
    from ..build import build, built_artifact

    start = time.perf_counter()
    reused = not force and built_artifact(name) is not None
    path = build(name, force=force, progress=not as_json)
    metrics = read_config(path).get("metrics") or {}
    seconds = round(time.perf_counter() - start, 2)
    if as_json:
        echo_json({"name": name, "path": str(path), "reused": reused, "metrics": metrics, "seconds": seconds})
        return
    out = console()
    if reused:
        out.print(f"{escape(name)} is already built from this recipe at {escape(str(path))} (--force rebuilds)")
    else:
        out.print(f"[green]✓[/] built {escape(name)} in {seconds:.1f} s → {escape(str(path))}", soft_wrap=True)
    for dataset, values in metrics.items():
        if isinstance(values, dict):
            shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items())
            out.print(f"  held-out {escape(str(dataset))}: {shown}")


@click.command("bundle", short_help="Write verified checkpoints into a folder for offline machines.")
@click.argument("names", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path), help="Bundle folder.")
@click.option("--no-build", is_flag=True, help="Fail instead of training unpublished checkpoints here.")
@overwrite_option
@json_option
def bundle_command(names: tuple[str, ...], out_dir: Path, no_build: bool, overwrite: bool, as_json: bool) -> None:
    """Resolve, verify and copy checkpoints NAMES into OUT_DIR with an index of every file's sha256.

    On the air-gapped machine: export CELLZOO_OFFLINE_DIR=OUT_DIR, then load the names as usual.
    """
    from rich.markup import escape

    from ..bundle import bundle
    from ..cache import INDEX_FILE, read_index

    path = bundle(names, out_dir, overwrite=overwrite, no_build=no_build, progress=not as_json)
    index = read_index(path)
    if as_json:
        echo_json({"path": str(path), **index})
        return
    out = console()
    out.print(f"[green]✓[/] bundled {len(index['models'])} checkpoint(s) into {escape(str(path))}", soft_wrap=True)
    for name in index["models"]:
        out.print(f"  {escape(name)}")
    out.print(
        f"  index: {escape(str(path / INDEX_FILE))}; on the offline machine: export CELLZOO_OFFLINE_DIR={escape(str(path))}"
    )
