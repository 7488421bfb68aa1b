"""The contract every zoo model keeps, as pytest tests a plugin's CI runs with one import.

The checks cover every task scoring the harness knows (``supervised`` annotation,
``unsupervised`` discovery, ``markers``, ``generate``), using a model as the benchmark runner does; a check
that means nothing for a task (the single-cell check of a marker ranking) skips. Each check is a
plain function of a :class:`ContractCase`; :func:`contract_suite` turns a list
of models into one test function parametrised over (model, check), so a failure reads as
``test_contract[mymodel-round_trip]``. Fitting is the slow part, so a case's fitted model is
cached and shared by the checks that only read it; the checks that need fresh fits
(determinism, sparse input) make their own.

A model class may set ``contract_test_config = {"epochs": 2}`` (a mapping of config overrides)
to keep these tests fast; ``contract_suite(..., overrides={name: {...}})`` takes precedence.
"""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ..errors import ArtifactError, ConfigError, InputError, NotFittedError
from ..protocols import capability
from .data import log1p_normalised, tiny_annotate_adata, tiny_images, z_scored

LABEL_KEY = "cell_type"
#: genes per class a ``markers`` check asks for
N_MARKERS = 10
_FITTED: OrderedDict[tuple, Any] = OrderedDict()
_FITTED_MAX = 16


@dataclass
class ContractCase:
    """One model under test, with its data and a cached fitted instance.

    The task's ``scoring`` decides how the model is used, as the benchmark runner uses it:
    ``supervised`` models ``fit(adata, label_key)`` and ``predict``; ``unsupervised`` models
    ``fit(adata)`` on cells without labels and ``predict``; ``markers`` models ``fit(adata,
    label_key)`` and rank genes with ``markers(adata, label_key, n)``. :meth:`result` runs the
    model's output step and :meth:`comparable` turns what it returns into arrays to compare.
    """

    model: str
    tmp_path: Path
    overrides: Mapping[str, Any] = field(default_factory=dict)
    n_cells: int = 60
    n_genes: int = 30
    n_classes: int = 3
    seed: int = 0

    @property
    def spec(self):
        from ..registry import model_spec

        return model_spec(self.model)

    @property
    def scoring(self) -> str | None:
        """The task's scoring, or None when no installed plugin defines the model's task."""
        from ..registry import list_tasks, task_spec

        task = self.spec.task
        return task_spec(task).scoring if task in list_tasks() else None

    def expected_failure(self, check: str) -> str | None:
        """Why the model is known to fail ``check`` for its task, if its class declares it.

        A model class may set ``contract_expected_failures = {"markers.learns": "why"}`` (keys
        ``"<task>.<check>"``) for a documented property of a faithful implementation; the check then
        runs as an expected failure, and fails if it starts to pass.
        """
        from ..specs import resolve

        declared = capability(resolve(self.spec.builder), "contract_expected_failures") or {}
        return declared.get(f"{self.spec.task}.{check}")

    def config_overrides(self) -> dict[str, Any]:
        from ..specs import resolve

        declared = capability(resolve(self.spec.builder), "contract_test_config") or {}
        return {**declared, **self.overrides}

    def build(self):
        from ..registry import create_model

        return create_model(self.model, **self.config_overrides())

    def train_data(self, sparse: bool = False):
        if self.scoring == "upscale":  # high-resolution training images
            return tiny_images(4, 32, self.seed)
        if self.scoring == "generate":  # generated cells are compared with cells of the same distribution
            return self._pool(sparse)[: self.n_cells].copy()
        return tiny_annotate_adata(self.n_cells, self.n_genes, self.n_classes, self.seed, sparse=sparse)

    def query_data(self, sparse: bool = False):
        # the same genes and classes, other cells
        if self.scoring == "upscale":  # other images of the same kind
            return tiny_images(2, 32, self.seed + 1)
        if self.scoring == "generate":
            return self._pool(sparse)[self.n_cells :].copy()
        return tiny_annotate_adata(self.n_cells, self.n_genes, self.n_classes, self.seed + 1, sparse=sparse)

    def _pool(self, sparse: bool):
        # another seed draws another background profile, so train and query are two halves of one draw
        return tiny_annotate_adata(2 * self.n_cells, self.n_genes, self.n_classes, self.seed, sparse=sparse)

    def output_data(self, sparse: bool = False):
        """The cells whose output the checks compare: a ranking describes the cells it was fitted
        on (as the benchmark ranks them), a prediction is made for new cells."""
        return self.train_data(sparse) if self.scoring == "markers" else self.query_data(sparse)

    def generated(self, model, adata):
        """Cells sampled like ``adata`` (per type for a model that samples types), seed 0; controls get ``adata``."""
        return self.dispatch.output(model, adata, label_key=LABEL_KEY, solution=adata, seed=0)

    @property
    def dispatch(self):
        """How the callers fit and query models of this task (:mod:`cellzoo.tasks`)."""
        from ..registry import task_spec
        from ..tasks import SUPERVISED, dispatch_of

        return dispatch_of(task_spec(self.spec.task)) if self.scoring is not None else SUPERVISED

    def fit(self, model, adata):
        dispatch = self.dispatch
        if self.scoring == "upscale":  # images carry no labels to drop
            return dispatch.fit(model, adata, None)
        return dispatch.fit(model, adata if dispatch.takes_labels else unlabelled(adata), LABEL_KEY)

    def fresh_fit(self, sparse: bool = False):
        return self.fit(self.build(), self.train_data(sparse=sparse))

    def fitted(self):
        key = (
            self.spec,
            json.dumps(self.config_overrides(), sort_keys=True, default=str),
            self.n_cells,
            self.n_genes,
            self.n_classes,
            self.seed,
        )
        if key not in _FITTED:
            _FITTED[key] = self.fresh_fit()
            while len(_FITTED) > _FITTED_MAX:
                _FITTED.popitem(last=False)
        _FITTED.move_to_end(key)
        return _FITTED[key]

    def result(self, model, adata):
        """The model's output on ``adata``: its prediction, or for ``markers`` its ranking (truth to controls)."""
        solves = capability(model, "requires_solution")
        if self.scoring == "upscale":
            return self.dispatch.output(model, adata, scales=self.scales(model))
        if self.scoring == "generate":
            return self.generated(model, adata)
        if self.scoring == "markers":
            extra = {"solution": adata.uns["cellzoo"]["markers"]} if solves else {}
            return model.markers(adata, LABEL_KEY, n=N_MARKERS, **extra)
        if self.scoring == "unsupervised":
            truth = adata.obs[LABEL_KEY].astype(str).to_numpy()
            cells = unlabelled(adata)
            return model.predict(cells, solution=truth) if solves else model.predict(cells)
        return predict(model, adata)

    @staticmethod
    def scales(model) -> list[int]:
        """The scales an up-scaler is checked at: ×2 and ×4 where it has them, else its first."""
        return [s for s in model.scales if s in (2, 4)] or list(model.scales[:1])

    def assert_valid(self, result, adata) -> None:
        """What :meth:`result` returned has the task's shape, for the cells and classes of ``adata``."""
        if self.scoring == "upscale":
            assert_valid_upscaled(result, adata)
            return
        classes = adata.obs[LABEL_KEY].astype(str).unique()
        if self.scoring == "markers":
            assert_valid_markers(result, classes, adata.var_names, N_MARKERS)
        elif self.scoring == "generate":
            assert_valid_generated(result, adata)
        elif self.scoring == "unsupervised":
            assert_valid_discovery(result, adata.n_obs)
        else:
            assert_valid_annotation(result, adata.n_obs, classes)

    def comparable(self, result) -> dict[str, np.ndarray]:
        """The parts of a result two runs must agree on, as arrays (floats compared with a tolerance)."""
        if self.scoring == "markers":
            return {f"markers[{c}]": np.asarray(genes, dtype=str) for c, genes in result.items()}
        if self.scoring == "upscale":
            return {
                f"x{s}[{i}]": np.asarray(im, dtype=np.float64) for s, ims in result.items() for i, im in enumerate(ims)
            }
        if self.scoring == "generate":
            X = result.X.toarray() if hasattr(result.X, "toarray") else np.asarray(result.X)
            out = {"cells": np.asarray(X, dtype=np.float64), "genes": np.asarray(result.var_names, dtype=str)}
            if "cell_type" in result.obs:
                out["cell_type"] = result.obs["cell_type"].astype(str).to_numpy()
            return out
        # probabilities first: where labels differ they do too, and their difference says more
        out = {}
        if getattr(result, "proba", None) is not None:
            out["proba"] = np.asarray(result.proba, dtype=np.float64)
        out["labels"] = np.asarray(result.labels).astype(str)
        if getattr(result, "clusters", None) is not None:
            out["clusters"] = np.asarray(result.clusters).astype(str)
        return out


def unlabelled(adata):
    """A copy of ``adata`` without the label column: what an unsupervised model is given."""
    out = adata.copy()
    del out.obs[LABEL_KEY]
    return out


def assert_same(case: ContractCase, first, second, what: str, atol: float = 1e-5, rtol: float = 0.0) -> None:
    """Two results of ``case``'s model agree: the same keys, equal labels and genes, close probabilities."""
    a, b = case.comparable(first), case.comparable(second)
    assert set(a) == set(b), f"{what}: the outputs differ in their parts ({sorted(a)} vs {sorted(b)})"
    for key in a:  # in comparable()'s order
        if a[key].dtype.kind == "f":
            np.testing.assert_allclose(b[key], a[key], rtol=rtol, atol=atol, err_msg=f"{what}: {key} differs")
        else:
            np.testing.assert_array_equal(b[key], a[key], err_msg=f"{what}: {key} differs")


def predict(model, adata):
    """``model.predict`` with the true labels passed to controls that require them."""
    if capability(model, "requires_solution"):
        return model.predict(adata, solution=adata.obs[LABEL_KEY].astype(str).to_numpy())
    return model.predict(adata)


def _proba(prediction) -> np.ndarray:
    assert prediction.proba is not None, "predict() must return probabilities (Annotation.proba)"
    return np.asarray(prediction.proba, dtype=np.float64)


def assert_valid_annotation(prediction, n_cells: int, train_classes: Iterable[str] = ()) -> None:
    """Shape and sanity of an :class:`~cellzoo.Annotation` for ``n_cells`` cells."""
    from ..model import Annotation

    assert isinstance(prediction, Annotation), f"predict() must return a cellzoo.Annotation, got {type(prediction)}"
    labels = np.asarray(prediction.labels).astype(str)
    classes = tuple(str(c) for c in prediction.classes)
    assert labels.shape == (n_cells,), f"expected {n_cells} labels, got shape {labels.shape}"
    missing = set(map(str, train_classes)) - set(classes)
    assert not missing, f"classes {sorted(missing)} seen in training are not in Annotation.classes {classes}"
    unknown = set(labels) - set(classes)
    assert not unknown, f"labels {sorted(unknown)} are not among the classes {classes}"
    _assert_valid_proba(_proba(prediction), classes, labels)


def _assert_valid_proba(proba: np.ndarray, classes: tuple[str, ...], labels: np.ndarray) -> None:
    """``proba`` is cells × classes, finite, rows summing to 1, and ``labels`` is its argmax (ties aside)."""
    n_cells = labels.shape[0]
    assert proba.shape == (n_cells, len(classes)), f"proba has shape {proba.shape}, expected {(n_cells, len(classes))}"
    assert np.isfinite(proba).all(), "proba holds NaN or inf"
    assert (proba >= -1e-6).all(), f"proba has negative entries (min {proba.min():.3g})"
    sums = proba.sum(axis=1)
    assert np.allclose(sums, 1.0, atol=1e-4), f"proba rows must sum to 1; sums range {sums.min():.6f}..{sums.max():.6f}"
    argmax = np.asarray(classes, dtype=object)[proba.argmax(axis=1)].astype(str)
    ties = np.sort(proba, axis=1)[:, -2:] if len(classes) > 1 else None
    clear = np.ones(n_cells, bool) if ties is None else (ties[:, 1] - ties[:, 0]) > 1e-6
    assert (labels[clear] == argmax[clear]).all(), "labels disagree with the argmax of proba"


def assert_valid_discovery(result, n_cells: int) -> None:
    """An unsupervised prediction: a label (cluster name) per cell; clusters, names and proba consistent if given."""
    labels = getattr(result, "labels", None)
    assert labels is not None, f"predict() of a discovery model must return an object with .labels, got {type(result)}"
    labels = np.asarray(labels).astype(str)
    assert labels.shape == (n_cells,), f"expected {n_cells} labels, got shape {labels.shape}"
    clusters = getattr(result, "clusters", None)
    if clusters is None:
        return
    clusters = np.asarray(clusters).astype(str)
    assert clusters.shape == (n_cells,), f"expected {n_cells} cluster ids, got shape {clusters.shape}"
    names = getattr(result, "names", None)
    if names is not None:
        unnamed = sorted(set(clusters) - set(map(str, names)))
        assert not unnamed, f"clusters {unnamed} have no entry in .names"
        named = np.asarray([str(names[c]) for c in clusters])
        assert (named == labels).all(), "a cell's label is not the name of its cluster"
    proba = getattr(result, "proba", None)
    if proba is not None:
        classes = tuple(str(c) for c in result.classes)
        _assert_valid_proba(np.asarray(proba, dtype=np.float64), classes, clusters)


def assert_valid_generated(generated, reference) -> None:
    """Generated cells: an AnnData over the reference's genes, finite and non-negative, state declared."""
    import anndata

    assert isinstance(generated, anndata.AnnData), f"sample() must return an AnnData, got {type(generated).__name__}"
    assert 0 < generated.n_obs <= reference.n_obs, f"asked for {reference.n_obs} cells, got {generated.n_obs}"
    assert list(map(str, generated.var_names)) == list(map(str, reference.var_names)), (
        "generated cells must be over the training genes, in their order"
    )
    X = generated.X.toarray() if hasattr(generated.X, "toarray") else np.asarray(generated.X)
    assert np.isfinite(X).all(), "generated cells hold NaN or inf"
    assert (X >= 0).all(), f"generated expression must be non-negative (min {X.min():.3g})"
    meta = generated.uns.get("cellzoo", {})
    assert meta.get("input_state") in ("counts", "nonnegative", "log1p_norm"), (
        "sample() must declare the state of its cells in uns['cellzoo']['input_state']"
    )


def assert_valid_upscaled(result, images) -> None:
    """``{scale: [image, …]}``: one finite image in [0, 1] per input, ``scale`` × the down-sampled size."""
    assert isinstance(result, Mapping) and result, (
        f"upscaling must give {{scale: [images]}}, got {type(result).__name__}"
    )
    for scale, outputs in result.items():
        assert len(outputs) == len(images), f"×{scale}: {len(outputs)} images for {len(images)} inputs"
        for hr, sr in zip(images, outputs):
            want = (hr.shape[0] // scale * scale, hr.shape[1] // scale * scale, *hr.shape[2:])
            sr = np.asarray(sr)
            assert sr.shape == want, f"×{scale}: output shape {sr.shape}, expected {want} (the cropped original's)"
            assert sr.dtype == hr.dtype, f"×{scale}: output dtype {sr.dtype} is not the input's {hr.dtype}"
            assert np.isfinite(sr).all() and sr.min() >= 0.0 and sr.max() <= 1.0, f"×{scale}: pixels outside [0, 1]"


def assert_valid_markers(ranked, classes: Iterable[str], genes: Iterable[str], n: int) -> None:
    """A marker ranking: ``{class: [gene, ...]}`` for every class, at most ``n`` distinct known genes each."""
    assert isinstance(ranked, Mapping), f"markers() must return {{class: [gene, ...]}}, got {type(ranked).__name__}"
    missing = sorted(set(map(str, classes)) - set(map(str, ranked)))
    assert not missing, f"markers() left out the classes {missing}"
    known = set(map(str, genes))
    for cls, listed in ranked.items():
        assert not isinstance(listed, str), f"markers()[{cls!r}] is a string, not a list of genes"
        listed = [str(g) for g in listed]
        assert 0 < len(listed) <= n, f"markers()[{cls!r}] has {len(listed)} genes; asked for {n}"
        assert len(set(listed)) == len(listed), f"markers()[{cls!r}] repeats genes: {listed}"
        stray = sorted(set(listed) - known)
        assert not stray, f"markers()[{cls!r}] names genes the data does not have: {stray[:5]}"


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------


def check_spec(case: ContractCase) -> None:
    """The spec is complete, the model builds from its default config and refuses use unfitted."""
    from ..artifacts import save
    from ..registry import list_tasks, task_spec

    spec = case.spec
    if spec.task not in list_tasks():
        # not a failure: a family may ship models before its task protocol lands, but a typo shows here
        warnings.warn(
            f"model {spec.name!r} has task {spec.task!r}, which no installed plugin defines (tasks: "
            f"{', '.join(list_tasks())})",
            stacklevel=2,
        )
    assert spec.summary, f"model {spec.name!r} has no summary"
    model = case.build()
    assert model.spec == spec, "create_model must return a model whose .spec is its ModelSpec"
    if spec.config is not None:
        assert isinstance(model.config, spec.config), f"model.config is not a {spec.config.__name__}"
    assert not model.is_fitted, "a freshly built model must report is_fitted == False"
    if case.scoring is None:
        return
    needed = dict.fromkeys((*task_spec(spec.task).protocol, "state_tensors", "load_state_tensors"))
    for method in (*needed, "golden_inputs", "infer"):
        assert callable(getattr(model, method, None)), f"a {spec.task} model must implement {method}()"
    with pytest.raises(NotFittedError):
        case.result(model, case.query_data())
    target = case.tmp_path / "unfitted"
    with pytest.raises(NotFittedError):
        save(model, target, overwrite=True)
    assert not target.exists(), "a failed save must leave nothing behind"


def check_fit_predict(case: ContractCase) -> None:
    """Fitted, the model gives an output of the task's shape: labels and probabilities, or markers per class."""
    model = case.fitted()
    assert model.is_fitted, "is_fitted must be True after fit()"
    if case.scoring in ("markers", "unsupervised", "generate", "upscale"):
        data = case.output_data()
        case.assert_valid(case.result(model, data), data)
        return
    query, train = case.query_data(), case.train_data()
    assert_valid_annotation(predict(model, query), query.n_obs, train.obs[LABEL_KEY].astype(str).unique())


def check_learns(case: ContractCase) -> None:
    """A method or baseline clearly beats chance on data with strong marker genes.

    Annotation: accuracy on new cells; discovery: adjusted Rand index of the clusters of the cells
    it was fitted on; markers: precision@k of the ranking against the data's marker genes (k =
    marker genes per class).
    """
    if case.spec.role == "control":
        pytest.skip("controls are not expected to learn")
    model = case.fitted()
    if case.scoring == "upscale":
        from ..controls import Nearest
        from ..imagemetrics import psnr_y

        images = case.query_data()
        ours, floor = case.result(model, images), case.result(Nearest().fit(images), images)
        for scale in ours:
            mine = float(np.mean([psnr_y(hr, sr, crop=scale) for hr, sr in zip(images, ours[scale])]))
            base = float(np.mean([psnr_y(hr, sr, crop=scale) for hr, sr in zip(images, floor[scale])]))
            assert mine > base, (
                f"×{scale}: PSNR-Y {mine:.2f} dB is not above nearest-neighbour's {base:.2f} dB on smooth synthetic "
                "images: the model does not learn — or needs more steps: set contract_test_config on the model class"
            )
        return
    if case.scoring == "generate":
        from ..genmetrics import gene_mean_corr

        query = case.query_data()
        r = gene_mean_corr(query, case.result(model, query))
        assert r >= 0.5, (
            f"the generated cells' gene means correlate {r:.2f} with new real cells' (needed 0.50): the model does "
            "not learn the data — or needs more epochs: set contract_test_config on the model class"
        )
        return
    if case.scoring == "markers":
        from ..metrics import marker_precision_at_k

        train = case.train_data()
        truth = train.uns["cellzoo"]["markers"]
        k = min(len(genes) for genes in truth.values())
        score = marker_precision_at_k(truth, case.result(model, train), k=k)
        chance = k / case.n_genes
        assert score >= 0.6, (
            f"marker precision@{k} {score:.2f} on data with strong marker genes (chance {chance:.2f}, needed 0.60): "
            "the ranking does not find the markers"
        )
        return
    # the discover protocol scores the cells a model was fitted on (split "all"), so does this check
    query = case.train_data() if case.scoring == "unsupervised" else case.query_data()
    truth = query.obs[LABEL_KEY].astype(str).to_numpy()
    if case.scoring == "unsupervised":
        from sklearn.metrics import adjusted_rand_score

        result = case.result(model, query)
        clusters = getattr(result, "clusters", None)
        clusters = np.asarray(result.labels if clusters is None else clusters).astype(str)
        ari = float(adjusted_rand_score(truth, clusters))
        assert ari >= 0.5, (
            f"ARI {ari:.2f} of the clusters on well-separated data (needed 0.50): the model does not learn"
        )
        return
    labels = np.asarray(predict(model, query).labels).astype(str)
    accuracy = float(np.mean(labels == truth))
    needed = max(0.5, 1.5 / case.n_classes)
    assert accuracy >= needed, (
        f"accuracy {accuracy:.2f} on separable synthetic data (chance {1 / case.n_classes:.2f}, needed {needed:.2f}): "
        "the model does not learn — or needs more epochs: set contract_test_config on the model class"
    )


def check_single_cell(case: ContractCase) -> None:
    """A batch of one cell works, and (for real models) gives that cell's row of a larger batch."""
    if case.scoring == "markers":
        pytest.skip("a marker ranking describes classes, not cells")
    model = case.fitted()
    query = case.query_data()
    if case.scoring == "upscale":  # the smallest input: one low-resolution pixel
        for scale in case.scales(model):
            one = model.upscale(query[0][:1, :1], scale)
            assert one.shape == (scale, scale, 3), f"×{scale} of a 1×1 image gave shape {one.shape}"
        return
    if case.scoring == "generate":
        one = model.sample(1, seed=0, **({"solution": query} if capability(model, "requires_solution") else {}))
        assert_valid_generated(one, query[:1])
        return
    one = case.result(model, query[:1].copy())
    if case.scoring == "unsupervised":
        assert_valid_discovery(one, 1)
    else:
        assert_valid_annotation(one, 1)
    if case.spec.role != "control":
        full = case.comparable(case.result(model, query))
        for key, value in case.comparable(one).items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(
                    value, full[key][:1], atol=1e-5, err_msg=f"a cell's {key} depends on the rest of its batch"
                )
            else:
                np.testing.assert_array_equal(value, full[key][:1], err_msg=f"a cell's {key} depends on its batch")


def check_sparse_input(case: ContractCase) -> None:
    """Sparse input fits and predicts like dense input."""
    if case.scoring == "upscale":
        pytest.skip("images are dense")
    model = case.fitted()
    dense = case.result(model, case.output_data())
    assert_same(case, dense, case.result(model, case.output_data(sparse=True)), "sparse and dense input")
    fitted_on_sparse = case.fresh_fit(sparse=True)
    case.assert_valid(case.result(fitted_on_sparse, case.output_data(sparse=True)), case.output_data())


def check_gene_order(case: ContractCase) -> None:
    """Genes are matched by name: a query with its genes in another order gives the same result."""
    if case.scoring in ("generate", "upscale"):
        pytest.skip(f"the {case.scoring} task reads no genes of a query")
    model = case.fitted()
    query = case.output_data()
    reordered = query[:, query.var_names[::-1]].copy()
    assert_same(case, case.result(model, query), case.result(model, reordered), "reordering the genes")


def check_annotate_writes(case: ContractCase) -> None:
    """``annotate`` adds cellzoo_<model>_* keys and leaves the user's columns alone."""
    if case.scoring in ("markers", "generate", "upscale"):
        pytest.skip(f"the {case.scoring} task returns its output; it writes no per-cell keys")
    model = case.fitted()
    if capability(model, "requires_solution"):
        pytest.skip("this control needs the true labels, which annotate() does not take")
    adata = case.query_data()
    if case.scoring == "unsupervised":
        adata = unlabelled(adata)
    adata.obs["my_notes"] = "keep me"
    before = adata.obs.copy()
    out = model.annotate(adata)
    assert out is not None, "annotate() must return the AnnData"
    key = f"cellzoo_{model.name}"
    assert f"{key}_label" in out.obs, f"annotate() must write obs[{key + '_label'!r}]"
    if case.scoring != "unsupervised" or f"{key}_proba" in out.obsm:
        assert f"{key}_proba" in out.obsm, f"annotate() must write obsm[{key + '_proba'!r}]"
        assert out.obsm[f"{key}_proba"].shape[0] == adata.n_obs
    for column in before.columns:
        assert (out.obs[column].astype(str) == before[column].astype(str)).all(), f"annotate() changed obs[{column!r}]"


def check_input_contract(case: ContractCase) -> None:
    """The declared input state is honoured: wrong states are refused, counts are converted."""
    model = case.fitted()
    if case.scoring == "upscale":  # 8-bit in, 8-bit out, the same picture; values outside [0, 1] refused
        image = case.query_data()[0][:16, :16]
        scale = case.scales(model)[0]
        as_uint8 = np.round(image * 255).astype(np.uint8)
        out = model.upscale(as_uint8, scale)
        assert out.dtype == np.uint8 and out.shape == (16 * scale, 16 * scale, 3), (
            f"uint8 in gave {out.dtype} {out.shape}"
        )
        floats = model.upscale(as_uint8.astype(np.float32) / 255, scale)
        assert np.abs(out.astype(np.float64) - np.round(floats * 255)).max() <= 1, "uint8 and float input disagree"
        with pytest.raises(InputError):
            model.upscale(image * 4.0, scale)
        return
    state = (
        model.contract.state if getattr(model, "contract", None) is not None else capability(type(model), "input_state")
    )
    if case.scoring in ("markers", "generate"):
        _check_fit_input_contract(case, state)
        return
    query = case.query_data()
    if state == "any":
        case.assert_valid(case.result(model, z_scored(query)), query)
        return
    with pytest.raises(InputError):
        case.result(model, z_scored(query))
    target_sum = getattr(model.contract, "target_sum", None) or 1e4
    logged = log1p_normalised(query, target_sum)
    if state == "counts":
        with pytest.raises(InputError):
            case.result(model, logged)
    elif state == "log1p_norm":
        assert_same(
            case,
            case.result(model, query),
            case.result(model, logged),
            "a log1p_norm model given counts (converted) and log1p_norm input",
            atol=1e-4,
        )


def _check_fit_input_contract(case: ContractCase, state: str) -> None:
    # a ranking read off the fit (coefficients, test statistics) never looks at the data markers()
    # is given, so what must be checked is the data fit() accepts
    train = case.train_data()
    if state == "any":
        case.assert_valid(case.result(case.fit(case.build(), z_scored(train)), train), train)
        return
    with pytest.raises(InputError):
        case.fit(case.build(), z_scored(train))
    target_sum = getattr(case.fitted().contract, "target_sum", None) or 1e4
    logged = log1p_normalised(train, target_sum)
    if state == "counts":
        with pytest.raises(InputError):
            case.fit(case.build(), logged)
    elif state == "log1p_norm":
        assert_same(
            case,
            case.result(case.fresh_fit(), train),
            case.result(case.fit(case.build(), logged), logged),
            "a log1p_norm model fitted on counts (converted) and on log1p_norm input",
            atol=1e-4,
        )


def check_determinism(case: ContractCase) -> None:
    """Two fresh fits with the same seed give identical outputs.

    Both fits run here, back to back: a model fitted by an earlier check may have trained under
    other thread settings, and float reductions then round differently.
    """
    query = case.output_data()
    first = case.result(case.fresh_fit(), query)
    second = case.result(case.fresh_fit(), query)
    assert_same(case, first, second, "two fits with the same seed", atol=0.0)


def check_strict_state(case: ContractCase) -> None:
    """``load_state_tensors`` refuses missing, unexpected and wrongly shaped tensors."""
    model = case.fitted()
    tensors = {k: np.asarray(v) for k, v in model.state_tensors().items()}
    if not tensors and case.spec.role == "control" and case.scoring == "upscale":
        pytest.skip("an interpolation control learns nothing")
    assert tensors, "a fitted model must have at least one state tensor"

    def fresh():
        other = case.build()
        other.restore_artifact_state(model.artifact_state())
        return other

    fresh().load_state_tensors(tensors)  # the honest set loads
    name = sorted(tensors)[0]
    with pytest.raises(ArtifactError):
        fresh().load_state_tensors({k: v for k, v in tensors.items() if k != name})
    with pytest.raises(ArtifactError):
        fresh().load_state_tensors({**tensors, "not_a_tensor_of_this_model": np.zeros(1, np.float32)})
    shaped = [k for k in sorted(tensors) if tensors[k].ndim >= 1]
    if shaped:
        k = shaped[0]
        wrong = np.concatenate([tensors[k], tensors[k][:1]], axis=0)
        with pytest.raises(ArtifactError):
            fresh().load_state_tensors({**tensors, k: wrong})


def check_round_trip(case: ContractCase) -> None:
    """save → load gives identical outputs and identical ``infer`` outputs."""
    from ..artifacts import load_artifact, save
    from ..sources import load_source as load

    model = case.fitted()
    directory = save(
        model, case.tmp_path / "artifact", recipe={"dataset": "tiny_annotate", "seed": case.seed}, overwrite=True
    )
    query = case.output_data()
    before = case.result(model, query)
    for loaded in (load_artifact(directory), load(f"local-dir:{directory}")):
        assert loaded.spec == model.spec, "the loaded model has another spec"
        assert loaded.is_fitted, "a loaded model must report is_fitted"
        after = case.result(loaded, query)
        assert_same(case, before, after, "the saved and loaded model", atol=1e-7, rtol=1e-6)
        if case.scoring not in ("markers", "generate", "upscale"):
            assert tuple(after.classes) == tuple(before.classes), "classes changed in the round trip"
        inputs = model.golden_inputs()
        expected = model.infer(inputs)
        got = loaded.infer(inputs)
        assert set(got) == set(expected), f"infer() outputs differ: {sorted(got)} vs {sorted(expected)}"
        for key in expected:
            np.testing.assert_allclose(np.asarray(got[key]), np.asarray(expected[key]), rtol=1e-6, atol=1e-7)


def check_verify(case: ContractCase) -> None:
    """The saved artifact reproduces its golden outputs."""
    from ..artifacts import save, verify

    directory = save(case.fitted(), case.tmp_path / "verified", overwrite=True)
    report = verify(directory)
    assert report.passed, report.summary()


def _training_modules(model) -> list[str]:
    """Names of the torch modules reachable from ``model``'s attributes that are in training mode."""
    found = []
    for attr, value in vars(model).items():
        values = value.items() if isinstance(value, Mapping) else [("", value)]
        for key, obj in values:
            modules = getattr(obj, "named_modules", None)
            if not callable(modules) or not hasattr(obj, "training"):
                continue
            where = f"{attr}[{key!r}]" if key else attr
            found += [f"{where}.{name}".rstrip(".") for name, m in modules() if m.training]
    return found


def check_repeatable_output(case: ContractCase) -> None:
    """Two calls on one fitted model give identical outputs and leave its networks in eval mode.

    A network left in training mode keeps its dropout (scANNA's gene masking) and BatchNorm
    statistics live, so a later direct use of it gives other numbers each time. For a model with
    ``explain`` it is called too, and must leave the networks as it found them.
    """
    model = case.fitted()
    query = case.output_data()
    first = case.result(model, query)
    left = _training_modules(model)
    assert not left, f"after fit and one call these modules are in training mode: {', '.join(left[:5])}"
    second = case.result(model, query)
    assert_same(case, first, second, "two calls on one fitted model", atol=0.0)
    explain = getattr(model, "explain", None)
    if callable(explain) and case.scoring == "supervised":
        np.testing.assert_array_equal(explain(query), explain(query), err_msg="two explain calls differ")
        left = _training_modules(model)
        assert not left, f"after explain these modules are in training mode: {', '.join(left[:5])}"


CHECKS: dict[str, Callable[[ContractCase], None]] = {
    "spec": check_spec,
    "fit_predict": check_fit_predict,
    "learns": check_learns,
    "single_cell": check_single_cell,
    "sparse_input": check_sparse_input,
    "gene_order": check_gene_order,
    "annotate_writes": check_annotate_writes,
    "input_contract": check_input_contract,
    "determinism": check_determinism,
    "repeatable_output": check_repeatable_output,
    "strict_state": check_strict_state,
    "round_trip": check_round_trip,
    "verify": check_verify,
}
#: checks that apply to every task (the rest need the task's protocol)
TASK_INDEPENDENT = ("spec",)


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------


def run_check(
    model: str,
    check: str,
    tmp_path: str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    n_cells: int = 60,
    n_genes: int = 30,
    n_classes: int = 3,
    seed: int = 0,
) -> None:
    """Run one named check on one model (skips, via pytest, when it does not apply)."""
    if check not in CHECKS:
        raise ConfigError(f"unknown contract check {check!r}; checks: {', '.join(CHECKS)}")
    case = ContractCase(model, Path(tmp_path), dict(overrides or {}), n_cells, n_genes, n_classes, seed)
    if case.scoring is None and check not in TASK_INDEPENDENT:
        pytest.skip(f"model {model!r} has task {case.spec.task!r}, which no installed plugin defines")
    reason = case.expected_failure(check)
    if reason is None:
        CHECKS[check](case)
        return
    try:
        CHECKS[check](case)
    except AssertionError as exc:
        pytest.xfail(f"{reason} [{exc}]")
    pytest.fail(
        f"model {model!r} declares {case.spec.task}.{check} an expected failure ({reason}), but the check passes: "
        "remove it from contract_expected_failures"
    )


def check_model(model: str, tmp_path: str | Path, **kwargs: Any) -> dict[str, str]:
    """Run every check on ``model`` in order; returns {check: "passed" | "skipped: why" | "expected failure: why"}.

    A failing check raises (AssertionError or the model's exception), naming the check.
    """
    results: dict[str, str] = {}
    for check in CHECKS:
        try:
            run_check(model, check, Path(tmp_path) / check, **kwargs)
        except pytest.skip.Exception as skip:
            results[check] = f"skipped: {skip.msg}"
            continue
        except pytest.xfail.Exception as xfail:
            results[check] = f"expected failure: {xfail.msg}"
            continue
        except (Exception, pytest.fail.Exception) as exc:  # pytest.raises reports a missing error via fail()
            raise AssertionError(f"contract check {check!r} failed for model {model!r}: {exc}") from exc
        results[check] = "passed"
    return results


def _model_names(models: str | Iterable[str] | None) -> list[str]:
    from ..registry import list_models

    if models is None:
        return list_models()
    patterns = [models] if isinstance(models, str) else list(models)
    names: list[str] = []
    for pattern in patterns:
        # an explicit name is kept even if it is not installed, so the test fails instead of vanishing
        found = list_models(pattern) if any(c in pattern for c in "*?[") else [pattern]
        names += [n for n in found if n not in names]
    return names


def contract_suite(
    models: str | Iterable[str] | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    checks: Iterable[str] | None = None,
    n_cells: int = 60,
    n_genes: int = 30,
    n_classes: int = 3,
    seed: int = 0,
) -> Callable[..., None]:
    """A pytest test function parametrised over ``models`` × contract checks.

    ``models``: names or glob patterns (default: every installed model, listed when the test
    module is collected). ``overrides``: per-model config overrides, e.g. ``{"scanna":
    {"epochs": 2}}``. Use it in a test module as::

        from cellzoo.testing import contract_suite

        test_contract = contract_suite(["mymodel"])
    """
    names = _model_names(models)
    selected = list(checks) if checks is not None else list(CHECKS)
    unknown = sorted(set(selected) - set(CHECKS))
    if unknown:
        raise ConfigError(f"unknown contract checks {unknown}; checks: {', '.join(CHECKS)}")
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    stray = sorted(set(overrides) - set(names))
    if stray:
        raise ConfigError(f"overrides name models {stray} that are not in this suite ({', '.join(names) or 'none'})")
    params = [pytest.param(m, c, id=f"{m}-{c}") for m in names for c in selected]

    @pytest.mark.parametrize(("cellzoo_model", "cellzoo_check"), params)
    def test_contract(cellzoo_model: str, cellzoo_check: str, tmp_path: Path) -> None:
        run_check(
            cellzoo_model,
            cellzoo_check,
            tmp_path,
            overrides=overrides.get(cellzoo_model),
            n_cells=n_cells,
            n_genes=n_genes,
            n_classes=n_classes,
            seed=seed,
        )

    return test_contract
