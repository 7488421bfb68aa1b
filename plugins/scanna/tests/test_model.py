"""scANNA as an annotator: learning, attention, markers, persistence and configuration."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import anndata  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import cellzoo  # noqa: E402
import cellzoo_scanna.plugin  # noqa: E402
from cellzoo.errors import ArtifactError, ConfigError, InputError, NotFittedError  # noqa: E402
from cellzoo.testing import log1p_normalised, tiny_annotate_adata, zoo_pm  # noqa: E402, F401
from cellzoo.training import steps_per_epoch, training_plan, validation_split  # noqa: E402
from cellzoo_scanna.config import ScannaConfig  # noqa: E402
from cellzoo_scanna.markers import rank_markers  # noqa: E402

LABEL = "cell_type"
FAST = {"epochs": 20, "min_steps": 0, "batch_size": 16, "lr": 1e-3, "masking_fraction": 0.0}


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_scanna.plugin, name="scanna", distribution="cellzoo-scanna")


@pytest.fixture(scope="module")
def data():
    train = log1p_normalised(tiny_annotate_adata(n_cells=90, n_genes=30, n_classes=3, seed=0))
    test = log1p_normalised(tiny_annotate_adata(n_cells=60, n_genes=30, n_classes=3, seed=1))
    return train, test


@pytest.fixture(scope="module")
def fitted(data):
    from cellzoo.plugins import ZooPluginManager, use_plugin_manager

    pm = ZooPluginManager(discover=False)
    pm.register(cellzoo_scanna.plugin, name="scanna", distribution="cellzoo-scanna")
    with use_plugin_manager(pm):
        return cellzoo.create_model("scanna", **FAST).fit(data[0], LABEL)


@pytest.fixture(scope="module")
def planted():
    """Planted-marker data in the regime scANNA is built for (many genes, sparse counts), and a model fitted on it.

    (On a handful of dense genes the softmax attention starts saturated on one gene and scANNA
    generalises poorly; see the README.)
    """
    from cellzoo.plugins import ZooPluginManager, use_plugin_manager

    train, planted_genes = planted_marker_data(seed=0)
    test, _ = planted_marker_data(n_cells=200, seed=1)
    pm = ZooPluginManager(discover=False)
    pm.register(cellzoo_scanna.plugin, name="scanna", distribution="cellzoo-scanna")
    with use_plugin_manager(pm):
        model = cellzoo.create_model("scanna", epochs=20, min_steps=0, batch_size=64, lr=1e-3, val_fraction=0.0).fit(
            train, LABEL
        )
    return train, test, planted_genes, model


def _truth(adata):
    return adata.obs[LABEL].astype(str).to_numpy()


def planted_marker_data(n_cells=400, n_genes=200, n_classes=4, per_class=10, seed=0):
    """Sparse counts where class k expresses genes [k·per_class, (k+1)·per_class) strongly."""
    rng = np.random.default_rng(seed)
    codes = np.arange(n_cells) % n_classes
    rng.shuffle(codes)
    base = 0.2 * rng.gamma(2.0, 0.5, size=n_genes)
    rates = np.tile(base, (n_classes, 1))
    for k in range(n_classes):
        block = slice(k * per_class, (k + 1) * per_class)
        rates[k, block] = 4.0 * base[block] + 1.0
    counts = rng.poisson(rates[codes] * rng.lognormal(0.0, 0.3, n_cells)[:, None]).astype(np.float32)
    counts[counts.sum(axis=1) == 0, -1] = 1.0
    obs = pd.DataFrame({LABEL: [f"type {c}" for c in codes]}, index=[f"c{i}" for i in range(n_cells)])
    adata = anndata.AnnData(counts, obs=obs, var=pd.DataFrame(index=[f"g{j:03d}" for j in range(n_genes)]))
    adata.uns["cellzoo"] = {"input_state": "counts"}
    planted = {f"type {k}": {f"g{j:03d}" for j in range(k * per_class, (k + 1) * per_class)} for k in range(n_classes)}
    return adata, planted


# -- learning and prediction ----------------------------------------------------------------------


def test_learns_a_separable_task_well_above_chance(planted):
    _, test, _, model = planted
    accuracy = np.mean(np.asarray(model.predict(test).labels).astype(str) == _truth(test))
    assert accuracy >= 0.75  # chance is 1/4 (a logistic regression reaches 1.0 here)


def test_probabilities_are_softmax_rows(fitted, data):
    proba = fitted.predict(data[1]).proba
    assert proba.shape == (60, 3)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_a_batch_of_one_cell_and_an_all_zero_cell(fitted, data):
    one = data[1][:1].copy()
    assert fitted.predict(one).proba.shape == (1, 3)
    zero = one.copy()
    zero.X = np.zeros_like(zero.X)
    proba = fitted.predict(zero).proba
    assert np.isfinite(proba).all() and proba.sum() == pytest.approx(1.0, abs=1e-5)


def test_sparse_query_gives_the_dense_result(fitted, data):
    test = data[1]
    sparse = test.copy()
    sparse.X = sp.csr_matrix(sparse.X)
    np.testing.assert_allclose(fitted.predict(sparse).proba, fitted.predict(test).proba, atol=1e-6)


def test_unfitted_model_refuses_to_predict(data):
    with pytest.raises(NotFittedError):
        cellzoo.create_model("scanna").predict(data[1])


# -- attention --------------------------------------------------------------------------------------


def test_explain_returns_attention_rows_that_sum_to_one(fitted, data):
    attention = fitted.explain(data[1])
    assert attention.shape == (60, 30)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-5)
    x = np.asarray(data[1].X, dtype=np.float32)
    np.testing.assert_allclose(fitted.infer({"x": x})["attention"], attention, atol=1e-6)


def test_annotate_writes_labels_probabilities_and_attention(fitted, data):
    adata = data[1].copy()
    adata.obs["mine"] = "untouched"
    fitted.annotate(adata)
    assert "cellzoo_scanna_attention" not in adata.obsm  # opt-in: it is as large as X, and dense
    fitted.annotate(adata, attention=True)
    assert list(adata.obs["mine"].unique()) == ["untouched"]
    assert adata.obs["cellzoo_scanna_label"].shape == (60,)
    assert adata.obsm["cellzoo_scanna_proba"].shape == (60, 3)
    assert adata.obsm["cellzoo_scanna_attention"].shape == (60, 30)
    assert list(adata.uns["cellzoo_scanna_attention_genes"]) == list(fitted.manifest.genes)
    np.testing.assert_allclose(adata.obsm["cellzoo_scanna_attention"], fitted.explain(data[1]), atol=1e-7)


def test_infer_is_the_network_on_the_model_input(fitted):
    inputs = fitted.golden_inputs(n=5)
    out = fitted.infer(inputs)
    assert set(out) == {"proba", "attention"}
    logits, alpha, _ = fitted.net(torch.from_numpy(inputs["x"]))
    np.testing.assert_allclose(out["proba"], torch.softmax(logits, 1).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(out["attention"], alpha.detach().numpy(), atol=1e-7)


# -- markers ----------------------------------------------------------------------------------------


def test_attention_markers_are_enriched_for_planted_markers(planted):
    adata, _, planted_genes, model = planted
    n = 10
    markers = model.markers(adata, LABEL, n=n)
    all_planted = set().union(*planted_genes.values())
    own = np.mean([len(set(markers[c]) & planted_genes[c]) / n for c in planted_genes])
    any_class = np.mean([len(set(markers[c]) & all_planted) / n for c in planted_genes])
    # chance: 10/200 = 0.05 for a class's own markers, 40/200 = 0.2 for any planted marker. Attention
    # also lands on other classes' markers (their absence is evidence too), hence the second measure.
    assert own >= 0.3, markers
    assert any_class >= 0.5, markers
    top = model.global_markers(adata, n=40)
    assert len(set(top) & all_planted) / 40 >= 0.45


def test_markers_sum_attention_over_correctly_predicted_cells(fitted, data):
    test = data[1]
    markers = fitted.markers(test, LABEL, n=5)
    stored = test.uns["cellzoo_scanna_markers"]["attention"]
    predicted = np.asarray(fitted.predict(test).labels).astype(str)
    truth = _truth(test)
    correct = {g: int(np.sum((truth == g) & (predicted == g))) for g in stored["groups"]}
    assert dict(zip(stored["groups"], stored["n_cells"].tolist())) == correct
    # the stored ranking is the attention mass of exactly those cells
    attention = fitted.explain(test)
    for group, genes in markers.items():
        mass = attention[(truth == group) & (predicted == group)].sum(axis=0, dtype=np.float64)
        assert genes == [fitted.manifest.genes[i] for i in np.argsort(-mass, kind="stable")[:5]]


def test_tfidf_markers_are_the_tfidf_ranking_of_the_same_mass(fitted, data):
    test = data[1]
    raw = fitted.markers(test, LABEL, n=5, method="attention", correct_only=False)
    tfidf = fitted.markers(test, LABEL, n=5, method="tfidf", correct_only=False)
    attention = fitted.explain(test)
    truth = _truth(test)
    groups = sorted(raw)
    mass = np.stack([attention[truth == g].sum(axis=0, dtype=np.float64) for g in groups])
    idx, _ = rank_markers(mass, n=5, method="tfidf")
    assert tfidf == {g: [fitted.manifest.genes[i] for i in row] for g, row in zip(groups, idx)}
    shared = set.intersection(*(set(v) for v in raw.values()))
    if shared:  # a gene on every raw list is exactly what tf-idf must push down
        assert not shared & set.intersection(*(set(v) for v in tfidf.values()))
    stored = test.uns["cellzoo_scanna_markers"]
    assert set(stored) == {"attention", "tfidf"}


def test_the_tfidf_ranker_is_scanna_ranking_by_tfidf_by_default(fitted, data):
    from cellzoo.plugins import ZooPluginManager, use_plugin_manager

    pm = ZooPluginManager(discover=False)
    pm.register(cellzoo_scanna.plugin, name="scanna", distribution="cellzoo-scanna")
    with use_plugin_manager(pm):
        assert set(cellzoo.list_models(task="markers")) >= {"scanna_attention", "scanna_tfidf"}
        ranker = cellzoo.create_model("scanna_tfidf", **FAST)
    ranker.restore_artifact_state(fitted.artifact_state())
    ranker.load_state_tensors(fitted.state_tensors())
    test = data[1]
    assert ranker.markers(test, LABEL, n=5) == fitted.markers(test, LABEL, n=5, method="tfidf")
    assert fitted.markers(test, LABEL, n=5) == fitted.markers(test, LABEL, n=5, method="attention")


def test_a_class_the_model_never_saw(fitted, data):
    test = data[1].copy()
    labels = _truth(test).astype(object)
    labels[:7] = "Platelet"
    test.obs[LABEL] = labels
    assert "Platelet" not in fitted.markers(test, LABEL, n=3)
    assert len(fitted.markers(test, LABEL, n=3, correct_only=False)["Platelet"]) == 3


def test_global_markers_and_storage_survive_an_h5ad_round_trip(fitted, data, tmp_path):
    test = data[1].copy()
    top = fitted.global_markers(test, n=6)
    attention = fitted.explain(test).sum(axis=0, dtype=np.float64)
    assert top == [fitted.manifest.genes[i] for i in np.argsort(-attention, kind="stable")[:6]]
    fitted.markers(test, LABEL, n=4)  # class names with '+' and spaces must be storable
    test.write_h5ad(tmp_path / "out.h5ad")
    back = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert list(back.uns["cellzoo_scanna_markers"]["global"]["genes"]) == top


def test_marker_arguments_are_checked(fitted, data):
    with pytest.raises(ConfigError):
        fitted.markers(data[1], LABEL, method="wilcoxon")
    with pytest.raises(InputError, match="not a column"):
        fitted.markers(data[1], "no_such_column")


# -- persistence ------------------------------------------------------------------------------------


def test_save_and_load_round_trip(fitted, data, tmp_path):
    directory = cellzoo.save(fitted, tmp_path / "scanna")
    loaded = cellzoo.load_artifact(directory)
    np.testing.assert_array_equal(loaded.predict(data[1]).proba, fitted.predict(data[1]).proba)
    np.testing.assert_array_equal(loaded.explain(data[1]), fitted.explain(data[1]))
    assert loaded.config == fitted.config
    assert all(v.dtype == np.float32 for v in loaded.state_tensors().values())
    assert cellzoo.verify(directory).passed


def test_state_tensors_are_the_module_state_dict(fitted):
    tensors = fitted.state_tensors()
    assert set(tensors) == set(fitted.net.state_dict())
    assert tensors["attention.scores.weight"].shape == (30, 30)
    assert tensors["feed_forward.expand.weight"].shape == (128, 30)
    broken = {k: v for k, v in tensors.items() if k != "classifier.bias"}
    with pytest.raises(ArtifactError, match=r"classifier\.bias"):
        fitted.load_state_tensors(broken)


# -- configuration ----------------------------------------------------------------------------------


def test_counts_input_state_is_taken_from_the_config(data):
    counts = tiny_annotate_adata(n_cells=60, n_genes=30, n_classes=3, seed=0)
    model = cellzoo.create_model("scanna", input_state="counts", **FAST).fit(counts, LABEL)
    assert model.input_state == "counts" and model.contract.state == "counts"
    with pytest.raises(InputError):
        model.predict(data[1])  # log1p data cannot be turned back into counts
    assert cellzoo.create_model("scanna").input_state == "log1p_norm"


def test_defaults_are_the_reference_recipe_plus_the_tuned_additions():
    cfg = cellzoo.create_model("scanna").config
    assert (cfg.seed, cfg.lr, cfg.betas, cfg.eps, cfg.weight_decay) == (12345, 1e-4, (0.9, 0.999), 1e-8, 0.0)
    assert (cfg.epochs, cfg.batch_size, cfg.ffn_width) == (50, 128, 128)
    # ours, tuned on pbmc68k_reduced (README): enough steps for small data, input masking as a regulariser
    assert (cfg.min_steps, cfg.masking_fraction, cfg.input_state) == (2000, 0.5, "log1p_norm")


@pytest.mark.parametrize(
    "bad",
    [{"input_state": "zscore"}, {"epochs": 0}, {"masking_fraction": 1.0}, {"val_fraction": -0.1}, {"betas": (0.9,)}],
)
def test_invalid_configuration_is_refused(bad):
    with pytest.raises(ConfigError):
        cellzoo.create_model("scanna", **bad)


def test_validation_split_is_stratified_and_keeps_singletons_in_training():
    y = np.array([0] * 50 + [1] * 20 + [2])
    train, val = validation_split(y, 0.2, seed=0)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    assert np.bincount(y[val], minlength=3).tolist() == [10, 4, 0]
    assert np.array_equal(validation_split(y, 0.2, seed=0)[1], val)


def test_listing_does_not_import_torch():
    code = (
        "import sys, cellzoo_scanna.plugin as h; specs = h.cellzoo_models(); "
        "assert specs[0].name == 'scanna' and specs[0].exportable; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_training_plan_raises_epochs_to_min_steps_and_skips_a_small_validation_set():
    y = np.repeat(np.arange(4), 100)
    cfg = ScannaConfig(epochs=5, batch_size=128, min_steps=100, val_fraction=0.1, min_val_cells=30)
    train, val, epochs = training_plan(y, cfg)
    assert len(val) == 40 and len(train) == 360
    assert epochs == 34  # 3 steps per epoch: ceil(100 / 3)
    small = ScannaConfig(epochs=5, min_steps=0, val_fraction=0.1, min_val_cells=41)
    train, val, epochs = training_plan(y, small)
    assert len(val) == 0 and len(train) == 400 and epochs == 5
    assert steps_per_epoch(129, 128) == 1 and steps_per_epoch(130, 128) == 2 and steps_per_epoch(1, 128) == 1


def test_early_stopping_watches_the_validation_cells_when_there_are_enough(data):
    model = cellzoo.create_model(
        "scanna",
        epochs=30,
        patience=2,
        min_val_cells=5,
        monitor="accuracy",
        **{k: v for k, v in FAST.items() if k != "epochs"},
    )
    model.fit(data[0], LABEL)
    assert model.validation_cells == 9 and len(model.history.val_accuracy) == model.history.epochs
    assert model.history.best_epoch == int(np.argmax(model.history.val_accuracy))
    assert model.artifact_state()["training"]["validation_cells"] == 9


def test_state_names_list_the_saved_tensors_without_copying_them(fitted):
    assert fitted.state_names() == list(fitted.state_tensors())
