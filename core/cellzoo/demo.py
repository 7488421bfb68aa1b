"""``make demo`` (``python -m cellzoo.demo``): a tour of the installed zoo, offline and in seconds.

The tour is a list of named :class:`Step` s sharing one :class:`DemoContext`; a step may say
which earlier steps it needs. Adding a step (pulling a checkpoint, a benchmark, an ONNX export)
is writing one function and appending it to :data:`STEPS`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CellzooError

if TYPE_CHECKING:
    import anndata
    from rich.console import Console


@dataclass
class DemoContext:
    """What the steps share: a console, a scratch directory, and whatever earlier steps produced."""

    console: Console
    workdir: Path
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One step of the tour; ``run`` returns a one-line result for the closing summary."""

    name: str
    title: str
    run: Callable[[DemoContext], str]
    needs: tuple[str, ...] = ()


@dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    summary: str


# -- data ----------------------------------------------------------------------------------------


def synthetic_annotate_adata(
    n_cells: int = 120, n_genes: int = 40, n_classes: int = 3, seed: int = 0
) -> anndata.AnnData:
    """Raw counts (sparse) with ``obs["cell_type"]``; each type over-expresses its own marker genes.

    The classes are unbalanced on purpose (half the cells are ``type_0``) so that the majority
    control has an answer that is visibly its own.
    """
    import anndata
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    weights = np.array([2.0 ** (n_classes - 1 - k) for k in range(n_classes)])
    labels = rng.choice(n_classes, size=n_cells, p=weights / weights.sum())
    rate = np.full((n_classes, n_genes), 0.5)
    markers_per_class = max(1, n_genes // (2 * n_classes))
    for k in range(n_classes):
        rate[k, k * markers_per_class : (k + 1) * markers_per_class] = 6.0
    counts = rng.poisson(rate[labels]).astype(np.float32)
    counts[:, -1] += 1  # no empty cell
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical([f"type_{k}" for k in labels])},
        index=[f"cell_{i:04d}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"GENE{j:03d}" for j in range(n_genes)])
    return anndata.AnnData(X=sp.csr_matrix(counts), obs=obs, var=var)


# -- steps ---------------------------------------------------------------------------------------


def show_zoo(ctx: DemoContext) -> str:
    """Models by task (with their role), datasets, metrics and plugins with versions and errors."""
    from rich.markup import escape

    from .cli.catalog import COLUMNS, catalog_rows, plugin_rows
    from .cli.tables import rows_table
    from .registry import list_tasks

    out = ctx.console
    models = catalog_rows("models")
    tasks = list_tasks()
    for task in [*tasks, *sorted({m["task"] for m in models} - set(tasks))]:
        rows = [m for m in models if m["task"] == task]
        columns = [c for c in COLUMNS["models"] if c[1] != "task"]
        out.print(rows_table(columns, rows, title=f"task {task}: {_count(len(rows), 'model')}", width=out.width))
    datasets, metrics = catalog_rows("datasets"), catalog_rows("metrics")
    out.print(rows_table(COLUMNS["datasets"], datasets, title=_count(len(datasets), "dataset"), width=out.width))
    out.print(rows_table(COLUMNS["metrics"], metrics, title=_count(len(metrics), "metric"), width=out.width))
    plugins, _ = plugin_rows()  # a clash between plugins already failed catalog_rows above
    columns = [("plugin", "name"), ("distribution", "distribution"), ("version", "version")]
    columns += [("status", "status"), ("errors", "errors")]
    out.print(rows_table(columns, plugins, title=_count(len(plugins), "plugin"), width=out.width))
    broken = [p["name"] for p in plugins if p["errors"]]
    if broken:
        out.print(f"[yellow]plugins with errors: {escape(', '.join(broken))} (see `cellzoo --debug plugins`)[/]")
    return (
        f"{_count(len(models), 'model')}, {_count(len(datasets), 'dataset')}, {_count(len(metrics), 'metric')} "
        f"from {_count(len(plugins), 'plugin')}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def make_data(ctx: DemoContext) -> str:
    """A tiny synthetic counts dataset written as .h5ad, as a user's own file would be."""
    adata = synthetic_annotate_adata()
    path = ctx.workdir / "tiny.h5ad"
    adata.write_h5ad(path)
    ctx.state["data_path"] = path
    counts = adata.obs["cell_type"].value_counts().sort_index()
    ctx.console.print(f"wrote {path}: {adata.n_obs} cells × {adata.n_vars} genes, sparse raw counts", markup=False)
    ctx.console.print("cell types: " + ", ".join(f"{k} ({v})" for k, v in counts.items()), markup=False)
    return f"{adata.n_obs} cells × {adata.n_vars} genes, {len(counts)} cell types"


def train(ctx: DemoContext) -> str:
    """Train the ``majority`` control (the simplest annotate model) on the synthetic file."""
    import cellzoo

    path = ctx.state["data_path"]
    model = cellzoo.create_model("majority")
    adata = cellzoo.get_dataset(str(path))
    t0 = time.perf_counter()
    model.fit(adata, "cell_type")
    seconds = time.perf_counter() - t0
    ctx.state.update(model=model, adata=adata)
    ctx.console.print(
        f"cellzoo.create_model('majority').fit(adata, 'cell_type') → classes {list(model.classes)}", markup=False
    )
    return f"majority fitted in {seconds:.3f} s on {len(model.classes)} classes"


def save(ctx: DemoContext) -> str:
    """Save the model as an artifact directory (config.json, model.safetensors, README.md, golden set)."""
    import cellzoo

    directory = Path(cellzoo.save(ctx.state["model"], ctx.workdir / "majority-tiny"))
    ctx.state["artifact_dir"] = directory
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    ctx.console.print(f"cellzoo.save(model, {str(directory)!r})", markup=False)
    for name in files:
        ctx.console.print(f"  {name}  ({(directory / name).stat().st_size:,} bytes)", markup=False)
    return f"{len(files)} files in {directory.name}/"


def load(ctx: DemoContext) -> str:
    """Load it back by ``local-dir:`` and check it predicts exactly what the trained model predicts."""
    import numpy as np

    import cellzoo

    from .cli.tables import label_counts_table
    from .errors import ArtifactError

    source = f"local-dir:{ctx.state['artifact_dir']}"
    loaded = cellzoo.load(source)
    adata = ctx.state["adata"]
    expected = ctx.state["model"].predict(adata)
    got = loaded.predict(adata)
    if not np.array_equal(np.asarray(expected.labels), np.asarray(got.labels)):
        raise ArtifactError(f"{source} predicts differently from the model that was saved")
    ctx.state["loaded"] = loaded
    ctx.console.print(f"cellzoo.load({source!r}).predict(adata): same labels as before saving", markup=False)
    ctx.console.print(label_counts_table(got.labels))
    return f"round trip exact on {adata.n_obs} cells"


def verify(ctx: DemoContext) -> str:
    """Re-run the loaded model on its golden inputs and compare with the stored outputs."""
    import cellzoo

    from .cli.tables import verify_table
    from .errors import IntegrityError

    report = cellzoo.verify(ctx.state["loaded"])
    ctx.console.print(verify_table(report))
    if not report.passed:
        raise IntegrityError("the loaded model does not reproduce its golden outputs")
    return "golden I/O check PASS"


STEPS: list[Step] = [
    Step("zoo", "The installed zoo", show_zoo),
    Step("data", "A tiny synthetic dataset", make_data),
    Step("train", "Train the majority control", train, needs=("data",)),
    Step("save", "Save it as an artifact", save, needs=("train",)),
    Step("load", "Load it back by local-dir:", load, needs=("save",)),
    Step("verify", "Verify the golden input/output set", verify, needs=("load",)),
]


# -- running -------------------------------------------------------------------------------------


def plan(names: Sequence[str] | None = None, steps: Sequence[Step] | None = None) -> list[Step]:
    """The steps to run, in tour order: those named plus every step they need."""
    from .errors import UnknownNameError

    steps = list(STEPS if steps is None else steps)
    by_name = {s.name: s for s in steps}
    if names is None:
        return steps
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in by_name:
            raise UnknownNameError("demo step", name, by_name, hint=" Run `python -m cellzoo.demo --list` to see them.")
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].needs)
    return [s for s in steps if s.name in wanted]


def run(
    names: Sequence[str] | None = None,
    *,
    workdir: Path | None = None,
    console: Console | None = None,
    debug: bool = False,
    steps: Sequence[Step] | None = None,
) -> list[StepResult]:
    """Run the tour; stops at the first failing step (its result has ``ok=False``)."""
    from rich.markup import escape

    from .cli._app import console as default_console

    console = console or default_console()
    selected = plan(names, steps)
    results: list[StepResult] = []
    with tempfile.TemporaryDirectory(prefix="cellzoo-demo-") as tmp:
        base = Path(workdir) if workdir is not None else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        ctx = DemoContext(console=console, workdir=base)
        for i, step in enumerate(selected, 1):
            console.rule(f"[bold]{i}/{len(selected)} {step.title}[/] [dim]({step.name})[/]", align="left")
            t0 = time.perf_counter()
            try:
                summary = step.run(ctx)
            except Exception as exc:
                seconds = time.perf_counter() - t0
                if debug:
                    console.print_exception()
                console.print(f"[red]error in step {step.name!r}: {escape(f'{type(exc).__name__}: {exc}')}[/]")
                results.append(StepResult(step.name, False, seconds, f"{type(exc).__name__}: {exc}"))
                break
            seconds = time.perf_counter() - t0
            results.append(StepResult(step.name, True, seconds, summary))
            console.print(f"[green]✓[/] {escape(summary)} [dim]({seconds:.2f} s)[/]")
    _print_summary(console, results)
    return results


def _print_summary(console: Console, results: list[StepResult]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="demo summary", title_justify="left", header_style="bold")
    table.add_column("step", style="bold")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    for r in results:
        mark = "[green]✓[/]" if r.ok else "[red]✗[/]"
        table.add_row(r.name, f"{mark} {escape(r.summary)}", f"{r.seconds:.2f}")
    console.rule()
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cellzoo.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", help="comma-separated steps to run (with the steps they need); default: all")
    parser.add_argument("--workdir", type=Path, help="keep the demo's files here instead of a temporary folder")
    parser.add_argument("--list", action="store_true", help="list the steps and exit")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failing step")
    args = parser.parse_args(argv)
    if args.list:
        for step in STEPS:
            needs = f" (needs {', '.join(step.needs)})" if step.needs else ""
            print(f"{step.name:<10} {step.title}{needs}")
        return 0
    names = [n.strip() for n in args.steps.split(",") if n.strip()] if args.steps else None
    try:
        results = run(names, workdir=args.workdir, debug=args.debug)
    except CellzooError as exc:  # an unknown step name: one line, like the CLI
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
