"""scGAN / cscGAN: networks, LSN, gradient penalty, the 5:1 schedule, determinism, sampling, persistence, learning."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import anndata  # noqa: E402
import pandas as pd  # noqa: E402

import cellzoo  # noqa: E402
import cellzoo_scgan.model  # noqa: E402
import cellzoo_scgan.plugin  # noqa: E402
from cellzoo.errors import CellzooError, ConfigError, TrainingError, UnknownNameError  # noqa: E402
from cellzoo.testing import tiny_annotate_adata, zoo_pm  # noqa: E402, F401
from cellzoo_scgan.config import ScganConfig  # noqa: E402
from cellzoo_scgan.model import library_normalise  # noqa: E402
from cellzoo_scgan.network import ScganCritic, ScganGenerator, gradient_penalty  # noqa: E402

LABEL = "cell_type"
#: tiny networks and a few steps: each fit takes well under a second on one core
TINY = {"steps": 3, "gen_layers": (16, 32), "critic_layers": (32, 16), "latent_dim": 8, "batch_size": 32,
        "device": "cpu", "log_every": 1}  # fmt: skip


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_scgan.plugin, name="scgan", distribution="cellzoo-scgan")


@pytest.fixture(scope="module")
def adata():
    return tiny_annotate_adata(n_cells=120, n_genes=30, n_classes=2, seed=0)


def _fit(name, adata, **kw):
    model = cellzoo.create_model(name, **{**TINY, **kw})
    return model.fit(adata, LABEL if name == "cscgan" else None)


# -- networks ---------------------------------------------------------------------------------------


def test_generator_and_critic_layers_and_shapes():
    gen = ScganGenerator(50)
    linears = [
        (m.in_features, m.out_features, m.bias is not None) for m in gen.modules() if isinstance(m, torch.nn.Linear)
    ]
    assert linears == [(128, 256, False), (256, 512, False), (512, 1024, False), (1024, 50, True)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in gen.modules()) == 3
    assert gen.eval()(torch.randn(7, 128)).shape == (7, 50)
    critic = ScganCritic(50)
    widths = [(m.in_features, m.out_features) for m in critic.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(50, 1024), (1024, 512), (512, 256), (256, 1)]
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)) for m in critic.modules())
    assert critic(torch.rand(7, 50)).shape == (7,)


def test_conditional_networks_take_class_codes():
    gen = ScganGenerator(20, latent_dim=8, hidden=(16,), n_classes=3).eval()
    y = torch.tensor([0, 1, 2, 1])
    assert gen(torch.randn(4, 8), y).shape == (4, 20)
    # a class's own BatchNorm scale/shift: changing class 2's shift changes only class-2 rows
    z = torch.randn(4, 8)
    before = gen(z, y)
    with torch.no_grad():
        gen.norms[0].shift.weight[2] += 1.0
    after = gen(z, y)
    assert torch.equal(before[[0, 1, 3]], after[[0, 1, 3]]) and not torch.equal(before[2], after[2])
    critic = ScganCritic(20, hidden=(16,), n_classes=3)
    x = torch.rand(4, 20)
    hidden = torch.relu(critic.linears[0](x))
    expected = critic.output(hidden).squeeze(1) + (critic.projection.weight[y] * hidden).sum(1)
    torch.testing.assert_close(critic(x, y), expected)


def test_lsn_makes_every_generated_cell_sum_to_20000():
    gen = ScganGenerator(40, latent_dim=16, hidden=(32, 64))
    for mode in (gen.train, gen.eval):
        mode()
        cells = gen(torch.randn(64, 16)).detach()
        assert (cells >= 0).all()
        np.testing.assert_allclose(cells.sum(1).numpy(), 20000.0, rtol=1e-5)


def test_library_normalise_scales_each_cell_without_log():
    import scipy.sparse as sp

    counts = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [5.0, 5.0, 10.0]])
    expected = np.array([[5000.0, 15000.0, 0.0], [0.0, 0.0, 0.0], [5000.0, 5000.0, 10000.0]])
    np.testing.assert_allclose(library_normalise(counts), expected)
    np.testing.assert_allclose(library_normalise(sp.csr_matrix(counts)).toarray(), expected)


# -- the WGAN-GP loss -------------------------------------------------------------------------------


def test_gradient_penalty_of_a_linear_critic_is_the_weight_norm_term():
    critic = torch.nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 0.0, 4.0]]))  # ‖∇D‖ = 5 everywhere
    real, fake = torch.rand(6, 3), torch.rand(6, 3)
    gp = gradient_penalty(lambda x: critic(x).squeeze(1), real, fake, torch.rand(6))
    assert float(gp.detach()) == pytest.approx((5.0 - 1.0) ** 2)


def test_gradient_penalty_matches_a_hand_computation_on_a_quadratic_critic():
    # D(x) = Σ x²  ⇒  ∇D(x̂) = 2 x̂,  x̂ = real + α (fake − real)
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    fake = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    alpha = torch.tensor([0.25, 0.5])
    mixed = np.array([[0.75, 0.25], [1.0, 2.0]])
    norms = np.linalg.norm(2.0 * mixed, axis=1)
    expected = np.mean((norms - 1.0) ** 2)
    gp = gradient_penalty(lambda x: (x**2).sum(1), real, fake, alpha)
    assert float(gp.detach()) == pytest.approx(expected, rel=1e-6)
    # the penalty keeps its graph: it can train a critic's weights
    w = torch.ones(2, requires_grad=True)
    gradient_penalty(lambda x: (w * x**2).sum(1), real, fake, alpha).backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()


def test_five_critic_updates_per_generator_update(adata):
    model = _fit("scgan", adata, steps=4)
    record = model.training_record
    assert (record["generator_updates"], record["critic_updates"]) == (4, 20)
    assert record["critic_steps"] == 5
    assert [row["step"] for row in record["log"]] == [1, 2, 3, 4]
    assert {"critic_loss", "generator_loss", "wasserstein", "gradient_penalty", "lr", "seconds"} <= set(
        record["log"][0]
    )
    # the learning rate decays exponentially from 1e-4 towards 1e-5 over the run
    lrs = [row["lr"] for row in record["log"]]
    np.testing.assert_allclose(lrs, [1e-4 * 0.1 ** (s / 4) for s in range(4)])


def test_optimizer_steps_are_counted_five_to_one(adata, monkeypatch):
    made = []

    class CountingAdam(torch.optim.Adam):
        def __init__(self, params, **kw):
            params = list(params)
            super().__init__(params, **kw)
            self.n_params, self.steps = len(params), 0
            made.append(self)

        def step(self, closure=None):
            self.steps += 1
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", CountingAdam)
    model = _fit("scgan", adata, steps=3, critic_steps=5)
    counts = {opt.n_params: opt.steps for opt in made}
    n_gen = len(list(model.nets["generator"].parameters()))
    n_critic = len(list(model.nets["critic"].parameters()))
    assert counts == {n_gen: 3, n_critic: 15}
    assert all(opt.defaults["amsgrad"] and opt.defaults["betas"] == (0.5, 0.9) for opt in made)


def test_steps_from_epochs():
    cfg = ScganConfig(steps=0, epochs=2, batch_size=10, critic_steps=5)
    assert cfg.generator_steps(100) == 4  # 2 passes × 10 critic batches / 5
    assert ScganConfig(steps=7).generator_steps(100) == 7


def test_nan_loss_stops_training_with_a_training_error(adata, monkeypatch):
    monkeypatch.setattr(cellzoo_scgan.model, "gradient_penalty", lambda *a, **k: torch.tensor(float("nan")))
    with pytest.raises(TrainingError, match="critic loss became nan") as info:
        _fit("scgan", adata)
    assert info.value.kept is None and "nothing is kept" in str(info.value)


def test_nan_loss_keeps_the_last_good_weights(adata, monkeypatch):
    real = cellzoo_scgan.model.gradient_penalty
    calls = {"n": 0}

    def fails_late(*args, **kwargs):  # critic updates of generator steps 1–4 are fine, then NaN
        calls["n"] += 1
        return real(*args, **kwargs) if calls["n"] <= 4 * ScganConfig().critic_steps else torch.tensor(float("nan"))

    monkeypatch.setattr(cellzoo_scgan.model, "gradient_penalty", fails_late)
    model = cellzoo.create_model("scgan", **{**TINY, "steps": 8, "log_every": 2})
    with pytest.raises(TrainingError, match="step 5") as info:
        model.fit(adata)
    assert info.value.kept == "generator step 4" and model.is_fitted
    assert np.isfinite(model.sample(5, seed=0).X).all()


@pytest.mark.parametrize("bad", [{"gp_lambda": -1.0}, {"critic_steps": 0}, {"lr_final": 0.0}, {"gen_layers": ()},
                                 {"bn_momentum": 0.0}, {"steps": -1}])  # fmt: skip
def test_bad_config_is_refused(bad):
    with pytest.raises(ConfigError, match="invalid scgan configuration"):
        ScganConfig(**bad)


# -- determinism ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["scgan", "cscgan"])
def test_seeded_training_is_reproducible(adata, name):
    a, b = _fit(name, adata, seed=3), _fit(name, adata, seed=3)
    ta, tb = a.state_tensors(), b.state_tensors()
    assert ta.keys() == tb.keys()
    for key in ta:
        np.testing.assert_array_equal(ta[key], tb[key], err_msg=key)
    c = _fit(name, adata, seed=4)
    assert not np.array_equal(c.state_tensors()["generator.output.weight"], ta["generator.output.weight"])
    np.testing.assert_array_equal(a.sample(5, seed=1).X, b.sample(5, seed=1).X)


# -- sampling ---------------------------------------------------------------------------------------


def test_unconditional_sample(adata):
    model = _fit("scgan", adata)
    cells = model.sample(17, seed=0)
    assert cells.shape == (17, adata.n_vars)
    assert list(cells.var_names) == list(adata.var_names)
    assert LABEL not in cells.obs
    np.testing.assert_allclose(cells.X.sum(1), 20000.0, rtol=1e-4)
    assert cells.uns["cellzoo"]["input_state"] == "nonnegative"
    assert cells.uns["cellzoo"]["target_sum"] == 20000.0
    np.testing.assert_array_equal(cells.X, model.sample(17, seed=0).X)
    assert not np.array_equal(cells.X, model.sample(17, seed=1).X)


def test_conditional_sample_returns_the_asked_type(adata):
    model = _fit("cscgan", adata)
    for cell_type in model.classes:
        cells = model.sample(9, cell_type=cell_type, seed=0)
        assert cells.shape == (9, adata.n_vars)
        assert (cells.obs[LABEL].astype(str) == cell_type).all()
        np.testing.assert_allclose(cells.X.sum(1), 20000.0, rtol=1e-4)
    # the class code reaches the generator: two types give different cells from the same noise
    a = model.sample(4, cell_type=model.classes[0], seed=0).X
    b = model.sample(4, cell_type=model.classes[1], seed=0).X
    assert not np.allclose(a, b)
    assert model.sample(6, seed=0).shape == (6, adata.n_vars)


def test_sampling_errors_are_clear(adata):
    cond = _fit("cscgan", adata)
    with pytest.raises(UnknownNameError, match=r"unknown cell type 'neuron'") as info:
        cond.sample(3, cell_type="neuron")
    assert "B cell" in str(info.value)
    for n in (0, -2, 2.5, True):
        with pytest.raises(ConfigError, match="positive integer"):
            cond.sample(n)
    uncond = _fit("scgan", adata)
    with pytest.raises(ConfigError, match="cannot sample"):
        uncond.sample(3, cell_type="B cell")
    labelled = cellzoo.create_model("scgan", **TINY).fit(adata, LABEL)
    with pytest.raises(ConfigError, match="cannot sample"):
        labelled.sample(3, cell_type="B cell")
    with pytest.raises(ConfigError, match="label_key"):
        cellzoo.create_model("cscgan", **TINY).fit(adata)
    with pytest.raises(CellzooError, match="not trained"):
        cellzoo.create_model("scgan", **TINY).sample(3)


# -- the training hook ------------------------------------------------------------------------------


def test_quality_trace_is_called_every_checkpoint_and_does_not_change_training(adata):
    calls = []

    def trace(step, seconds, model):
        calls.append((step, seconds, model.sample(5, seed=0).X.sum()))

    model = cellzoo.create_model("scgan", **{**TINY, "steps": 5, "checkpoint_every": 2})
    model.quality_trace = trace
    model.fit(adata)
    assert [c[0] for c in calls] == [2, 4, 5]
    assert all(c[1] >= 0 for c in calls) and calls[0][1] <= calls[-1][1]
    plain = cellzoo.create_model("scgan", **{**TINY, "steps": 5}).fit(adata)
    np.testing.assert_array_equal(plain.state_tensors()["generator.output.weight"],
                                  model.state_tensors()["generator.output.weight"])  # fmt: skip


# -- persistence and export -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["scgan", "cscgan"])
def test_save_load_round_trip_gives_identical_samples(adata, name, tmp_path):
    model = _fit(name, adata)
    path = cellzoo.save(model, tmp_path / name)
    loaded = cellzoo.load(f"local-dir:{path}")
    assert type(loaded) is type(model)
    assert loaded.classes == model.classes
    assert loaded.training_record["generator_updates"] == 3
    cell_type = model.classes[1] if name == "cscgan" else None
    np.testing.assert_array_equal(
        model.sample(11, cell_type=cell_type, seed=5).X, loaded.sample(11, cell_type=cell_type, seed=5).X
    )
    report = cellzoo.verify(f"local-dir:{path}")
    assert getattr(report, "ok", True)


@pytest.mark.parametrize("name", ["scgan", "cscgan"])
def test_decoder_exports_to_onnx(adata, name, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = _fit(name, adata)
    module = model.export_module()
    inputs = model.golden_inputs(n=6, seed=0)
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    names = list(inputs)
    path = tmp_path / "decoder.onnx"
    torch.onnx.export(module, args, str(path), input_names=names, output_names=list(model.export_output_names),
                      dynamic_axes={k: {0: "batch"} for k in [*names, "cells"]}, dynamo=False)  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    more = model.golden_inputs(n=9, seed=1)
    (got,) = session.run(None, {k: v for k, v in more.items()})
    np.testing.assert_allclose(got, model.infer(more)["cells"], rtol=1e-4, atol=5e-2)


# -- learning ---------------------------------------------------------------------------------------


def _two_type_counts(n_cells=300, n_genes=40, seed=0):
    rng = np.random.default_rng(seed)
    types = np.repeat(["alpha", "beta"], n_cells // 2)
    rates = np.full((2, n_genes), 2.0)
    rates[0, :8] = 30.0
    rates[1, 8:16] = 30.0
    X = rng.poisson(rates[(types == "beta").astype(int)]).astype(np.float32)
    obs = pd.DataFrame({LABEL: pd.Categorical(types)}, index=[f"c{i}" for i in range(n_cells)])
    return anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


@pytest.mark.parametrize("name", ["scgan", "cscgan"])
def test_training_moves_generated_gene_means_towards_the_real_ones(name):
    data = _two_type_counts()
    real = library_normalise(data.X)
    # a higher learning rate and faster BatchNorm statistics than the paper's, to learn in ~1 s
    settings = {**TINY, "steps": 150, "lr": 3e-3, "lr_final": 3e-4, "bn_momentum": 0.1, "log_every": 50,
                "gen_layers": (32, 64), "critic_layers": (64, 32), "batch_size": 64}  # fmt: skip
    untrained = _fit(name, data, **{**settings, "steps": 1})
    trained = _fit(name, data, **settings)

    def error(model, cell_type=None, against=None):
        against = cell_type if against is None else against
        rows = slice(None) if against is None else (data.obs[LABEL] == against).to_numpy()
        generated = model.sample(400, cell_type=cell_type, seed=0).X
        return np.abs(generated.mean(0) - real[rows].mean(0)).mean()

    assert error(trained) < 0.5 * error(untrained)
    if name == "cscgan":
        for cell_type, other in (("alpha", "beta"), ("beta", "alpha")):
            assert error(trained, cell_type) < 0.5 * error(untrained, cell_type)
            # conditioned cells resemble their own type more than the other one
            assert error(trained, cell_type) < 0.5 * error(trained, cell_type, against=other)
