"""How a task fits a model, asks it for its output and scores that output: one place for all callers.

``cellzoo train``, ``cellzoo build`` (a registry recipe), the benchmark harness and the contract
suite all go through :func:`dispatch_of`. A :class:`~cellzoo.TaskSpec` names its dispatch
(``dispatch="package.module:OBJECT"``) or takes the built-in one of its ``scoring``; a new task
family is one TaskSpec and, if its models are used differently, one :class:`Dispatch` subclass
— no edit to the callers.

The built-in scorings:

* ``supervised`` — ``fit(cells, label_key)``; the output is ``predict(cells)``, scored against
  the true labels (controls that ``requires_solution`` are given them);
* ``unsupervised`` — ``fit(cells)`` without labels; the output is ``predict(cells)``, whose names
  need not be training classes;
* ``markers`` — ``fit(cells, label_key)``; the output is ``markers(cells, label_key, n)``, scored
  against the dataset's true markers;
* ``generate`` — ``fit(cells, label_key)`` (the label column when the dataset has one); the
  output is ``sample(n)`` — per cell type for a model that can sample one — scored against held-out
  real cells (controls that ``requires_solution`` are given the other half of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InputError, ProtocolError
from .protocols import capability
from .specs import resolve

#: genes per class a ``markers`` output is asked for (and a run keeps; the largest k any marker metric reads)
MARKERS_PER_CLASS = 50


class Dispatch:
    """How the callers use a model of one task; the defaults are the ``supervised`` scoring's."""

    #: whether ``fit`` takes the label column
    takes_labels: bool = True
    #: whether an output may name classes the training cells did not have
    allows_unseen: bool = False

    def fit(self, model: Any, data: Any, label_key: str | None) -> Any:
        """Train ``model`` on ``data`` (labels from ``label_key`` when the task learns them)."""
        fit = getattr(model, "fit", None)
        if not callable(fit):
            raise ProtocolError(f"model {_name(model)!r} has no fit() method, so it cannot be trained")
        if not self.takes_labels:
            return fit(data)
        if label_key is None:
            columns = ", ".join(map(str, list(getattr(data, "obs", {}).keys())[:20])) or "(none)"
            raise InputError(
                f"model {_name(model)!r} learns from labels but no label column is known for this dataset; "
                f"pass --label-key COLUMN (columns of obs: {columns})"
            )
        return fit(data, label_key)

    def output(self, model: Any, data: Any, *, label_key: str | None = None, solution: Any = None) -> Any:
        """What the task scores: the model's prediction on ``data`` (controls are given ``solution``)."""
        if capability(model, "requires_solution"):
            return model.predict(data, solution=solution)
        return model.predict(data)

    def can_predict(self, model: Any) -> bool:
        """Whether the model gives a per-cell prediction that held-out labels can score."""
        return callable(getattr(model, "predict", None))


class Unsupervised(Dispatch):
    takes_labels = False
    allows_unseen = True


class Markers(Dispatch):
    allows_unseen = True

    def output(self, model: Any, data: Any, *, label_key: str | None = None, solution: Any = None) -> Any:
        extra = {"solution": solution} if capability(model, "requires_solution") else {}
        ranked = model.markers(data, label_key, n=MARKERS_PER_CLASS, **extra)
        if not isinstance(ranked, Mapping):
            raise ProtocolError(
                f"model {_name(model)!r} returned {type(ranked).__name__} from markers(); "
                "it must return {class: [gene, ...]}"
            )
        return ranked

    def can_predict(self, model: Any) -> bool:
        return False


class Generate(Dispatch):
    """``generate``: fit on the training cells (with their types when the dataset has them), then
    sample as many cells as the reference set holds — per cell type, in the reference's
    proportions, when the model can sample a type — to be scored against those real cells. A type
    the model cannot produce (:class:`~cellzoo.errors.SamplingError`) is left out of the generated
    cells and named in ``uns["cellzoo"]["types_not_generated"]``; the metrics see it as missing."""

    allows_unseen = True

    def fit(self, model: Any, data: Any, label_key: str | None) -> Any:
        fit = getattr(model, "fit", None)
        if not callable(fit):
            raise ProtocolError(f"model {_name(model)!r} has no fit() method, so it cannot be trained")
        return fit(data, label_key)

    def output(
        self, model: Any, data: Any, *, label_key: str | None = None, solution: Any = None, seed: int = 0
    ) -> Any:
        import anndata
        import numpy as np

        extra = {"solution": solution} if capability(model, "requires_solution") else {}
        typed = label_key is not None and label_key in data.obs and getattr(model, "classes", None) is not None
        if not (typed and (getattr(model, "conditional", False) or getattr(model, "samples_types", False))):
            return model.sample(data.n_obs, seed=seed, **extra)
        from .errors import SamplingError

        types, counts = np.unique(data.obs[label_key].astype(str).to_numpy(), return_counts=True)
        known = [(i, str(t), int(c)) for i, (t, c) in enumerate(zip(types, counts)) if str(t) in model.classes]
        if not known:
            raise InputError(f"none of the reference cell types is among model {_name(model)!r}'s classes")
        parts, missed = {}, {}
        for i, cell_type, count in known:
            try:
                parts[cell_type] = model.sample(count, cell_type=cell_type, seed=seed + i, **extra)
            except SamplingError as exc:
                # a type the model cannot produce is scored as missing (its reference cells stay), not a lost run
                missed[cell_type] = str(exc)
        parts = {t: p for t, p in parts.items() if p.n_obs}
        if not parts:
            detail = f": {next(iter(missed.values()))}" if missed else ""
            raise InputError(f"model {_name(model)!r} produced no cells for the reference types{detail}")
        out = anndata.concat(parts, index_unique="-")  # cell names: <name>-<type>
        metas = {t: dict(p.uns.get("cellzoo", {})) for t, p in parts.items()}
        meta = dict(next(iter(metas.values())))
        # what differs per type (ACTIVA's acceptance rate, draws) is kept per type
        for key in {k for m in metas.values() for k in m}:
            values = {t: m.get(key) for t, m in metas.items()}
            if len({repr(v) for v in values.values()}) > 1:
                meta[key] = values
        if missed:
            meta["types_not_generated"] = missed
        out.uns["cellzoo"] = meta
        return out

    def can_predict(self, model: Any) -> bool:
        return callable(getattr(model, "sample", None))


class Upscale(Dispatch):
    """``upscale``: fit on the training images (high resolution, no labels), then up-scale the
    MATLAB-bicubic down-sampled test images by each scale, to be scored against the originals."""

    takes_labels = False

    def output(self, model: Any, data: Any, *, label_key: str | None = None, solution: Any = None,
               scales: Any = (2, 4)) -> dict[int, list[Any]]:  # fmt: skip
        from .data.images import as_float_image, downsample

        out = {}
        for scale in scales:
            out[int(scale)] = [model.upscale(downsample(as_float_image(hr)[0], int(scale)), int(scale)) for hr in data]
        return out

    def can_predict(self, model: Any) -> bool:
        return callable(getattr(model, "upscale", None))


SUPERVISED, UNSUPERVISED, MARKERS, GENERATE, UPSCALE = Dispatch(), Unsupervised(), Markers(), Generate(), Upscale()
#: the dispatch of each built-in scoring
BY_SCORING: dict[str, Dispatch] = {
    "supervised": SUPERVISED,
    "unsupervised": UNSUPERVISED,
    "markers": MARKERS,
    "generate": GENERATE,
    "upscale": UPSCALE,
}


def dispatch_of(task: Any) -> Dispatch:
    """The :class:`Dispatch` of a :class:`~cellzoo.TaskSpec`: its own, or its scoring's."""
    if task.dispatch:
        found = resolve(task.dispatch)
        return found() if isinstance(found, type) else found
    return BY_SCORING[task.scoring]


def _name(model: Any) -> str:
    return getattr(model, "name", type(model).__name__)
