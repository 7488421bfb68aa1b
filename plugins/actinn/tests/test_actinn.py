"""ACTINN: network, preprocessing, gene filter on training data only, training recipe, persistence."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import scipy.sparse as sp  # noqa: E402

import cellzoo  # noqa: E402
import cellzoo_actinn.plugin  # noqa: E402
from cellzoo.errors import ArtifactError, ConfigError, InputError  # noqa: E402
from cellzoo.testing import log1p_normalised, tiny_annotate_adata, zoo_pm  # noqa: E402, F401
from cellzoo.training import validation_split  # noqa: E402
from cellzoo_actinn.network import ActinnExport, ActinnInference, ActinnNet, parameter_count  # noqa: E402
from cellzoo_actinn.preprocessing import gene_filter, scaled_log2  # noqa: E402

LABEL = "cell_type"
FAST = {"epochs": 20, "min_steps": 0, "batch_size": 16, "lr": 1e-3}


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_actinn.plugin, name="actinn", distribution="cellzoo-actinn")


@pytest.fixture(scope="module")
def data():
    return (
        tiny_annotate_adata(n_cells=120, n_genes=40, n_classes=3, seed=0),
        tiny_annotate_adata(n_cells=60, n_genes=40, n_classes=3, seed=1),
    )


@pytest.fixture(scope="module")
def fitted(data):
    from cellzoo.plugins import ZooPluginManager, use_plugin_manager

    pm = ZooPluginManager(discover=False)
    pm.register(cellzoo_actinn.plugin, name="actinn", distribution="cellzoo-actinn")
    with use_plugin_manager(pm):
        return cellzoo.create_model("actinn", **FAST).fit(data[0], LABEL)


def _truth(adata):
    return adata.obs[LABEL].astype(str).to_numpy()


# -- network ----------------------------------------------------------------------------------------


def test_network_shapes_layers_and_batch_of_one():
    net = ActinnNet(40, 5)
    widths = [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(40, 100), (100, 50), (50, 25), (25, 5)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.modules()) == 3
    assert net(torch.rand(1, 40)).shape == (1, 5)
    assert net(torch.rand(7, 40)).shape == (7, 5)
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            assert torch.all(m.bias == 0.01)


@pytest.mark.parametrize(("g", "c"), [(40, 5), (765, 10), (3, 2)])
def test_parameter_count_formula(g, c):
    assert parameter_count(g, c) == 100 * g + 6425 + 26 * c
    assert parameter_count(g, c) == sum(p.numel() for p in ActinnNet(g, c).parameters())


# -- preprocessing ----------------------------------------------------------------------------------


def test_cells_are_scaled_to_20000_before_log2():
    counts = np.array([[1.0, 3.0, 0.0, 6.0], [0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]])
    logged = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e4)
    features = scaled_log2(logged)
    np.testing.assert_allclose((2.0**features - 1).sum(axis=1), [20000, 0, 20000], rtol=1e-5)
    np.testing.assert_allclose(features[0], np.log2(1 + counts[0] / 10 * 20000), rtol=1e-5)
    # the normalisation constant of the input does not matter, and sparse gives the same matrix
    np.testing.assert_allclose(scaled_log2(np.log1p(counts * 7.0)), features, rtol=1e-5)
    np.testing.assert_allclose(scaled_log2(sp.csr_matrix(logged)).toarray(), features, rtol=1e-6)
    assert sp.issparse(scaled_log2(sp.csr_matrix(logged)))


def test_gene_filter_keeps_the_percentile_band_of_total_and_cv():
    rng = np.random.default_rng(0)
    X = rng.gamma(2.0, 1.0, size=(50, 200)) * rng.uniform(0.5, 2.0, size=200)
    X[:, 0] *= 100  # the most expressed gene
    X[:, 1] = 0  # never expressed
    mask = gene_filter(X, (1.0, 99.0))
    assert not mask[0] and not mask[1]
    total = X.sum(axis=0)
    by_total = (total >= np.percentile(total, 1)) & (total <= np.percentile(total, 99))
    cv = X.std(axis=0)[by_total] / X.mean(axis=0)[by_total]
    by_cv = (cv >= np.percentile(cv, 1)) & (cv <= np.percentile(cv, 99))
    expected = np.zeros(200, bool)
    expected[np.flatnonzero(by_total)[by_cv]] = True
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(gene_filter(sp.csr_matrix(X), (1.0, 99.0)), mask)


def test_gene_filter_uses_the_training_cells_only(data):
    train, _ = data
    test = tiny_annotate_adata(n_cells=60, n_genes=40, n_classes=3, seed=5)
    test.X[:, 7] *= 200  # gene 7 explodes in the test cells only
    model = cellzoo.create_model("actinn", **FAST).fit(train, LABEL)
    X_train = np.log1p(train.X / train.X.sum(1, keepdims=True) * 1e4)
    expected = np.asarray(train.var_names)[gene_filter(scaled_log2(X_train))]
    assert model.kept_genes == tuple(expected)
    # what the reference did (train and test together) would select a different set
    X_test = np.log1p(test.X / test.X.sum(1, keepdims=True) * 1e4)
    joint = gene_filter(scaled_log2(np.vstack([X_train, X_test])))
    assert tuple(np.asarray(train.var_names)[joint]) != model.kept_genes
    # predicting the test cells does not change the filter
    model.predict(test)
    assert model.kept_genes == tuple(expected)


def test_the_inference_graph_applies_the_same_preprocessing(fitted, data):
    x = np.log1p(data[1].X / data[1].X.sum(1, keepdims=True) * 1e4).astype(np.float32)
    module = ActinnInference(fitted.net, fitted._kept_index(), fitted.config.scale_to)
    kept = np.isin(fitted.manifest.genes, fitted.kept_genes)
    np.testing.assert_allclose(
        module.features(torch.from_numpy(x)).numpy(), scaled_log2(x)[:, kept], rtol=1e-4, atol=1e-4
    )


def test_the_export_module_folds_the_gene_filter_into_the_first_layer(fitted, data):
    x = torch.from_numpy(np.log1p(data[1].X / data[1].X.sum(1, keepdims=True) * 1e4).astype(np.float32))
    reference = ActinnInference(fitted.net, fitted._kept_index(), fitted.config.scale_to).eval()
    exported = fitted.export_module()
    assert isinstance(exported, ActinnExport)
    with torch.no_grad():
        np.testing.assert_allclose(exported(x).numpy(), reference(x).numpy(), atol=1e-5)
    dropped = ~np.isin(fitted.manifest.genes, fitted.kept_genes)
    assert np.all(exported.first.weight.detach().numpy()[:, dropped] == 0)


# -- training and prediction -------------------------------------------------------------------------


def test_learns_a_separable_task_well_above_chance(fitted, data):
    _, test = data
    prediction = fitted.predict(test)
    assert np.mean(np.asarray(prediction.labels).astype(str) == _truth(test)) >= 0.85  # chance 1/3
    np.testing.assert_allclose(prediction.proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::cellzoo.data.contract.InputStateWarning")
def test_counts_and_log1p_input_give_the_same_prediction(fitted, data):
    counts = data[1]
    logged = log1p_normalised(counts, target_sum=1e6)  # any target sum: ACTINN rescales per cell
    np.testing.assert_allclose(fitted.predict(logged).proba, fitted.predict(counts).proba, atol=1e-5)


def test_a_batch_of_one_cell_and_an_all_zero_cell(fitted, data):
    one = data[1][:1].copy()
    assert fitted.predict(one).proba.shape == (1, 3)
    zero = one.copy()
    zero.X = np.zeros_like(zero.X)
    zero.uns["cellzoo"] = {"input_state": "counts"}
    assert np.isfinite(fitted.predict(zero).proba).all()


def test_learning_rate_decays_by_095_every_decay_every_batches(data, monkeypatch):
    import cellzoo.training as training

    seen = {}
    original = training.train_classifier

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "train_classifier", spy)
    model = cellzoo.create_model("actinn", epochs=3, batch_size=16, decay_every=2, val_fraction=0.0, min_steps=0)
    model.fit(data[0], LABEL)
    iterations = 3 * int(np.ceil(120 / 16))
    assert seen["scheduler_step"] == "batch"
    assert seen["optimizer"].defaults["weight_decay"] == 5e-3
    assert seen["scheduler"].get_last_lr()[0] == pytest.approx(1e-4 * 0.95 ** (iterations // 2))


def test_defaults_are_the_reference_recipe():
    cfg = cellzoo.create_model("actinn").config
    assert (cfg.hidden, cfg.lr, cfg.weight_decay, cfg.lr_decay, cfg.decay_every) == (
        (100, 50, 25),
        1e-4,
        5e-3,
        0.95,
        1000,
    )
    assert (cfg.epochs, cfg.batch_size, cfg.scale_to, cfg.gene_percentiles) == (50, 128, 20000.0, (1.0, 99.0))
    # our addition: at least 5,000 steps, which leaves large data sets at the reference's 50 epochs
    assert cfg.min_steps == 5000


def test_validation_split_is_stratified():
    y = np.array([0] * 30 + [1] * 10 + [2])
    train, val = validation_split(y, 0.1, seed=3)
    assert np.bincount(y[val], minlength=3).tolist() == [3, 1, 0]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(y)))


# -- persistence ------------------------------------------------------------------------------------


def test_save_and_load_round_trip_keeps_the_gene_filter(fitted, data, tmp_path):
    directory = cellzoo.save(fitted, tmp_path / "actinn")
    loaded = cellzoo.load_artifact(directory)
    assert loaded.kept_genes == fitted.kept_genes
    assert loaded.artifact_config["state"]["kept_genes"] == list(fitted.kept_genes)
    np.testing.assert_array_equal(loaded.predict(data[1]).proba, fitted.predict(data[1]).proba)
    assert cellzoo.verify(directory).passed


def test_a_damaged_gene_filter_is_an_artifact_error(fitted):
    state = fitted.artifact_state()
    for broken in ({k: v for k, v in state.items() if k != "kept_genes"}, {**state, "kept_genes": ["not_a_gene"]}):
        with pytest.raises(ArtifactError, match="kept_genes"):
            cellzoo.create_model("actinn", **FAST).restore_artifact_state(broken)


def test_state_is_strict(fitted):
    tensors = fitted.state_tensors()
    assert set(tensors) == {f"layers.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")}
    assert tensors["layers.0.weight"].shape == (100, len(fitted.kept_genes))
    with pytest.raises(ArtifactError):
        fitted.load_state_tensors({**tensors, "layers.6.bias": np.zeros(7, np.float32)})


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [{"hidden": ()}, {"lr_decay": 0.0}, {"gene_percentiles": (99.0, 1.0)}, {"val_fraction": 1.0}]
)
def test_invalid_configuration_is_refused(bad):
    with pytest.raises(ConfigError):
        cellzoo.create_model("actinn", **bad)


def test_a_filter_that_keeps_nothing_is_an_input_error():
    with pytest.raises(InputError, match="gene"):
        gene_filter(np.zeros((5, 4)))


def test_listing_does_not_import_torch():
    code = (
        "import sys, cellzoo_actinn.plugin as h; specs = h.cellzoo_models(); "
        "assert specs[0].name == 'actinn' and specs[0].role == 'baseline'; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_small_data_trains_at_least_min_steps_on_every_cell(data):
    model = cellzoo.create_model("actinn", epochs=2, batch_size=16, min_steps=40)
    model.fit(data[0], LABEL)  # 120 cells: the 12-cell validation share is below min_val_cells
    assert model.validation_cells == 0 and not model.history.val_loss
    assert model.planned_epochs == model.history.epochs == 5  # 8 steps per epoch
