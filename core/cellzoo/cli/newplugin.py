"""``cellzoo new-plugin NAME [--torch]``: a ready-to-install plugin package that adds one ``annotate`` model.

The files come from ``cellzoo/templates/plugin/`` (``*.tmpl``, with ``{{placeholders}}``): a
nearest-centroid model in numpy. With ``--torch``, the files of ``templates/plugin-torch/`` are laid
over them: a torch model on :class:`cellzoo.training.TorchAnnotator` whose config inherits
:class:`cellzoo.TrainingConfig`, exportable to ONNX. The folder ``src/package/`` becomes the Python
package ``src/cellzoo_<name>``, the layout of the zoo's own plugins.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import click

from ..errors import ConfigError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")
TEMPLATE = "plugin"
#: laid over TEMPLATE by ``--torch`` (a file here replaces the file of the same path there)
TORCH_TEMPLATE = "plugin-torch"
PACKAGE_DIR = "package"


def template_values(name: str) -> dict[str, str]:
    """The placeholder values for plugin ``name`` (e.g. ``my-method``)."""
    from ..constants import __version__

    if not NAME_PATTERN.match(name) or name.endswith(("-", "_")):
        raise ConfigError(
            f"plugin name {name!r} must start with a lowercase letter and hold only lowercase letters, digits, "
            "'_' or '-' (it becomes the model name, e.g. cellzoo new-plugin mymethod)"
        )
    words = re.split(r"[-_]+", name)
    return {
        "name": name,
        "package": "cellzoo_" + "_".join(words),
        "distribution": "cellzoo-" + "-".join(words),
        "class_name": "".join(w[:1].upper() + w[1:] for w in words),
        "cellzoo_version": ".".join(__version__.split(".")[:2]),
    }


def render(text: str, values: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\{\{(\w+)\}\}", substitute, text)


def _template_files(root) -> Iterator[tuple[tuple[str, ...], str]]:
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            for parts, text in _template_files(entry):
                yield (entry.name, *parts), text
        elif entry.name.endswith(".tmpl"):
            yield (entry.name[: -len(".tmpl")],), entry.read_text(encoding="utf-8")


def plugin_files(name: str, torch: bool = False) -> dict[str, str]:
    """Relative path → content of every file of the new plugin (``torch``: the torch template)."""
    values = template_values(name)
    templates = resources.files("cellzoo").joinpath("templates")
    files = {}
    for template in (TEMPLATE, TORCH_TEMPLATE) if torch else (TEMPLATE,):
        for parts, text in _template_files(templates.joinpath(template)):
            parts = tuple(values["package"] if part == PACKAGE_DIR else part for part in parts)
            files["/".join(parts)] = render(text, values)
    return dict(sorted(files.items()))


def write_plugin(name: str, directory: str | Path | None = None, torch: bool = False) -> Path:
    """Write the plugin package for ``name`` into ``directory`` (default ``./cellzoo-<name>``).

    ``torch``: the torch template (a :class:`~cellzoo.training.TorchAnnotator` model).
    """
    from ..fileio import atomic_dir
    from ..registry import list_models

    values = template_values(name)
    if name in list_models():
        raise ConfigError(
            f"a model named {name!r} is already installed (`cellzoo info {name}` says where from); two plugins "
            "cannot provide the same name, so choose another one"
        )
    target = Path(directory) if directory is not None else Path(values["distribution"])
    files = plugin_files(name, torch=torch)
    with atomic_dir(target) as tmp:
        for relative, text in files.items():
            path = tmp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return target


@click.command("new-plugin", short_help="Create a plugin package for your own annotate model.")
@click.argument("name")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to create [default: ./cellzoo-NAME]; it must not exist or be empty.",
)
@click.option(
    "--torch",
    "torch_template",
    is_flag=True,
    help="A torch model (TorchAnnotator, a TrainingConfig config, ONNX export) instead of the numpy one.",
)
def new_plugin_command(name: str, out: Path | None, torch_template: bool) -> None:
    """Create a plugin package that adds the annotate model NAME, ready to `pip install -e`.

    The default template is a nearest-centroid model in numpy; --torch writes a small torch
    classifier that trains with cellzoo's recipe, saves, loads and exports to ONNX.

    \b
    cellzoo new-plugin mymethod
    pip install -e cellzoo-mymethod
    pytest cellzoo-mymethod/tests
    cellzoo bench --task annotate --dataset pbmc68k_reduced --models mymethod,logreg,linear_svm
    """
    target = write_plugin(name, out, torch=torch_template)
    values = template_values(name)
    kind = "torch model" if torch_template else "model"
    click.echo(f"created {target}/ with {kind} {name!r} (package {values['package']}, class {values['class_name']})")
    click.echo("next:")
    click.echo(f"  pip install -e {target}")
    click.echo(f"  pytest {target / 'tests'}")
    click.echo(f"  cellzoo bench --task annotate --dataset pbmc68k_reduced --models {name},logreg,linear_svm")
