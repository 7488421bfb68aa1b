"""``cellzoo list``, ``info`` and ``plugins``: what the installed plugins provide.

These read the plugins' declarative specs only, so they import neither torch nor scanpy.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from ._app import CliError, console, debug_enabled, echo_json, json_option

KINDS = ("models", "datasets", "metrics", "tasks")
#: ``--kind`` value → the plugin manager's catalogue key
CATALOG_KEY = {"models": "model", "datasets": "dataset", "metrics": "metric", "tasks": "task"}

COLUMNS: dict[str, list[tuple[str, str]]] = {
    "models": [("name", "name"), ("task", "task"), ("role", "role"), ("summary", "summary"), ("plugin", "plugin")],
    "pretrained": [
        ("name", "name"),
        ("task", "task"),
        ("architecture", "architecture"),
        ("summary", "summary"),
        ("on the Hub", "published"),
        ("cached", "cached"),
    ],
    "datasets": [
        ("name", "name"),
        ("tasks", "tasks"),
        ("label key", "label_key"),
        ("input", "input_state"),
        ("size", "shape"),
        ("summary", "summary"),
        ("plugin", "plugin"),
    ],
    "metrics": [
        ("name", "name"),
        ("task", "task"),
        ("better", "better"),
        ("range", "range"),
        ("summary", "summary"),
        ("plugin", "plugin"),
    ],
    "tasks": [
        ("name", "name"),
        ("metrics", "metrics"),
        ("controls", "controls"),
        ("summary", "summary"),
        ("plugin", "plugin"),
    ],
}


# -- plain data (shared with the demo and with --json) -------------------------------------------


def reference(obj: Any) -> str | None:
    """``"package.module:attr"`` for a lazy reference, a class or a function."""
    if obj is None or isinstance(obj, str):
        return obj
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return f"{module}:{qualname}" if module and qualname else repr(obj)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if callable(value):
        return reference(value)
    return repr(value)


def spec_fields(spec: Any) -> dict[str, Any]:
    """Every field of a spec dataclass, JSON-able (lazy references and types as ``module:attr``)."""
    return {f.name: _jsonable(getattr(spec, f.name)) for f in dataclasses.fields(spec)}


def config_fields(config_type: type | None) -> list[dict[str, Any]]:
    """Name, type, default (and help, when the field's metadata has one) of each config field."""
    if config_type is None:
        return []
    fields = []
    for f in dataclasses.fields(config_type):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default, required = f.default, False
        elif f.default_factory is not dataclasses.MISSING:
            default, required = f.default_factory(), False
        else:
            default, required = None, True
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", repr(f.type))
        row = {"name": f.name, "type": type_name, "default": _jsonable(default), "required": required}
        help_text = f.metadata.get("help") or f.metadata.get("doc")
        if help_text:
            row["help"] = str(help_text)
        fields.append(row)
    return fields


def _plugin_fields(contribution: Any) -> dict[str, Any]:
    return {"plugin": contribution.plugin, "distribution": contribution.distribution, "version": contribution.version}


def catalog_rows(kind: str, pattern: str = "*", task: str | None = None) -> list[dict[str, Any]]:
    """One dict per catalogue entry of ``kind`` ("models", "datasets", "metrics", "tasks")."""
    from .. import registry
    from ..plugins import get_plugin_manager

    entries = get_plugin_manager().catalog()[CATALOG_KEY[kind]]
    if kind == "models":
        names = registry.list_models(pattern, task=task)
    elif kind == "datasets":
        names = registry.list_datasets(pattern, task=task)
    elif kind == "metrics":
        names = registry.list_metrics(pattern, task=task)
    else:
        names = [n for n in registry.list_tasks(pattern) if task is None or n == task]
    rows = []
    for name in names:
        c = entries[name]
        s = c.spec
        row: dict[str, Any] = {"name": name, "summary": s.summary, **_plugin_fields(c)}
        if kind == "models":
            row.update(task=s.task, role=s.role, exportable=s.exportable, tags=list(s.tags), license=s.license)
        elif kind == "datasets":
            shape = f"{s.n_obs} × {s.n_vars}" if s.n_obs and s.n_vars else ""
            row.update(
                tasks=list(s.tasks),
                label_key=s.label_key,
                input_state=s.input_state,
                n_obs=s.n_obs,
                n_vars=s.n_vars,
                shape=shape,
                batch_key=s.batch_key,
            )
        elif kind == "metrics":
            row.update(
                task=s.task,
                higher_is_better=s.higher_is_better,
                better="higher" if s.higher_is_better else "lower",
                range=list(s.range),
                scalar=s.scalar,
            )
        else:
            row.update(metrics=list(s.metrics), controls=list(s.controls), protocol=list(s.protocol), split=s.split)
        rows.append(row)
    return rows


def pretrained_rows(pattern: str = "*", task: str | None = None) -> list[dict[str, Any]]:
    """One dict per named checkpoint (``arch.tag``) in the registry."""
    from .. import registry
    from ..pretrained import pretrained_entries

    entries = pretrained_entries()
    return [pretrained_fields(entries[name]) for name in registry.list_models(pattern, task=task, pretrained=True)]


def pretrained_fields(entry: Any) -> dict[str, Any]:
    """A registry entry as JSON, plus whether it is published and whether it is in the local cache."""
    from ..paths import artifact_dir

    cache = artifact_dir(entry.name)
    return {
        **entry.to_json(),
        "published": entry.published,
        "cached": (cache / "config.json").is_file(),
        "cache_dir": str(cache),
    }


def _glob(pattern: str | None) -> str:
    # a plain word matches as a substring, like `pip list | grep`; globs are used as given
    if not pattern:
        return "*"
    return pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"


def _check_task(task: str | None) -> None:
    if task is not None:
        from .. import registry

        registry.task_spec(task)  # UnknownNameError with the closest task names


# -- list ----------------------------------------------------------------------------------------


@click.command("list", short_help="List models, datasets, metrics or tasks.")
@click.argument("pattern", required=False)
@click.option("--task", "-t", default=None, help="Only entries for this task (e.g. annotate).")
@click.option(
    "--pretrained", is_flag=True, help="List named pretrained checkpoints (arch.tag) instead of architectures."
)
@click.option(
    "--kind",
    "-k",
    type=click.Choice(KINDS),
    default="models",
    show_default=True,
    help="What to list.",
)
@json_option
def list_command(pattern: str | None, task: str | None, pretrained: bool, kind: str, as_json: bool) -> None:
    """List installed models, datasets, metrics or tasks; names matching PATTERN.

    PATTERN is a glob (`scan*`) or a plain word matched anywhere in the name;
    `cellzoo list datasets` (or metrics, tasks) is short for `--kind datasets`.
    """
    if pattern in KINDS and kind == "models":  # `cellzoo list datasets` reads as it sounds
        pattern, kind = None, pattern
    if pretrained and kind != "models":
        raise click.UsageError("--pretrained lists model checkpoints; it cannot be combined with --kind " + kind)
    _check_task(task)
    glob = _glob(pattern)
    if pretrained:
        rows, columns, what = pretrained_rows(glob, task), COLUMNS["pretrained"], "pretrained models"
    else:
        rows, columns, what = catalog_rows(kind, glob, task), COLUMNS[kind], kind
    title = f"{len(rows)} {what if len(rows) != 1 else what[:-1]}"
    if as_json:
        echo_json(rows)
        return
    out = console()
    if not rows:
        where = f" matching {pattern!r}" if pattern else ""
        where += f" for task {task!r}" if task else ""
        out.print(f"No {what}{where}. Run `cellzoo list --kind {kind}` to see everything installed.", markup=False)
        return
    from .tables import rows_table

    out.print(rows_table(columns, rows, title=title, width=out.width))


# -- info ----------------------------------------------------------------------------------------


def entry_info(name: str, kind: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Everything known about ``name``, and the other kinds that also use that name."""
    from .. import registry
    from ..errors import UnknownNameError
    from ..plugins import get_plugin_manager

    catalog = get_plugin_manager().catalog()
    if "." in name and ":" not in name and kind in (None, "model"):
        return pretrained_info(name), []
    kinds = [kind] if kind else ["model", "dataset", "metric", "task"]
    found = [k for k in kinds if name in catalog[k]]
    if not found:
        known = [n for k in kinds for n in catalog[k]]
        what = kind or "model, dataset, metric or task"
        raise UnknownNameError(what, name, known)
    first = found[0]
    c = catalog[first][name]
    info: dict[str, Any] = {"kind": first, "name": name, **_plugin_fields(c), "spec": spec_fields(c.spec)}
    if first == "model":
        info["config"] = config_fields(c.spec.config)
        info["pretrained"], registry_error = _pretrained_of(name)
        if registry_error:
            info["registry_error"] = registry_error
    elif first == "task":
        info["models"] = registry.list_models(task=name)
        info["datasets"] = registry.list_datasets(task=name)
    elif first in ("dataset", "metric"):
        tasks = c.spec.tasks if first == "dataset" else (c.spec.task,)
        info["models"] = sorted({m for t in tasks for m in registry.list_models(task=t)})
    return info, found[1:]


def _pretrained_of(arch: str) -> tuple[list[str], str | None]:
    """The registry's checkpoints of ``arch``, and the registry's error if it cannot be read."""
    from .. import registry
    from ..errors import CellzooError

    try:
        return registry.list_models(f"{arch}.*", pretrained=True), None
    except CellzooError as exc:  # a broken registry file must not hide the architecture's info
        return [], str(exc)


def pretrained_info(name: str) -> dict[str, Any]:
    from .. import registry
    from ..errors import UnknownNameError
    from ..pretrained import pretrained_entry

    fields = pretrained_fields(pretrained_entry(name))
    info: dict[str, Any] = {"kind": "pretrained", "name": name, "entry": fields}
    try:
        c = registry.contribution("model", fields["architecture"])
    except UnknownNameError:
        info["architecture_installed"] = False
    else:
        info.update(architecture_installed=True, **_plugin_fields(c), spec=spec_fields(c.spec))
        info["config"] = config_fields(c.spec.config)
    return info


def _kv_table(pairs: list[tuple[str, Any]]):
    from rich.table import Table
    from rich.text import Text

    from .tables import cell_text

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        text = cell_text(value)
        if text:
            table.add_row(key, Text(text))
    return table


def _print_info(info: dict[str, Any], others: list[str]) -> None:
    from rich.markup import escape
    from rich.panel import Panel

    from .tables import rows_table

    out = console()
    kind, name = info["kind"], info["name"]
    spec = dict(info.get("spec") or {})
    if kind == "pretrained":
        entry = info["entry"]
        recipe = entry["recipe"]
        hub = entry["hub"]
        pairs = [
            ("summary", entry["summary"]),
            ("architecture", entry["architecture"]),
            ("task", entry["task"]),
            ("license", entry.get("license_name") or entry["license"]),
            ("training data", entry["training_data"]),
            ("tags", entry["tags"]),
            ("recipe", ", ".join(f"{k}={v}" for k, v in recipe.items())),
            (
                "Hub",
                f"{hub['repo_id']}@{hub['revision']}" if hub["revision"] else f"{hub['repo_id']} (not published yet)",
            ),
            ("local cache", entry["cache_dir"] if entry["cached"] else f"not cached ({entry['cache_dir']})"),
            ("registry file", entry.get("path")),
        ]
        if info.get("architecture_installed"):
            pairs.append(
                ("plugin", f"{info['plugin']} ({info.get('distribution') or '?'} {info.get('version') or ''})")
            )
        out.print(Panel(_kv_table(pairs), title=f"pretrained model [bold]{escape(name)}[/]", title_align="left"))
        if entry["metrics"]:
            columns = [("dataset", "dataset"), ("split", "split"), ("metric", "metric"), ("value", "value")]
            out.print(rows_table(columns, entry["metrics"], title="measured metrics"))
        if not info.get("architecture_installed"):
            missing = entry["architecture"]
            out.print(
                f"[yellow]architecture {escape(repr(missing))} is provided by no installed plugin; "
                "install the plugin that provides it to load this checkpoint[/]"
            )
    else:
        skip = {"name", "citation", "config", "summary"}
        pairs = [("summary", spec.get("summary"))] + [(k, v) for k, v in spec.items() if k not in skip]
        provider = info.get("distribution") or "?"
        if info.get("version"):
            provider += f" {info['version']}"
        pairs.append(("plugin", f"{info['plugin']} ({provider})"))
        if kind == "model":
            pairs.append(("config class", spec.get("config")))
            pretrained = info["pretrained"] or info.get("registry_error") or "none in the registry"
            pairs.append(("pretrained", pretrained))
        for key in ("models", "datasets"):
            if key in info:
                pairs.append((key, info[key] or "none installed"))
        out.print(Panel(_kv_table(pairs), title=f"{kind} [bold]{escape(name)}[/]", title_align="left"))
    config = info.get("config")
    if config:
        columns = [("field", "name"), ("type", "type"), ("default", "default_text")]
        if any("help" in row for row in config):
            columns.append(("help", "help"))
        # defaults are shown as JSON: the syntax `--set KEY=VALUE` parses
        rows = [
            {**row, "default_text": "(required)" if row["required"] else json.dumps(row["default"])} for row in config
        ]
        out.print("[bold]configuration[/] [dim](change with --set KEY=VALUE)[/]")
        out.print(rows_table(columns, rows))
    elif kind == "model":
        out.print("configuration: none (this model takes no options)")
    citation = spec.get("citation") or (info.get("entry") or {}).get("citation")
    if citation:
        out.print(Panel(escape(str(citation)), title="citation", title_align="left"))
    if others:
        also = f"{name!r} is also a {', '.join(others)}: see `cellzoo info {name} --kind {others[0]}`"
        out.print(f"[dim]{escape(also)}[/]")


@click.command("info", short_help="Everything about one model, dataset, metric or task.")
@click.argument("name")
@click.option(
    "--kind",
    "-k",
    type=click.Choice(["model", "dataset", "metric", "task"]),
    default=None,
    help="Which kind of entry, when a name is used by more than one.",
)
@json_option
def info_command(name: str, kind: str | None, as_json: bool) -> None:
    """Everything about NAME: a model, checkpoint (arch.tag), dataset, metric or task."""
    info, others = entry_info(name, kind)
    if as_json:
        echo_json(info)
    else:
        _print_info(info, others)


# -- plugins -------------------------------------------------------------------------------------


def plugin_rows(full_errors: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """One dict per plugin (built-in first) and the catalogue's own error, if it could not be built."""
    from ..errors import PluginError
    from ..plugins import BUILTIN, get_plugin_manager

    pm = get_plugin_manager()
    catalog_error = None
    try:
        pm.catalog()
    except PluginError as exc:  # e.g. two plugins provide one name: still show every plugin
        catalog_error = str(exc)
    rows = []
    for info in sorted(pm.info.values(), key=lambda i: (i.name != BUILTIN, i.name)):
        errors = [e if full_errors else e.strip().splitlines()[0] for e in info.errors]
        contributions = {kind: sorted(names) for kind, names in sorted(info.contributions.items())}
        provides = "\n".join(f"{k}s: {', '.join(n)}" for k, n in contributions.items())
        rows.append(
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "module": info.module,
                "contributions": contributions,
                "provides": provides,
                "status": "ok" if info.ok else "error",
                "errors": errors,
            }
        )
    return rows, catalog_error


@click.command("plugins")
@json_option
def plugins_command(as_json: bool) -> None:
    """Installed plugins: versions, what each provides, load errors."""
    full = debug_enabled()
    rows, catalog_error = plugin_rows(full_errors=full)
    if as_json:
        echo_json({"plugins": rows, "catalog_error": catalog_error})
    else:
        from rich.markup import escape
        from rich.table import Table

        title = f"{len(rows)} plugin{'s' if len(rows) != 1 else ''}"
        table = Table(title=title, title_justify="left", header_style="bold", show_lines=True)
        table.add_column("plugin", style="bold cyan", no_wrap=True)
        table.add_column("distribution", overflow="fold")
        table.add_column("version", no_wrap=True)
        table.add_column("provides", overflow="fold", ratio=2)
        table.add_column("status", overflow="fold", ratio=1)
        for row in rows:
            status = "[green]ok[/]" if row["status"] == "ok" else "[red]" + escape("\n".join(row["errors"])) + "[/]"
            table.add_row(row["name"], row["distribution"] or "", row["version"] or "", row["provides"], status)
        out = console()
        out.print(table)
        if any(row["errors"] for row in rows) and not full:
            out.print("[dim]run `cellzoo --debug plugins` for the full errors[/]")
    if catalog_error:
        raise CliError(catalog_error)
