"""Rich tables the CLI and the demo print: catalogue listings, label counts, verification results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

#: (header, row key) pairs; the first column is the name and never wraps
Columns = Sequence[tuple[str, str]]
#: columns of free text or lists that may wrap; the others are short words kept on one line
NARROW_DROPS = frozenset({"plugin", "shape"})
WRAPPING = frozenset({"summary", "errors", "help", "metrics", "controls", "tasks", "default_text", "type"})


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def rows_table(
    columns: Columns, rows: Iterable[Mapping[str, Any]], title: str | None = None, width: int | None = None
) -> Table:
    """A table with one row per mapping; long text columns wrap, the name column does not.

    Below 100 columns of ``width`` the columns that ``cellzoo info`` also shows (plugin, size)
    are left out, so that the summaries keep room to be read.
    """
    from rich.table import Table
    from rich.text import Text

    if width is not None and width < 100:
        columns = [c for c in columns if c[1] not in NARROW_DROPS]
    table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    for i, (header, key) in enumerate(columns):
        if i == 0:
            table.add_column(header, style="bold cyan", no_wrap=True)
        elif key in ("summary", "errors", "help"):
            table.add_column(header, overflow="fold", ratio=1)
        elif key in WRAPPING:
            table.add_column(header, overflow="fold")
        else:
            table.add_column(header, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*(Text(cell_text(row.get(key))) for _, key in columns))  # Text: brackets are not markup
    return table


def label_counts_table(labels: Sequence[Any], title: str = "predicted labels") -> Table:
    """Cells per predicted label, most frequent first."""
    import numpy as np
    from rich.table import Table
    from rich.text import Text

    values, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    total = int(counts.sum())
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("label", style="bold")
    table.add_column("cells", justify="right")
    table.add_column("share", justify="right")
    for i in order:
        table.add_row(Text(str(values[i])), str(int(counts[i])), f"{counts[i] / total:.1%}")
    return table


def verify_table(report: Any) -> Table:
    """Per-output max differences of a golden-set check (a :class:`cellzoo.artifacts.VerifyReport`)."""
    from rich.markup import escape
    from rich.table import Table

    title = f"golden check: {report.n} inputs, atol {report.atol:g}, rtol {report.rtol:g}"
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("output", style="bold")
    table.add_column("shape")
    table.add_column("max |diff|", justify="right")
    table.add_column("max rel diff", justify="right")
    table.add_column("result")
    for check in report.checks:
        result = "[green]PASS[/]" if check.passed else f"[red]FAIL[/] {escape(check.problem)}".rstrip()
        table.add_row(
            escape(check.name),
            " × ".join(map(str, check.shape)),
            f"{check.max_abs_diff:.3g}",
            f"{check.max_rel_diff:.3g}",
            result,
        )
    return table
