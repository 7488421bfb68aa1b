"""The ``cellzoo`` click group: global flags, error reporting and options shared by commands.

Command modules import only this and click at module level; anything heavy (anndata, torch, the
plugins' code) is imported inside the command that needs it, so that ``cellzoo --help``,
``list``, ``info`` and ``plugins`` start fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from ..errors import CellzooError

if TYPE_CHECKING:
    from rich.console import Console

#: exceptions whose message is all a user needs; anything else is a bug and says so
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (CellzooError, FileNotFoundError, FileExistsError)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class CliError(click.ClickException):
    """An error shown as one red ``error: ...`` line on stderr (no traceback)."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.secho(f"error: {self.format_message()}", fg="red", err=True, file=file)


def error_for(exc: BaseException) -> CliError:
    """The one-line error the CLI prints for ``exc``."""
    if isinstance(exc, EXPECTED_ERRORS):
        message = str(exc) or type(exc).__name__
        if isinstance(exc, (FileNotFoundError, FileExistsError)) and exc.filename and exc.strerror:
            message = f"{exc.strerror}: {exc.filename}"
        return CliError(message, exit_code=getattr(exc, "exit_code", 1))
    return CliError(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")


class ZooGroup(click.Group):
    """A click group that turns exceptions from commands into one-line errors unless ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise error_for(exc) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        # help lists commands in the order they were added (the order of a user's journey)
        return list(self.commands)


def installed_plugin_distributions() -> list[tuple[str, str, str]]:
    """(entry-point name, distribution, version) of every ``cellzoo`` plugin, read from metadata only."""
    import importlib.metadata as md

    from ..plugins import ENTRY_POINT_GROUP

    rows = []
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        rows.append((ep.name, dist, version))
    return sorted(set(rows))


def version_text() -> str:
    from ..constants import __version__

    lines = [f"cellzoo {__version__} (Python {sys.version.split()[0]})"]
    plugins = installed_plugin_distributions()
    if plugins:
        lines.append("plugins:")
        width = max(len(dist) for _, dist, _ in plugins)
        lines += [f"  {dist:<{width}}  {version}  (entry point {name!r})" for name, dist, version in plugins]
    else:
        lines.append("plugins: none installed (only the built-in annotate task, metrics and controls)")
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # reads distribution metadata only: no plugin is imported, so this stays instant
    if not value or ctx.resilient_parsing:
        return
    click.echo(version_text())
    ctx.exit(0)


class CliState:
    """What the group hands to its commands as ``ctx.obj``."""

    def __init__(self, debug: bool = False):
        self.debug = debug


def debug_enabled() -> bool:
    """Whether the running command was called with ``cellzoo --debug``."""
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CliState) if ctx is not None else None
    return bool(state is not None and state.debug)


@click.group(cls=ZooGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the cellzoo version and the installed plugin distributions, then exit.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="CELLZOO_DEBUG",
    help="Show full tracebacks and plugin errors instead of one-line messages (env: CELLZOO_DEBUG=1).",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """cellzoo: a model zoo for single-cell RNA-seq.

    \b
    List what is installed:      cellzoo list
    Read about one entry:        cellzoo info scanna
    Train on your own data:      cellzoo train majority --dataset data.h5ad --label-key cell_type
    Annotate cells:              cellzoo predict local-dir:majority-data data.h5ad -o annotated.h5ad
    """
    ctx.obj = CliState(debug=debug)


# -- shared options and output ----------------------------------------------------------------

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace existing output.")
#: ``predict`` and ``run`` read the query's gene names from ``var_names`` or from this column of ``var``
gene_column_option = click.option(
    "--gene-column", default=None, help="Column of var holding the gene names [default: var_names]."
)


def check_output_path(path: Any) -> Any:
    """Refuse ``-o PATH`` before any model or data is loaded unless a file can be written there
    (its folder exists and is writable); returns the path."""
    from ..fileio import check_output_file

    return check_output_file(path, fix="choose another -o in a folder you can write to")


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def console(stderr: bool = False) -> Console:
    """A rich console writing to the current ``sys.stdout``/``sys.stderr`` (so tests can capture it).

    Output that is not a terminal (a log, a pipe) is laid out 120 columns wide rather than rich's
    80, so that tables of summaries stay readable; ``COLUMNS`` still wins when set.
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 120
    return Console(stderr=stderr, highlight=False, width=width)
