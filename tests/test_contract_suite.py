"""The model contract suite: it runs over every installed model, and it catches broken models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from cellzoo import Annotation, Annotator, ModelSpec, TaskSpec, check_state_keys, hookimpl
from cellzoo.errors import ConfigError
from cellzoo.testing import (
    CHECKS,
    ContractCase,
    check_model,
    contract_suite,
    run_check,
    tiny_annotate_adata,
)

# Every installed model (built-in controls and every plugin's models) keeps the contract.
test_installed_models = contract_suite()


# -- models with one flaw each: the suite must catch every one of them ---------------------------------


@dataclass(frozen=True)
class MeanConfig:
    seed: int = 0


class NearestMean(Annotator):
    """A correct model: softmax over negative distances to class means of log1p data."""

    input_state = "log1p_norm"

    def __init__(self, config=None):
        super().__init__(config or MeanConfig())
        self.means = None

    def _fit(self, X, y):
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        self.means = np.stack([X[y == k].mean(axis=0) for k in range(len(self.classes))]).astype(np.float32)

    def _predict_proba(self, X):
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        d = ((X[:, None, :] - self.means[None]) ** 2).sum(-1)
        z = np.exp(-(d - d.min(axis=1, keepdims=True)))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)

    def state_tensors(self):
        return {"means": self.means}

    def load_state_tensors(self, tensors):
        check_state_keys({"means": np.zeros((len(self.classes), len(self.manifest.genes)))}, tensors, self.name)
        self.means = np.asarray(tensors["means"], np.float32)


class Unnormalised(NearestMean):
    def _predict_proba(self, X):
        return super()._predict_proba(X) * 2


class Unseeded(NearestMean):
    def _fit(self, X, y):
        super()._fit(X, y)
        self.means = self.means + np.random.default_rng().normal(0, 1e-3, self.means.shape).astype(np.float32)


class Lossy(NearestMean):
    def load_state_tensors(self, tensors):
        super().load_state_tensors(tensors)
        self.means = np.round(self.means)  # loses precision on the way back


class Lax(NearestMean):
    def load_state_tensors(self, tensors):
        self.means = np.asarray(tensors.get("means"), np.float32)


class Positional(NearestMean):
    """Ignores gene names and the input contract: uses adata.X columns as they come."""

    def predict(self, adata, solution=None):
        X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
        with np.errstate(invalid="ignore"):  # z-scored input makes NaN here: the flaw under test
            proba = self._predict_proba(np.log1p(X))
        return Annotation(np.asarray(self.classes, dtype=object)[proba.argmax(1)], self.classes, proba)


class Ignorant(NearestMean):
    def _predict_proba(self, X):
        proba = np.zeros((X.shape[0], len(self.classes)), np.float32)
        proba[:, 0] = 1.0
        return proba


class BatchDependent(NearestMean):
    def _predict_proba(self, X):
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        return super()._predict_proba(X - X.mean(axis=0) + self.means.mean(axis=0))


class Tuned(NearestMean):
    contract_test_config: ClassVar[dict] = {"seed": 7}


FLAWED = {
    "flaw_unnormalised": (Unnormalised, "fit_predict", "rows must sum to 1"),
    "flaw_unseeded": (Unseeded, "determinism", "two fits with the same seed: proba differs"),
    "flaw_lossy": (Lossy, "round_trip", "Not equal to tolerance|Arrays are not equal"),
    "flaw_lax": (Lax, "strict_state", "DID NOT RAISE"),
    "flaw_positional": (Positional, "gene_order", "reordering the genes: proba differs"),
    "flaw_no_contract": (Positional, "input_contract", "DID NOT RAISE"),
    "flaw_ignorant": (Ignorant, "learns", "does not learn"),
    "flaw_batch": (BatchDependent, "single_cell", "proba depends on the rest of its batch"),
}


# -- the markers task: rankers of each class's genes -------------------------------------------------------


class MeanMarkers(NearestMean):
    """A correct ranker: genes by the class mean minus the mean of the other classes (log1p data)."""

    def markers(self, adata, label_key, n=25):
        self._check_fitted()
        genes = np.asarray(self.manifest.genes)
        rest = [np.delete(self.means, k, axis=0).mean(axis=0) for k in range(len(self.classes))]
        order = np.argsort(-(self.means - np.stack(rest)), axis=1, kind="stable")[:, :n]
        return {str(c): [str(g) for g in genes[row]] for c, row in zip(self.classes, order)}


class StrayMarkers(MeanMarkers):
    def markers(self, adata, label_key, n=25):
        return {c: ["not_a_gene", *genes[1:]] for c, genes in super().markers(adata, label_key, n).items()}


class ShortMarkers(MeanMarkers):
    def markers(self, adata, label_key, n=25):
        return dict(list(super().markers(adata, label_key, n).items())[1:])


class RandomMarkers(MeanMarkers):
    def markers(self, adata, label_key, n=25):
        self._check_fitted()
        rng = np.random.default_rng(0)
        return {str(c): list(rng.permutation(np.asarray(self.manifest.genes))[:n]) for c in self.classes}


class KnownWeakMarkers(RandomMarkers):
    contract_expected_failures: ClassVar[dict] = {"markers.learns": "a documented weakness"}


class WronglyDeclaredMarkers(MeanMarkers):
    contract_expected_failures: ClassVar[dict] = {"markers.learns": "thought to be weak"}


MARKER_FLAWS = {
    "flaw_stray_markers": (StrayMarkers, "fit_predict", "names genes the data does not have"),
    "flaw_short_markers": (ShortMarkers, "fit_predict", "left out the classes"),
    "flaw_random_markers": (RandomMarkers, "learns", "does not find the markers"),
    "flaw_wrongly_declared": (WronglyDeclaredMarkers, "learns", "remove it from contract_expected_failures"),
}


# -- an unsupervised task: k-means clusters, named ----------------------------------------------------------


@dataclass
class Clusters:
    clusters: np.ndarray
    labels: np.ndarray
    names: dict
    classes: tuple
    proba: np.ndarray


class MeanClusters(NearestMean):
    """A correct discovery model: k-means on log1p CP10k, then nearest cluster mean; cluster k is named "type k"."""

    def fit(self, adata, label_key=None):
        from sklearn.cluster import KMeans

        assert label_key is None and "cell_type" not in adata.obs, "an unsupervised model was given the labels"
        X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
        X = np.log1p(X / X.sum(axis=1, keepdims=True) * 1e4)
        codes = KMeans(3, n_init=10, random_state=0).fit_predict(X)
        work = adata.copy()
        work.obs["_cluster"] = [f"c{k}" for k in codes]
        return super().fit(work, "_cluster")

    def predict(self, adata, solution=None):
        annotation = super().predict(adata)
        clusters = np.asarray(annotation.labels).astype(str)
        names = self.names()
        return Clusters(clusters, np.array([names[c] for c in clusters]), names, annotation.classes, annotation.proba)

    def names(self):
        return {c: f"type {c[1:]}" for c in self.classes}

    def annotate(self, adata):
        result = self.predict(adata)
        adata.obs[f"cellzoo_{self.name}_label"] = result.labels
        adata.obsm[f"cellzoo_{self.name}_proba"] = result.proba
        return adata


class MisnamedClusters(MeanClusters):
    def predict(self, adata, solution=None):
        result = super().predict(adata)
        result.labels = result.labels[::-1].copy()
        return result


class Flaws:
    @hookimpl
    def cellzoo_models(self):
        specs = [ModelSpec("nearest_mean", "annotate", NearestMean, MeanConfig, summary="correct")]
        specs += [
            ModelSpec(name, "annotate", cls, MeanConfig, summary="flawed") for name, (cls, _, _) in FLAWED.items()
        ]
        specs.append(ModelSpec("tuned", "annotate", Tuned, MeanConfig, summary="declares its test config"))
        specs.append(ModelSpec("sampler", "simulate", NearestMean, MeanConfig, summary="another task"))
        specs.append(ModelSpec("mean_markers", "markers", MeanMarkers, MeanConfig, summary="correct ranker"))
        specs += [ModelSpec(n, "markers", cls, MeanConfig, summary="flawed") for n, (cls, _, _) in MARKER_FLAWS.items()]
        specs.append(ModelSpec("known_weak", "markers", KnownWeakMarkers, MeanConfig, summary="declared weak"))
        specs.append(ModelSpec("mean_clusters", "cluster", MeanClusters, MeanConfig, summary="correct clusters"))
        specs.append(ModelSpec("flaw_misnamed", "cluster", MisnamedClusters, MeanConfig, summary="flawed"))
        return specs

    @hookimpl
    def cellzoo_tasks(self):
        return [TaskSpec("cluster", protocol=("fit", "predict"), metrics=(), split="all", scoring="unsupervised")]


@pytest.fixture
def flaws(zoo_pm):
    zoo_pm.register(Flaws(), name="flaws", distribution="flaws-dist")
    return zoo_pm


def test_a_correct_model_passes_every_check(flaws, tmp_path):
    assert check_model("nearest_mean", tmp_path) == dict.fromkeys(CHECKS, "passed")


@pytest.mark.parametrize("name", list(FLAWED))
def test_each_flaw_is_caught_by_its_check(flaws, tmp_path, name):
    _, check, message = FLAWED[name]
    with pytest.raises((AssertionError, pytest.fail.Exception), match=message):
        run_check(name, check, tmp_path)


def test_a_correct_marker_ranker_passes_every_check_that_applies(flaws, tmp_path):
    results = check_model("mean_markers", tmp_path)
    assert {k for k, v in results.items() if v != "passed"} == {"single_cell", "annotate_writes"}
    assert results["single_cell"] == "skipped: a marker ranking describes classes, not cells"


@pytest.mark.parametrize("name", list(MARKER_FLAWS))
def test_each_marker_flaw_is_caught_by_its_check(flaws, tmp_path, name):
    _, check, message = MARKER_FLAWS[name]
    with pytest.raises((AssertionError, pytest.fail.Exception), match=message):
        run_check(name, check, tmp_path)


def test_a_declared_expected_failure_runs_as_xfail(flaws, tmp_path):
    with pytest.raises(pytest.xfail.Exception, match=r"a documented weakness .*does not find the markers"):
        run_check("known_weak", "learns", tmp_path)
    assert check_model("known_weak", tmp_path)["learns"].startswith("expected failure: a documented weakness")


def test_a_correct_unsupervised_model_passes_every_check(flaws, tmp_path):
    assert check_model("mean_clusters", tmp_path) == dict.fromkeys(CHECKS, "passed")


def test_clusters_whose_labels_are_not_their_names_are_caught(flaws, tmp_path):
    with pytest.raises(AssertionError, match="is not the name of its cluster"):
        run_check("flaw_misnamed", "fit_predict", tmp_path)


def test_check_model_names_the_failing_check(flaws, tmp_path):
    with pytest.raises(AssertionError, match="contract check 'strict_state' failed for model 'flaw_lax'"):
        check_model("flaw_lax", tmp_path)


def test_models_of_other_tasks_are_skipped_with_a_reason(flaws, tmp_path):
    with pytest.warns(UserWarning, match="task 'simulate', which no installed plugin defines"):
        run_check("sampler", "spec", tmp_path)  # the spec check applies to every task
    with pytest.raises(pytest.skip.Exception, match="task 'simulate'"):
        run_check("sampler", "fit_predict", tmp_path)
    with pytest.warns(UserWarning):
        results = check_model("sampler", tmp_path)
    assert results["spec"] == "passed"
    assert all(v.startswith("skipped: model 'sampler' has task 'simulate'") for k, v in results.items() if k != "spec")


def test_controls_skip_only_what_does_not_apply_to_them(zoo_pm, tmp_path):
    results = check_model("true_labels", tmp_path)
    skipped = {k for k, v in results.items() if v != "passed"}
    assert skipped == {"learns", "annotate_writes"}


def test_config_overrides_declared_by_the_model_and_by_the_caller(flaws, tmp_path):
    assert ContractCase("tuned", tmp_path).config_overrides() == {"seed": 7}
    assert ContractCase("tuned", tmp_path, {"seed": 3}).config_overrides() == {"seed": 3}
    assert ContractCase("tuned", tmp_path).fitted().config.seed == 7


# -- contract_suite itself ---------------------------------------------------------------------------------


def _ids(test_function) -> list[str]:
    (mark,) = [m for m in test_function.pytestmark if m.name == "parametrize"]
    return [param.id for param in mark.args[1]]


def test_suite_is_parametrised_over_models_and_checks(flaws):
    ids = _ids(contract_suite(["nearest_mean", "flaw_l*"], checks=["spec", "verify"]))
    assert ids == [
        "nearest_mean-spec",
        "nearest_mean-verify",
        "flaw_lax-spec",
        "flaw_lax-verify",
        "flaw_lossy-spec",
        "flaw_lossy-verify",
    ]
    assert len(_ids(contract_suite("nearest_mean"))) == len(CHECKS)


def test_an_explicit_name_that_is_not_installed_stays_in_the_suite(flaws):
    # so that a plugin whose registration broke fails its tests instead of silently running none
    assert _ids(contract_suite(["not_installed"], checks=["spec"])) == ["not_installed-spec"]


def test_suite_arguments_are_checked(flaws):
    with pytest.raises(ConfigError, match="unknown contract checks \\['speed'\\]"):
        contract_suite(["nearest_mean"], checks=["speed"])
    with pytest.raises(ConfigError, match="overrides name models \\['other'\\]"):
        contract_suite(["nearest_mean"], overrides={"other": {"seed": 1}})
    with pytest.raises(ConfigError, match="unknown contract check 'nope'"):
        run_check("nearest_mean", "nope", ".")


def test_star_import_gives_the_tests_and_fixtures():
    namespace: dict = {}
    exec("from cellzoo.testing import *", namespace)
    assert {"test_zoo_contract", "zoo_pm", "tiny_annotate_adata", "contract_suite"} <= set(namespace)
    assert "majority-round_trip" in _ids(namespace["test_zoo_contract"])


# -- the synthetic data ------------------------------------------------------------------------------------


def test_tiny_annotate_adata_is_counts_with_balanced_classes_and_markers():
    adata = tiny_annotate_adata(n_cells=60, n_genes=30, n_classes=3, seed=0)
    X = np.asarray(adata.X)
    assert adata.shape == (60, 30) and X.dtype == np.float32
    assert (X >= 0).all() and np.array_equal(X, np.round(X)) and (X.sum(axis=1) > 0).all()
    assert adata.obs["cell_type"].value_counts().tolist() == [20, 20, 20]
    assert adata.uns["cellzoo"]["input_state"] == "counts"
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    first = labels == adata.obs["cell_type"].cat.categories[0]
    assert X[first, :5].mean() > 3 * X[~first, :5].mean()  # the first class's marker block
    again = tiny_annotate_adata(n_cells=60, n_genes=30, n_classes=3, seed=0, sparse=True)
    assert sp.issparse(again.X) and np.array_equal(again.X.toarray(), X)
    assert not np.array_equal(np.asarray(tiny_annotate_adata(seed=1).X), X)


def test_tiny_annotate_adata_many_classes_and_bad_arguments():
    adata = tiny_annotate_adata(n_cells=40, n_genes=20, n_classes=10)
    assert adata.obs["cell_type"].nunique() == 10 and "type_9" in set(adata.obs["cell_type"])
    with pytest.raises(ConfigError, match="n_genes >= n_classes"):
        tiny_annotate_adata(n_genes=2, n_classes=3)
