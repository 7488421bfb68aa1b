"""The contract every zoo model keeps, as pytest tests a plugin's CI runs with one import.

Each check is a plain function of a :class:`ContractCase`; :func:`contract_suite` turns a list
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
from .data import log1p_normalised, tiny_annotate_adata, z_scored

LABEL_KEY = "cell_type"
#: tasks whose protocol the suite checks; models of other tasks are skipped (except "spec")
SUPPORTED_TASKS = ("annotate",)
_FITTED: OrderedDict[tuple, Any] = OrderedDict()
_FITTED_MAX = 16


@dataclass
class ContractCase:
    """One model under test, with its data and a cached fitted instance."""

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

    def config_overrides(self) -> dict[str, Any]:
        from ..specs import resolve

        declared = getattr(resolve(self.spec.builder), "contract_test_config", None) or {}
        return {**declared, **self.overrides}

    def build(self):
        from ..registry import create_model

        return create_model(self.model, **self.config_overrides())

    def train_data(self, sparse: bool = False):
        return tiny_annotate_adata(self.n_cells, self.n_genes, self.n_classes, self.seed, sparse=sparse)

    def query_data(self, sparse: bool = False):
        # the same genes and classes, other cells
        return tiny_annotate_adata(self.n_cells, self.n_genes, self.n_classes, self.seed + 1, sparse=sparse)

    def fresh_fit(self, sparse: bool = False):
        return self.build().fit(self.train_data(sparse=sparse), LABEL_KEY)

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


def predict(model, adata):
    """``model.predict`` with the true labels passed to controls that require them."""
    if getattr(model, "requires_solution", False):
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
    proba = _proba(prediction)
    assert proba.shape == (n_cells, len(classes)), f"proba has shape {proba.shape}, expected {(n_cells, len(classes))}"
    assert np.isfinite(proba).all(), "proba holds NaN or inf"
    assert (proba >= -1e-6).all(), f"proba has negative entries (min {proba.min():.3g})"
    sums = proba.sum(axis=1)
    assert np.allclose(sums, 1.0, atol=1e-4), f"proba rows must sum to 1; sums range {sums.min():.6f}..{sums.max():.6f}"
    argmax = np.asarray(classes, dtype=object)[proba.argmax(axis=1)].astype(str)
    ties = np.sort(proba, axis=1)[:, -2:] if len(classes) > 1 else None
    clear = np.ones(n_cells, bool) if ties is None else (ties[:, 1] - ties[:, 0]) > 1e-6
    assert (labels[clear] == argmax[clear]).all(), "labels disagree with the argmax of proba"


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------


def check_spec(case: ContractCase) -> None:
    """The spec is complete, the model builds from its default config and refuses use unfitted."""
    from ..artifacts import save
    from ..registry import list_tasks

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
    if spec.task not in SUPPORTED_TASKS:
        return
    for method in ("fit", "predict", "state_tensors", "load_state_tensors", "golden_inputs", "infer"):
        assert callable(getattr(model, method, None)), f"an annotate model must implement {method}()"
    with pytest.raises(NotFittedError):
        predict(model, case.query_data())
    target = case.tmp_path / "unfitted"
    with pytest.raises(NotFittedError):
        save(model, target, overwrite=True)
    assert not target.exists(), "a failed save must leave nothing behind"


def check_fit_predict(case: ContractCase) -> None:
    """Labels for every cell, among the classes; probabilities of the right shape summing to 1."""
    train = case.train_data()
    model = case.fitted()
    assert model.is_fitted, "is_fitted must be True after fit()"
    query = case.query_data()
    assert_valid_annotation(predict(model, query), query.n_obs, train.obs[LABEL_KEY].astype(str).unique())


def check_learns(case: ContractCase) -> None:
    """A method or baseline beats chance clearly on data with strong marker genes."""
    if case.spec.role == "control":
        pytest.skip("controls are not expected to learn")
    query = case.query_data()
    labels = np.asarray(predict(case.fitted(), query).labels).astype(str)
    accuracy = float(np.mean(labels == query.obs[LABEL_KEY].astype(str).to_numpy()))
    needed = max(0.5, 1.5 / case.n_classes)
    assert accuracy >= needed, (
        f"accuracy {accuracy:.2f} on separable synthetic data (chance {1 / case.n_classes:.2f}, needed {needed:.2f}): "
        "the model does not learn — or needs more epochs: set contract_test_config on the model class"
    )


def check_single_cell(case: ContractCase) -> None:
    """A batch of one cell works, and (for real models) gives that cell's row of a larger batch."""
    model = case.fitted()
    query = case.query_data()
    one = predict(model, query[:1].copy())
    assert_valid_annotation(one, 1)
    if case.spec.role != "control":
        full = _proba(predict(model, query))
        np.testing.assert_allclose(
            _proba(one), full[:1], atol=1e-5, err_msg="a cell's probabilities depend on the rest of its batch"
        )


def check_sparse_input(case: ContractCase) -> None:
    """Sparse input fits and predicts like dense input."""
    model = case.fitted()
    dense = _proba(predict(model, case.query_data()))
    sparse = _proba(predict(model, case.query_data(sparse=True)))
    np.testing.assert_allclose(sparse, dense, atol=1e-5, err_msg="sparse and dense query give different proba")
    fitted_on_sparse = case.fresh_fit(sparse=True)
    query = case.query_data(sparse=True)
    assert_valid_annotation(predict(fitted_on_sparse, query), query.n_obs)


def check_gene_order(case: ContractCase) -> None:
    """Genes are matched by name: a query with its genes in another order gives the same result."""
    model = case.fitted()
    query = case.query_data()
    expected = _proba(predict(model, query))
    reordered = query[:, query.var_names[::-1]].copy()
    np.testing.assert_allclose(
        _proba(predict(model, reordered)), expected, atol=1e-5, err_msg="reordering the query's genes changed proba"
    )


def check_annotate_writes(case: ContractCase) -> None:
    """``annotate`` adds cellzoo_<model>_* keys and leaves the user's columns alone."""
    model = case.fitted()
    if getattr(model, "requires_solution", False):
        pytest.skip("this control needs the true labels, which annotate() does not take")
    adata = case.query_data()
    adata.obs["my_notes"] = "keep me"
    before = adata.obs.copy()
    out = model.annotate(adata)
    assert out is not None, "annotate() must return the AnnData"
    key = f"cellzoo_{model.name}"
    assert f"{key}_label" in out.obs, f"annotate() must write obs[{key + '_label'!r}]"
    assert f"{key}_proba" in out.obsm, f"annotate() must write obsm[{key + '_proba'!r}]"
    assert out.obsm[f"{key}_proba"].shape[0] == adata.n_obs
    for column in before.columns:
        assert (out.obs[column].astype(str) == before[column].astype(str)).all(), f"annotate() changed obs[{column!r}]"


def check_input_contract(case: ContractCase) -> None:
    """The declared input state is honoured: wrong states are refused, counts are converted."""
    model = case.fitted()
    query = case.query_data()
    state = model.contract.state if getattr(model, "contract", None) is not None else type(model).input_state
    if state == "any":
        assert_valid_annotation(predict(model, z_scored(query)), query.n_obs)
        return
    with pytest.raises(InputError):
        predict(model, z_scored(query))
    target_sum = getattr(model.contract, "target_sum", None) or 1e4
    logged = log1p_normalised(query, target_sum)
    if state == "counts":
        with pytest.raises(InputError):
            predict(model, logged)
    elif state == "log1p_norm":
        np.testing.assert_allclose(
            _proba(predict(model, query)),
            _proba(predict(model, logged)),
            atol=1e-4,
            err_msg="a log1p_norm model must give the same result for counts (converted) and log1p_norm input",
        )


def check_determinism(case: ContractCase) -> None:
    """Two fresh fits with the same seed give identical probabilities.

    Both fits run here, back to back: a model fitted by an earlier check may have trained under
    other thread settings, and float reductions then round differently.
    """
    query = case.query_data()
    first = _proba(predict(case.fresh_fit(), query))
    second = _proba(predict(case.fresh_fit(), query))
    np.testing.assert_array_equal(first, second, err_msg="two fits with the same seed differ")


def check_strict_state(case: ContractCase) -> None:
    """``load_state_tensors`` refuses missing, unexpected and wrongly shaped tensors."""
    model = case.fitted()
    tensors = {k: np.asarray(v) for k, v in model.state_tensors().items()}
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
    """save → load gives identical predictions and identical ``infer`` outputs."""
    from .. import load
    from ..artifacts import load_artifact, save

    model = case.fitted()
    directory = save(
        model, case.tmp_path / "artifact", recipe={"dataset": "tiny_annotate", "seed": case.seed}, overwrite=True
    )
    query = case.query_data()
    before = predict(model, query)
    for loaded in (load_artifact(directory), load(f"local-dir:{directory}")):
        assert loaded.spec == model.spec, "the loaded model has another spec"
        assert loaded.is_fitted, "a loaded model must report is_fitted"
        after = predict(loaded, query)
        np.testing.assert_array_equal(np.asarray(after.labels).astype(str), np.asarray(before.labels).astype(str))
        assert tuple(after.classes) == tuple(before.classes), "classes changed in the round trip"
        np.testing.assert_allclose(_proba(after), _proba(before), rtol=1e-6, atol=1e-7)
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
    task = case.spec.task
    if task not in SUPPORTED_TASKS and check not in TASK_INDEPENDENT:
        pytest.skip(f"model {model!r} has task {task!r}; the contract suite checks {check!r} once that protocol lands")
    CHECKS[check](case)


def check_model(model: str, tmp_path: str | Path, **kwargs: Any) -> dict[str, str]:
    """Run every check on ``model`` in order; returns {check: "passed" | "skipped: why"}.

    A failing check raises (AssertionError or the model's exception), naming the check.
    """
    results: dict[str, str] = {}
    for check in CHECKS:
        try:
            run_check(model, check, Path(tmp_path) / check, **kwargs)
        except pytest.skip.Exception as skip:
            results[check] = f"skipped: {skip.msg}"
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
