"""``cellzoo bench``: run a benchmark suite, from a TOML file or straight from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..bench.suite import SPLIT_KINDS
from ._app import CliError, console

#: options that describe a suite (only without a suite file)
SUITE_OPTIONS = (
    "task",
    "datasets",
    "label_key",
    "models",
    "metrics",
    "seeds",
    "split",
    "folds",
    "test_fraction",
    "batch_key",
)


def _csv(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in _csv(text)]
    except ValueError:
        raise CliError(f"--seeds must be comma-separated integers such as 0,1,2, got {text!r}") from None


def suite_from_options(
    task: str,
    datasets: tuple[str, ...],
    label_key: str | None,
    models: str,
    metrics: str | None,
    seeds: str,
    split: str | None,
    folds: int,
    test_fraction: float,
    batch_key: str | None,
) -> dict[str, Any]:
    """The suite (as the dict a TOML file would hold) that the command-line options describe."""
    stems = [Path(d).stem if d.endswith(".h5ad") else d for d in datasets]
    suite: dict[str, Any] = {
        "name": f"{task}-{'-'.join(stems)}",
        "task": task,
        "datasets": [{"name": d, "label_key": label_key} if label_key else {"name": d} for d in datasets],
        "models": _csv(models),
        "seeds": _seeds(seeds),
    }
    if split is None:  # the task's own rule, with --folds / --test-fraction applied to it
        from ..errors import CellzooError
        from ..registry import task_spec

        try:
            split = task_spec(task).split
        except CellzooError:
            split = "stratified_kfold"  # an unknown task is reported with the list of tasks when the plan is built
    suite["split"] = {"kind": split}
    if split == "stratified_kfold":
        suite["split"]["folds"] = folds
    elif split == "holdout":
        suite["split"]["test_fraction"] = test_fraction
    elif batch_key:
        suite["split"]["batch_key"] = batch_key
    if metrics:
        suite["metrics"] = _csv(metrics)
    return suite


@click.command("bench", short_help="Benchmark models against the baselines and controls.")
@click.argument("suite_file", metavar="[SUITE.toml]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--task", help="Task to benchmark (without a suite file), e.g. annotate.")
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    help="Dataset name or path to an .h5ad file (without a suite file); repeat for several.",
)
@click.option("--label-key", help="obs column with the cell types (default: the dataset's own).")
@click.option(
    "--models",
    default="*",
    show_default=True,
    help="Comma-separated model names or globs; '*' = every installed model of the task. Controls always run.",
)
@click.option("--metrics", help="Comma-separated metrics (default: the task's).")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds, e.g. 0,1,2.")
@click.option(
    "--split",
    type=click.Choice(SPLIT_KINDS),
    default=None,
    help="How cells are split into training and test (default: the task's; annotate: stratified_kfold).",
)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Folds of stratified_kfold.")
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of the cells held out by --split holdout.",
)
@click.option("--batch-key", help="obs column of batches for --split by_batch.")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: bench-out/<suite name>].",
)
@click.option("--force", is_flag=True, help="Run every run again, even those with a matching record.")
@click.option("--retry-failed", is_flag=True, help="Run again the runs recorded as failed or timed out.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds per run before it is stopped and recorded as a time-out.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar or summary table (for logs).")
def bench_command(
    suite_file: Path | None,
    task: str | None,
    datasets: tuple[str, ...],
    label_key: str | None,
    models: str,
    metrics: str | None,
    seeds: str,
    split: str | None,
    folds: int,
    test_fraction: float,
    batch_key: str | None,
    out: Path | None,
    force: bool,
    retry_failed: bool,
    timeout: float | None,
    no_progress: bool,
) -> None:
    """Benchmark models against the task's baselines and controls; write records and a leaderboard.

    \b
    From a suite file:        cellzoo bench benchmarks/annotate-pbmc68k.toml
    Without one:              cellzoo bench --task annotate --dataset pbmc68k_reduced --models mymethod,logreg
    Every installed model:    cellzoo bench --task annotate --dataset data.h5ad --label-key cell_type --models '*'

    Each run (dataset × seed × fold × model) runs in its own process; a crash, an exception or a
    time-out is recorded as a failed run and the others go on. Running the same suite again reuses
    the records that still match (resume after an interrupt).
    """
    from ..bench import run_suite

    ctx = click.get_current_context()
    if suite_file is not None:
        given = [
            param.opts[0]
            for param in ctx.command.params
            if param.name in SUITE_OPTIONS
            and ctx.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE
        ]
        if given:
            raise CliError(
                f"{', '.join(given)} describe a suite, but a suite file was given too; put them in "
                f"{suite_file} or leave the file out"
            )
        suite: Any = suite_file
    else:
        if not task or not datasets:
            raise CliError(
                "give a suite file (cellzoo bench SUITE.toml) or --task and --dataset, e.g. "
                "cellzoo bench --task annotate --dataset pbmc68k_reduced --models logreg,linear_svm"
            )
        suite = suite_from_options(
            task, datasets, label_key, models, metrics, seeds, split, folds, test_fraction, batch_key
        )

    result = run_suite(
        suite,
        out,
        force=force,
        retry_failed=retry_failed,
        timeout=timeout,
        progress=not no_progress,
        console=console(stderr=True),
    )
    counts = result.counts
    click.echo(
        f"{len(result.records)} runs ({counts['ran'] + counts['redone']} run, {counts['reused']} reused); "
        f"leaderboard: {result.paths['markdown']}"
    )
