"""ACTIVA as a generator: schedule, introspective updates, guided sampling, persistence, learning."""

from __future__ import annotations

import copy
import re
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import scipy.sparse as sp  # noqa: E402

import cellzoo  # noqa: E402
import cellzoo_activa.plugin  # noqa: E402
from cellzoo.errors import ConfigError, TrainingError, UnknownNameError  # noqa: E402
from cellzoo.plugins import ZooPluginManager, use_plugin_manager  # noqa: E402
from cellzoo.testing import tiny_annotate_adata, zoo_pm  # noqa: E402, F401
from cellzoo.training import seed_everything  # noqa: E402
from cellzoo_activa.config import ActivaConfig  # noqa: E402
from cellzoo_activa.errors import SamplingBoundError  # noqa: E402
from cellzoo_activa.model import Activa  # noqa: E402
from cellzoo_activa.network import library_normalise  # noqa: E402

LABEL = "cell_type"
#: small widths so that the tests train in seconds on two shared cores
SMALL = {
    "encoder_hidden": (64, 32, 16), "decoder_hidden": (16, 32, 64), "latent_dim": 8, "cf_hidden": (32, 16),
    "batch_size": 50, "lr": 1e-3, "cf_lr": 1e-3, "device": "cpu", "num_cf": 3, "num_vae": 5, "epochs": 8,
    "target_sum": 50.0,
}  # fmt: skip


def _pm() -> ZooPluginManager:
    pm = ZooPluginManager(discover=False)
    pm.register(cellzoo_activa.plugin, name="activa", distribution="cellzoo-activa")
    return pm


def _model(**kw) -> Activa:
    with use_plugin_manager(_pm()):
        return cellzoo.create_model("activa", **{**SMALL, **kw})


def _state(model: Activa, part: str) -> dict[str, np.ndarray]:
    return {k: v.detach().clone().numpy() for k, v in model.nets[part].state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def data():
    return tiny_annotate_adata(n_cells=200, n_genes=50, n_classes=3, seed=0)


@pytest.fixture(scope="module")
def fitted(data):
    return _model().fit(data, LABEL)


# -- building and configuration -----------------------------------------------------------------


def test_spec_and_defaults(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_activa.plugin, name="activa", distribution="cellzoo-activa")
    spec = cellzoo.model_spec("activa")
    assert spec.task == "generate" and spec.exportable
    cfg = cellzoo.create_model("activa").config
    assert (cfg.latent_dim, cfg.batch_size, cfg.lr, cfg.epochs) == (128, 128, 2e-4, 500)
    assert (cfg.m_plus, cfg.w_neg, cfg.alpha_1, cfg.alpha_2, cfg.num_cf, cfg.num_vae) == (110.0, 0.5, 1.0, 0.05, 5, 10)
    assert (cfg.cf_lr, cfg.cf_weight_decay, cfg.cf_lr_decay, cfg.cf_decay_every) == (1e-4, 5e-3, 0.95, 1000)
    assert not cfg.faithful_detach and not cfg.faithful_reductions and cfg.loss_weighting is None
    model = cellzoo.create_model("activa")
    assert model.output_state == "nonnegative" and model.output_target_sum == 20000.0 and not model.conditional


@pytest.mark.parametrize(
    "bad", [{"num_cf": 1}, {"num_vae": 2, "num_cf": 3}, {"val_fraction": 0.1}, {"m_plus": -1.0}, {"encoder_hidden": ()}]
)
def test_bad_config_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        ActivaConfig(**bad)


def test_fit_needs_labels(data):
    with pytest.raises(ConfigError, match="label"):
        _model().fit(data)


# -- the schedule -------------------------------------------------------------------------------


def test_schedule_phases_and_frozen_classifier(data):
    model = _model(epochs=7, num_cf=3, num_vae=5, checkpoint_every=1)
    snapshots: dict[int, dict[str, dict]] = {}
    model.quality_trace = lambda epoch, seconds, m: snapshots.__setitem__(
        epoch, {p: _state(m, p) for p in ("encoder", "decoder", "classifier")}
    )
    model.fit(data, LABEL)
    assert [model.phase_of(e) for e in range(1, 8)] == ["classifier"] * 2 + ["vae"] * 2 + ["introspective"] * 3
    assert [h["phase"] for h in model.training_record["history"]] == [model.phase_of(e) for e in range(1, 8)]
    assert model.training_record["phases"] == {"classifier": 2, "vae": 2, "introspective": 3}
    # the initial weights, rebuilt from the seed
    seed_everything(model.config.seed)
    init = model.build_nets(50, 3)
    init = {p: {k: v.detach().numpy() for k, v in init[p].state_dict().items()} for p in ("encoder", "decoder")}
    # phase 1: only the classifier moves
    assert not _same(snapshots[1]["classifier"], snapshots[2]["classifier"])
    for part in ("encoder", "decoder"):
        assert _same(snapshots[2][part], init[part])
    # afterwards the classifier is frozen while encoder and decoder train
    for epoch in range(3, 8):
        assert _same(snapshots[epoch]["classifier"], snapshots[2]["classifier"])
        for part in ("encoder", "decoder"):
            assert not _same(snapshots[epoch][part], snapshots[epoch - 1][part])
    assert not any(p.requires_grad for p in model.nets["classifier"].parameters())


def test_training_record(fitted):
    record = fitted.training_record
    assert record["epochs_run"] == 8 and len(record["history"]) == 8
    assert all(h["seconds"] >= 0 for h in record["history"]) and record["seconds"] > 0
    last = record["history"][-1]
    for key in ("rec", "ct", "kl", "margin", "loss_e", "loss_g", "alpha_1", "alpha_2"):
        assert np.isfinite(last[key])
    assert (last["alpha_1"], last["alpha_2"]) == (1.0, 0.05)
    assert "classifier_ce" in record["history"][0]


# -- the introspective generator step -----------------------------------------------------------


def _fresh_nets(**kw) -> tuple[Activa, torch.Tensor]:
    model = _model(**kw)
    seed_everything(0)
    model.nets = model.build_nets(50, 3)
    model.nets["classifier"].eval().requires_grad_(False)
    x = torch.from_numpy(library_normalise(tiny_annotate_adata(n_cells=32, n_genes=50, seed=3).X, 50.0))
    return model, x


@pytest.mark.parametrize("faithful", [True, False])
def test_faithful_detach_cuts_the_decoder_gradient_of_the_generator_loss(faithful):
    model, x = _fresh_nets(faithful_detach=faithful)
    enc, dec = model.nets["encoder"].train(), model.nets["decoder"].train()
    mu, _ = enc(x)
    x_rec = dec(mu)
    x_fake = dec(torch.randn(32, model.config.latent_dim))
    loss_g, _ = model.generator_loss(x_rec, x_fake)
    grads = torch.autograd.grad(loss_g, list(dec.parameters()), allow_unused=True)
    norm = sum(float(g.abs().sum()) for g in grads if g is not None)
    if faithful:
        assert norm == 0.0  # detached re-encodings: L_G does not reach the decoder
    else:
        assert norm > 0.0  # IntroVAE: the decoder gets the adversarial gradient


def test_faithful_detach_changes_only_the_decoder_update():
    after = {}
    for faithful in (True, False):
        model, x = _fresh_nets(faithful_detach=faithful)
        cfg = model.config
        nets = model.nets
        optimisers = {
            "encoder": torch.optim.Adam(nets["encoder"].parameters(), lr=cfg.lr),
            "decoder": torch.optim.Adam(nets["decoder"].parameters(), lr=cfg.lr),
        }
        torch.manual_seed(1)
        values = model.introspective_step(x, optimisers)
        assert all(np.isfinite(v) for v in values.values())
        after[faithful] = {p: _state(model, p) for p in ("encoder", "decoder")}
    encoder_t = {k: v for k, v in after[True]["encoder"].items() if "running" not in k and "num_batches" not in k}
    encoder_f = {k: v for k, v in after[False]["encoder"].items() if "running" not in k and "num_batches" not in k}
    assert _same(encoder_t, encoder_f)  # the encoder update is the same in both modes
    assert not _same(after[True]["decoder"], after[False]["decoder"])


# -- sampling ---------------------------------------------------------------------------------------


def test_unconditional_sample(fitted):
    out = fitted.sample(40, seed=0)
    assert out.shape == (40, 50) and (out.X >= 0).all()
    assert out.uns["cellzoo"]["input_state"] == "nonnegative" and out.uns["cellzoo"]["target_sum"] == 50.0
    assert "acceptance_rate" not in out.uns["cellzoo"] and fitted.last_acceptance_rate is None


def test_conditional_sample_returns_the_asked_type(fitted):
    cell_type = fitted.classes[1]
    out = fitted.sample(25, cell_type=cell_type, seed=0)
    assert out.shape == (25, 50) and set(out.obs["cell_type"]) == {cell_type}
    rate = fitted.last_acceptance_rate
    assert 0.0 < rate <= 1.0 and out.uns["cellzoo"]["acceptance_rate"] == pytest.approx(rate)
    assert out.uns["cellzoo"]["draws"] == fitted.last_draws
    # every returned cell is classified as the asked type by the frozen conditioner
    assert (fitted.classify(np.asarray(out.X)) == 1).all()


def test_sample_errors(fitted):
    with pytest.raises(UnknownNameError, match="no such type"):
        fitted.sample(5, cell_type="no such type")
    for n in (0, -3):
        with pytest.raises(ConfigError, match="positive integer"):
            fitted.sample(n)
    # a type the conditioner never predicts cannot be found within the bound
    blocked = copy.deepcopy(fitted)
    with torch.no_grad():
        blocked.nets["classifier"].layers[-1].bias[2] = -1e9
    with pytest.raises(SamplingBoundError, match=re.escape(repr(fitted.classes[2]))) as info:
        blocked.sample(5, cell_type=fitted.classes[2], seed=0)
    assert isinstance(info.value, ConfigError) and info.value.draws == 5 * blocked.config.max_draws_factor
    assert blocked.last_acceptance_rate == 0.0


def test_bound_counts_draws(fitted):
    tight = copy.deepcopy(fitted)
    tight.config = ActivaConfig(**{**SMALL, "max_draws_factor": 1, "draw_batch": 7})
    rate = None
    try:
        tight.sample(30, cell_type=fitted.classes[0], seed=0)
        rate = tight.last_acceptance_rate
    except SamplingBoundError as exc:
        assert exc.draws == 30 and exc.found < 30
    assert rate in (None, 1.0)


# -- reproducibility and persistence ------------------------------------------------------------------


def test_seeded_reproducibility(data, fitted):
    again = _model().fit(data, LABEL)
    for key, value in fitted.state_tensors().items():
        np.testing.assert_array_equal(value, again.state_tensors()[key])
    np.testing.assert_array_equal(fitted.sample(20, seed=5).X, again.sample(20, seed=5).X)
    assert not np.array_equal(fitted.sample(20, seed=5).X, fitted.sample(20, seed=6).X)


def test_quality_trace_sees_a_sampleable_model_and_does_not_change_training(data, fitted):
    model = _model(checkpoint_every=4)
    calls = []

    def trace(epoch, seconds, m):
        calls.append((epoch, seconds, m.sample(10, seed=epoch).X.mean()))
        torch.rand(100)  # random draws in the callback must not disturb training
        np.random.rand(10)

    model.quality_trace = trace
    model.fit(data, LABEL)
    assert [c[0] for c in calls] == [4, 8] and calls[0][1] <= calls[1][1]
    for key, value in fitted.state_tensors().items():
        np.testing.assert_array_equal(value, model.state_tensors()[key])


def test_sparse_input_trains_like_dense(data, fitted):
    sparse = data.copy()
    sparse.X = sp.csr_matrix(sparse.X)
    model = _model().fit(sparse, LABEL)
    np.testing.assert_allclose(model.sample(10, seed=1).X, fitted.sample(10, seed=1).X, rtol=1e-4, atol=1e-4)


def test_save_load_round_trip(fitted, tmp_path):
    with use_plugin_manager(_pm()):
        cellzoo.save(fitted, tmp_path / "activa")
        loaded = cellzoo.load(f"local-dir:{tmp_path / 'activa'}")
        assert loaded.classes == fitted.classes
        np.testing.assert_array_equal(loaded.sample(15, seed=3).X, fitted.sample(15, seed=3).X)
        cell_type = fitted.classes[0]
        a = loaded.sample(6, cell_type=cell_type, seed=4)
        b = fitted.sample(6, cell_type=cell_type, seed=4)
        np.testing.assert_array_equal(a.X, b.X)
        assert a.uns["cellzoo"]["acceptance_rate"] == b.uns["cellzoo"]["acceptance_rate"]
        assert loaded.training_record["epochs_run"] == 8


# -- failure and weighting ------------------------------------------------------------------------


def test_nan_loss_is_a_training_error(data, monkeypatch):
    import cellzoo_activa.model as activa_model

    monkeypatch.setattr(activa_model, "reconstruction_loss", lambda a, b: torch.tensor(float("nan")) + a.sum() * 0)
    model = _model()
    with pytest.raises(TrainingError, match="epoch 3") as info:
        model.fit(data, LABEL)
    # the last good weights (after the classifier epochs 1–2) are kept and the model still samples
    assert info.value.kept == "epoch 2" and "are kept" in str(info.value)
    assert model.is_fitted
    assert all(np.isfinite(v).all() for v in model.state_tensors().values())
    assert np.isfinite(model.sample(5, seed=0).X).all()


class _Halves:
    """A fake loss weighting: always (0.5, 0.5)."""

    def __init__(self, config=None):
        self.config = types.SimpleNamespace(window=2)

    def weights(self, histories):
        assert len(histories) == 2 and all(len(h) == 2 for h in histories)
        return [0.5, 0.5]


def _weighting_plugin():
    from cellzoo import LossWeightingSpec, hookimpl

    class Plugin:
        @hookimpl
        def cellzoo_loss_weightings(self):
            return [LossWeightingSpec(name="halves", builder=_Halves)]

    return Plugin()


def test_a_registered_loss_weighting_drives_alpha(data, zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_activa.plugin, name="activa", distribution="cellzoo-activa")
    zoo_pm.register(_weighting_plugin(), name="halves", distribution="test-halves")
    model = cellzoo.create_model("activa", **{**SMALL, "epochs": 9, "loss_weighting": "halves"}).fit(data, LABEL)
    history = model.training_record["history"]
    # introspective epochs 5..9: the window of 2 epochs is full after epoch 6, so epoch 7 trains with (0.5, 0.5)
    assert [(h["alpha_2"], h["alpha_1"]) for h in history[4:]] == [(0.05, 1.0)] * 2 + [(0.5, 0.5)] * 3
    assert model.training_record["weights_trace"][0] == [0.05, 1.0]


def test_every_installed_loss_weighting_trains(data):
    names = cellzoo.list_loss_weightings()
    if not names:
        pytest.skip("no loss weighting is installed (e.g. cellzoo-softadapt)")
    for name in names:
        model = Activa(ActivaConfig(**{**SMALL, "epochs": 8, "loss_weighting": name})).fit(data, LABEL)
        assert model.training_record["loss_weighting"] == name
        assert np.isfinite(model.sample(5, seed=0).X).all()


# -- learning ------------------------------------------------------------------------------------------


def test_generated_gene_means_move_toward_the_real_ones(data):
    real = library_normalise(data.X, 50.0).mean(axis=0)
    # lr 1e-2: the small widths of these tests learn slowly at ACTIVA's 2e-4
    untrained = _model(epochs=2, lr=1e-2).fit(data, LABEL)  # classifier epochs only: the VAE is at its initialisation
    trained = _model(epochs=25, lr=1e-2).fit(data, LABEL)
    before = np.abs(untrained.sample(300, seed=0).X.mean(axis=0) - real).mean()
    after = np.abs(trained.sample(300, seed=0).X.mean(axis=0) - real).mean()
    assert after < 0.5 * before, (before, after)


def test_export_module_traces_to_onnx(fitted):
    import io
    import warnings

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    module = fitted.export_module()
    z = fitted.golden_inputs(n=6, seed=0)["z"]
    assert z.dtype == np.float32 and z.shape == (6, fitted.config.latent_dim)
    buf = io.BytesIO()
    kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(z),), buf, input_names=["z"], output_names=["cells"],
                          dynamic_axes={"z": {0: "n"}, "cells": {0: "n"}}, **kwargs)  # fmt: skip
    got = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"z": z})[0]
    np.testing.assert_allclose(got, fitted.infer({"z": z})["cells"], rtol=1e-4, atol=1e-4)
