"""timm-style access to everything the installed plugins contribute: list, look up, create.

Names are ``arch`` (an architecture: ``create_model`` builds it untrained) or ``arch.tag`` (a
pretrained checkpoint listed under ``registry/``: :func:`cellzoo.load` resolves it through
:mod:`cellzoo.sources`). Datasets load through :mod:`cellzoo.data.datasets`.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import numbers
import operator
import types
import typing
from typing import Any

from .errors import ConfigError, UnknownNameError
from .plugins import get_plugin_manager
from .pretrained import pretrained_entries
from .specs import Contribution, DatasetSpec, LossWeightingSpec, MetricSpec, ModelSpec, TaskSpec, resolve


def _entries(kind: str) -> dict[str, Contribution]:
    return get_plugin_manager().catalog()[kind]


def _match(names, pattern: str | list[str] | None) -> list[str]:
    patterns = [pattern] if isinstance(pattern, str) or pattern is None else list(pattern)
    patterns = [p or "*" for p in patterns] or ["*"]
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))


def contribution(kind: str, name: str) -> Contribution:
    entries = _entries(kind)
    if name not in entries:
        raise UnknownNameError(kind, name, entries)
    return entries[name]


# -- listing ---------------------------------------------------------------------------------


def list_models(pattern: str | list[str] = "*", task: str | None = None, pretrained: bool = False) -> list[str]:
    """Architectures (or, with ``pretrained=True``, ``arch.tag`` checkpoints) matching ``pattern``."""
    if pretrained:
        entries = pretrained_entries()
        names = [n for n, e in entries.items() if task is None or e.task == task]
        return _match(names, pattern)
    names = [n for n, c in _entries("model").items() if task is None or c.spec.task == task]
    return _match(names, pattern)


def list_datasets(pattern: str | list[str] = "*", task: str | None = None) -> list[str]:
    names = [n for n, c in _entries("dataset").items() if task is None or task in c.spec.tasks]
    return _match(names, pattern)


def list_metrics(pattern: str | list[str] = "*", task: str | None = None) -> list[str]:
    names = [n for n, c in _entries("metric").items() if task is None or c.spec.task == task]
    return _match(names, pattern)


def list_tasks(pattern: str | list[str] = "*") -> list[str]:
    return _match(_entries("task"), pattern)


def list_loss_weightings(pattern: str | list[str] = "*") -> list[str]:
    """Loss-weighting strategies (``cellzoo_loss_weightings`` hook) matching ``pattern``."""
    return _match(_entries("loss weighting"), pattern)


def model_spec(name: str) -> ModelSpec:
    return contribution("model", name.split(".", 1)[0] if "." in name and ":" not in name else name).spec


def dataset_spec(name: str) -> DatasetSpec:
    return contribution("dataset", name).spec


def metric_spec(name: str) -> MetricSpec:
    return contribution("metric", name).spec


def task_spec(name: str) -> TaskSpec:
    return contribution("task", name).spec


def loss_weighting_spec(name: str) -> LossWeightingSpec:
    return contribution("loss weighting", name).spec


# -- building ----------------------------------------------------------------------------------


def make_config(spec: ModelSpec | LossWeightingSpec, overrides: dict[str, Any] | None = None, base: Any = None) -> Any:
    """The config dataclass of a model (or loss weighting) with ``overrides`` applied; unknown keys are an error."""
    what = "model" if isinstance(spec, ModelSpec) else "loss weighting"
    overrides = dict(overrides or {})
    if spec.config is None:
        if overrides:
            raise ConfigError(f"{what} {spec.name!r} takes no configuration, got {sorted(overrides)}")
        return None
    fields = {f.name: f for f in dataclasses.fields(spec.config) if f.init}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, fields, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"{what} {spec.name!r} has no config key {', '.join(hints)}; valid keys: {', '.join(sorted(fields))}"
        )
    problems = _value_problems(spec.config, fields, overrides)
    if problems:
        raise ConfigError(f"invalid configuration for {what} {spec.name!r}: {'; '.join(problems)}")
    try:
        if base is not None:
            return dataclasses.replace(base, **overrides)
        return spec.config(**overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid configuration for {what} {spec.name!r}: {exc}") from exc


def _numeric_kinds(annotation: Any) -> tuple[frozenset[type], bool] | None:
    """For a field declared ``int``, ``float`` (or a union of them, optionally with None): the
    numeric types it takes and whether it takes None; None for any other declaration."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    kinds = frozenset(m for m in members if m is not type(None))
    if not kinds or not kinds <= {int, float}:
        return None
    return kinds, type(None) in members


def _is_integer(value: Any) -> bool:
    # ints and numpy integers; not bools, not floats (a float for an integer field is a mistake to report)
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _value_problems(config_type: type, fields: dict[str, dataclasses.Field], overrides: dict[str, Any]) -> list[str]:
    """A problem for each override of a numeric field (declared ``int`` or ``float``) that is not of that type.

    An integer field takes integers only (2.5 and 2.0 are refused, as is ``True``); a float field
    takes any real number. The field's own default is always accepted. Fields of other types are
    the config class's to check.
    """
    try:
        hints = typing.get_type_hints(config_type)
    except Exception:  # an annotation that does not resolve: leave the checks to the class
        return []
    problems = []
    for key, value in overrides.items():
        numeric = _numeric_kinds(hints.get(key))
        if numeric is None or value is fields[key].default:
            continue
        kinds, takes_none = numeric
        if value is None and takes_none:
            continue
        if _is_integer(value):
            continue
        if float in kinds and isinstance(value, numbers.Real) and not isinstance(value, bool):
            continue
        expected = "an integer (int)" if kinds == {int} else "a number (float)"
        if takes_none:
            expected += " or null"
        got = "text" if isinstance(value, str) else f"a {type(value).__name__}"
        hint = " that is not a whole number" if isinstance(value, float) and not value.is_integer() else ""
        problems.append(f"config key {key!r} takes {expected}, got {value!r} ({got}{hint})")
    return problems


def config_from_json(spec: ModelSpec, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from ``config.json`` (unknown keys are an error)."""
    return make_config(spec, data)


def create_model(name: str, **config_overrides: Any) -> Any:
    """Build the architecture ``name`` (untrained) from its default config plus overrides."""
    if "." in name:
        raise ConfigError(
            f"{name!r} names a pretrained checkpoint; use cellzoo.load({name!r}) for it, or "
            f"create_model({name.split('.', 1)[0]!r}) for the untrained architecture"
        )
    spec = contribution("model", name).spec
    config = make_config(spec, config_overrides)
    builder = resolve(spec.builder)
    model = builder(config) if spec.config is not None else builder()
    model.spec = spec
    return model


def create_loss_weighting(name: str, **config_overrides: Any) -> Any:
    """The loss weighting ``name`` with its default config plus overrides (unknown keys are an error)."""
    spec = loss_weighting_spec(name)
    builder = resolve(spec.builder)
    if spec.config is None:
        if config_overrides:
            raise ConfigError(f"loss weighting {name!r} takes no configuration, got {sorted(config_overrides)}")
        return builder()
    return builder(make_config(spec, config_overrides))


def get_metric(name: str):
    return resolve(metric_spec(name).function)
