"""Declarative spec objects that plugins return from their hooks.

They hold names, metadata and *lazy* references (``"package.module:attr"``) so that listing the
zoo imports neither torch nor scanpy; :func:`resolve` imports a reference when it is used.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ROLES = ("method", "baseline", "control")
#: how the benchmark harness runs and scores a task (see :class:`TaskSpec`)
SCORINGS = ("supervised", "unsupervised", "markers", "generate", "upscale")
#: what a task's datasets hold: an AnnData of cells, or a set of images
DATA_KINDS = ("cells", "images")


def resolve(ref: str | Callable[..., Any]) -> Any:
    """Import ``"package.module:attr"`` (or return a callable unchanged)."""
    if not isinstance(ref, str):
        return ref
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise ValueError(f"lazy reference {ref!r} must look like 'package.module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _check_name(kind: str, name: str) -> None:
    if not name or not all(c.isalnum() or c in "_-" for c in name) or name[0] in "-_":
        raise ValueError(
            f"{kind} name {name!r} must be letters, digits, '_' or '-' (no dots: "
            "'arch.tag' names a pretrained checkpoint)"
        )


@dataclass(frozen=True)
class ModelSpec:
    """An architecture the zoo can build: ``create_model(name)`` calls ``builder(config)``."""

    name: str
    task: str
    builder: str | Callable[..., Any]
    config: type | None = None
    summary: str = ""
    role: str = "method"
    paper: str = ""
    license: str = ""
    authors: tuple[str, ...] = ()
    citation: str = ""
    exportable: bool = False
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("model", self.name)
        if self.role not in ROLES:
            raise ValueError(f"model {self.name!r}: role {self.role!r} is not one of {ROLES}")
        if self.config is not None and not dataclasses.is_dataclass(self.config):
            raise TypeError(f"model {self.name!r}: config must be a dataclass type")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: ``loader(**params)`` returns an AnnData (``data="cells"``) or a list of images
    (``data="images"``: numpy arrays, height × width or height × width × channels)."""

    name: str
    tasks: tuple[str, ...]
    loader: str | Callable[..., Any]
    label_key: str | None = None
    input_state: str = "counts"
    summary: str = ""
    n_obs: int | None = None
    n_vars: int | None = None
    batch_key: str | None = None
    citation: str = ""
    license: str = ""
    data: str = "cells"

    def __post_init__(self) -> None:
        _check_name("dataset", self.name)
        if self.data not in DATA_KINDS:
            raise ValueError(f"dataset {self.name!r}: data {self.data!r} is not one of {DATA_KINDS}")


@dataclass(frozen=True)
class MetricSpec:
    """A metric: ``function(truth, prediction)`` returns a float (or a dict for per-class)."""

    name: str
    task: str
    function: str | Callable[..., Any]
    higher_is_better: bool = True
    range: tuple[float, float] = (0.0, 1.0)
    summary: str = ""
    scalar: bool = True

    def __post_init__(self) -> None:
        _check_name("metric", self.name)


@dataclass(frozen=True)
class LossWeightingSpec:
    """A loss-weighting strategy (``weighting`` task): ``builder(config)`` returns a :class:`cellzoo.protocols.LossWeighting`.

    Training code that combines several loss parts asks for one by name
    (:func:`cellzoo.create_loss_weighting`), keeps each part's recent values, and multiplies the
    parts by ``weights(histories)``.
    """

    name: str
    builder: str | Callable[..., Any]
    config: type | None = None
    summary: str = ""
    citation: str = ""
    license: str = ""

    def __post_init__(self) -> None:
        _check_name("loss weighting", self.name)
        if self.config is not None and not dataclasses.is_dataclass(self.config):
            raise TypeError(f"loss weighting {self.name!r}: config must be a dataclass type")


@dataclass(frozen=True)
class TaskSpec:
    """The contract between the benchmark harness and a model for one kind of problem."""

    name: str
    protocol: tuple[str, ...]
    metrics: tuple[str, ...]
    controls: tuple[str, ...] = ()
    split: str = "stratified_kfold"
    summary: str = ""
    #: ``supervised``: ``fit(train, label_key)``, ``predict(test)`` scored against the test labels,
    #: predictions limited to the training classes. ``unsupervised``: ``fit(train)`` without labels,
    #: ``predict(test)`` may name anything. ``markers``: ``fit(train, label_key)`` then
    #: ``markers(train, label_key, n)`` scored against the dataset's true markers.
    scoring: str = "supervised"
    #: what the task's datasets yield (see :data:`DATA_KINDS`)
    data: str = "cells"
    #: how the callers fit, query and score its models: a lazy reference to a
    #: :class:`cellzoo.tasks.Dispatch`; empty: the built-in one of ``scoring``
    dispatch: str | Any = ""
    #: whether the best control is a ceiling (a positive control: scaled scores stop at 1 and a model
    #: above it is suspicious) or a baseline to beat (``upscale``: bicubic; scores above 1 are kept)
    ceiling: bool = True

    def __post_init__(self) -> None:
        _check_name("task", self.name)
        if self.scoring not in SCORINGS and not self.dispatch:
            raise ValueError(
                f"task {self.name!r}: scoring {self.scoring!r} is not one of {SCORINGS}; a task with another "
                "scoring names its own dispatch"
            )
        if self.data not in DATA_KINDS:
            raise ValueError(f"task {self.name!r}: data {self.data!r} is not one of {DATA_KINDS}")


@dataclass(frozen=True)
class Contribution:
    """A spec together with the plugin that contributed it."""

    spec: Any
    plugin: str
    distribution: str | None = None
    version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
