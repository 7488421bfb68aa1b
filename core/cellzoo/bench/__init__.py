"""The benchmark harness: suites of task × datasets × models × seeds, run in isolation and scored.

>>> from cellzoo.bench import run_suite
>>> result = run_suite("benchmarks/annotate-pbmc68k.toml")          # doctest: +SKIP
>>> result.paths["markdown"]                                          # doctest: +SKIP
PosixPath('bench-out/annotate-pbmc68k/leaderboard.md')

Layout of the output folder::

    OUT/suite.json          the suite and what it resolved to
    OUT/runs/*.json         one record per (dataset, seed, fold, model), named by its key
    OUT/runs/*.npz          the run's true and predicted labels (integer codes)
    OUT/logs/*.log          what a run printed (kept when it printed anything)
    OUT/leaderboard.{md,csv,json}, OUT/*.png

Running the same suite again reuses every record whose key still matches (same data, split,
model and config), so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .aggregate import Leaderboard, aggregate
from .suite import DatasetEntry, SplitRule, Suite, as_suite, load_suite, suite_from_dict

__all__ = [
    "BenchResult",
    "DatasetEntry",
    "Leaderboard",
    "SplitRule",
    "Suite",
    "aggregate",
    "default_out",
    "load_suite",
    "run_suite",
    "suite_from_dict",
]

#: where ``run_suite`` writes when no output folder is given
DEFAULT_ROOT = Path("bench-out")


@dataclass
class BenchResult:
    """What :func:`run_suite` produced."""

    out: Path
    leaderboard: Leaderboard
    records: list[dict[str, Any]]
    paths: dict[str, Path]
    counts: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


def default_out(suite: Suite) -> Path:
    return DEFAULT_ROOT / suite.name


def run_suite(
    suite: Suite | str | Path | Mapping[str, Any],
    out: str | Path | None = None,
    *,
    force: bool = False,
    retry_failed: bool = False,
    timeout: float | None = None,
    progress: bool = True,
    console=None,
) -> BenchResult:
    """Run a benchmark suite and write its records and leaderboard.

    Args:
        suite: a :class:`Suite`, the path of a suite TOML file, or the dict such a file holds.
        out: output folder (default ``bench-out/<suite name>``).
        force: run again even where a record with the same key exists.
        retry_failed: run again the runs whose record says failed or timed out.
        timeout: seconds per run (overrides the suite's ``timeout``); a longer run is stopped and
            recorded as a time-out.
        progress: show a progress bar and the summary table on ``console``.
        console: a :class:`rich.console.Console` (default: a new one on stderr).

    Raises:
        cellzoo.errors.BenchmarkError: the suite cannot run as written (found before any run).
    """
    from rich.console import Console

    from .environment import environment
    from .plan import build_plan
    from .report import summary_table, write_leaderboard
    from .runner import run_plan, write_suite_json

    suite = as_suite(suite)
    if timeout is not None:
        suite = replace(suite, timeout=timeout)  # checked like one read from a file
    console = console or Console(stderr=True)
    plan = build_plan(suite)
    out = Path(out) if out is not None else default_out(suite)
    out.mkdir(parents=True, exist_ok=True)
    env = environment(plan.plugins)
    write_suite_json(out / "suite.json", plan)
    outcome = run_plan(
        plan, out, environment=env, force=force, retry_failed=retry_failed, progress=progress, console=console
    )
    board = aggregate(
        outcome.records,
        metrics=[m.name for m in plan.metrics],
        higher_is_better=plan.higher_is_better,
        controls=plan.controls,
        task=plan.task.name,
        ceiling=plan.task.ceiling,
    )
    context = {
        "task": plan.task.name,
        "datasets": ", ".join(_dataset_text(d) for d in plan.datasets),
        "split": ", ".join(f"{k} {v}" for k, v in plan.split.to_json().items() if v is not None),
        "seeds": ", ".join(map(str, suite.seeds)),
        "runs": f"{len(outcome.records)} ({outcome.counts['ran'] + outcome.counts['redone']} run now, "
        f"{outcome.counts['reused']} reused from earlier records)",
    }
    if suite.source:
        context["suite"] = suite.source
    paths = write_leaderboard(
        board,
        outcome.records,
        out,
        title=f"Leaderboard: {suite.name}",
        context=context,
        environment=env,
        extra={"suite": suite.to_json(), "notes": outcome.notes},
    )
    if progress:
        console.print(summary_table(board, title=f"{suite.name} — {plan.task.name}"))
        for warning in board.qc:
            console.print(f"[yellow]QC:[/] {warning}")
        console.print(f"leaderboard: {paths['markdown']}")
    return BenchResult(out, board, outcome.records, paths, outcome.counts, outcome.notes)


def _dataset_text(d: Any) -> str:
    if d.images is not None:
        parts = d.to_json()
        return f"{d.name} ({parts['n_train']} training, {parts['n_test']} test images)"
    return f"{d.name} ({d.adata.n_obs} cells, label {d.label_key!r})"
