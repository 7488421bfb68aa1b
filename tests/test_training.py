"""Shared torch plumbing: seeding, devices, batching, early stopping, the training loop, inference."""

from __future__ import annotations

import random

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from cellzoo.errors import CellzooError, ConfigError, InputError  # noqa: E402
from cellzoo.training import (  # noqa: E402
    EarlyStopping,
    TrainHistory,
    batches,
    predict_in_batches,
    seed_everything,
    select_device,
    train_classifier,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny tensors: a second intra-op thread only adds contention on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def blobs(n: int = 64, n_genes: int = 10, seed: int = 0, flip: bool = False):
    """Two well-separated clusters of non-negative, half-zero "expression"."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.poisson(0.3, size=(n, n_genes)).astype(np.float32)
    X[y == 0, : n_genes // 2] += 3.0
    X[y == 1, n_genes // 2 :] += 3.0
    return X, (1 - y if flip else y).astype(np.int64)


def make_module(seed: int = 0, n_genes: int = 10, dropout: float = 0.2) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_genes, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 2))


def fit(module, X, y, Xv=None, yv=None, **kwargs):
    params = dict(epochs=5, batch_size=16, optimizer=torch.optim.Adam(module.parameters(), lr=0.01), progress=False)
    params.update(kwargs)
    return train_classifier(module, X, y, Xv, yv, **params)


def weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- seeding and devices ---------------------------------------------------------------------------


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    assert torch.backends.cudnn.deterministic


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="'tpu' is not one of auto, cpu, cuda, mps"):
        select_device("tpu")
    missing = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ConfigError, match=rf"'{missing}' was requested but is not available \(available: cpu"):
        select_device(missing)


# -- early stopping --------------------------------------------------------------------------------


def test_early_stopping_counts_steps_without_improvement():
    stopper = EarlyStopping(patience=3)
    decisions = [stopper.step(v) for v in (5.0, 4.0, 4.5, 4.2, 4.1)]
    assert decisions == [False, False, False, False, True]
    assert (stopper.best, stopper.best_epoch) == (4.0, 1)


def test_early_stopping_min_delta_mode_max_and_nan():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert not stopper.step(1.0)
    assert not stopper.step(0.95)  # better by less than min_delta: not an improvement
    assert stopper.step(float("nan"))
    assert stopper.best == 1.0
    up = EarlyStopping(patience=1, mode="max")
    assert not up.step(0.5) and not up.step(0.7) and up.step(0.7)
    assert (up.best, up.best_epoch) == (0.7, 1)
    with pytest.raises(ConfigError, match="'min' or 'max'"):
        EarlyStopping(mode="lowest")


def test_early_stopping_restores_the_best_weights():
    module = make_module()
    stopper = EarlyStopping(patience=5)
    stopper.step(1.0, module)
    best = weights(module)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    stopper.step(2.0, module)
    assert not same(weights(module), best)
    assert stopper.restore(module)
    assert same(weights(module), best)
    assert not EarlyStopping().restore(module)


# -- batching --------------------------------------------------------------------------------------


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix, sp.csc_matrix])
def test_batches_are_dense_float32_blocks(to_matrix):
    X = np.arange(35, dtype=np.int64).reshape(7, 5)
    blocks = list(batches(to_matrix(X), 3))
    assert [b.shape for b in blocks] == [(3, 5), (3, 5), (1, 5)]
    assert all(isinstance(b, np.ndarray) and b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.vstack(blocks), X)
    order = np.array([6, 0, 3])
    np.testing.assert_array_equal(np.vstack(list(batches(to_matrix(X), 2, order=order))), X[order])


# -- training --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    X, y = blobs()
    runs = []
    for seed in (0, 0, 1):
        module = make_module(seed=0)
        fit(module, X, y, seed=seed)
        runs.append(weights(module))
    assert same(runs[0], runs[1])
    assert not same(runs[0], runs[2])


def test_training_learns_a_separable_problem_and_leaves_eval_mode():
    X, y = blobs()
    Xv, yv = blobs(seed=1)
    module = make_module()
    history = fit(module, X, y, Xv, yv, epochs=30)
    assert isinstance(history, TrainHistory)
    assert history.epochs == len(history.val_loss) == len(history.val_accuracy) == 30
    assert history.train_loss[-1] < history.train_loss[0] / 2
    assert history.val_accuracy[-1] == 1.0
    assert history.best_epoch == 29 and not history.stopped_early and history.seconds > 0
    assert not module.training
    assert history.to_json()["train_loss"] == history.train_loss


def test_early_stopping_stops_early_on_a_separable_problem():
    X, y = blobs()
    Xv, yv = blobs(seed=1)
    module = make_module()
    stopper = EarlyStopping(patience=3, min_delta=1e-3)
    history = fit(
        module,
        X,
        y,
        Xv,
        yv,
        epochs=300,
        early_stopping=stopper,
        optimizer=torch.optim.Adam(module.parameters(), lr=0.05),
    )
    assert history.stopped_early and history.epochs < 300
    assert history.best_epoch == stopper.best_epoch == history.epochs - 1 - 3
    assert history.val_accuracy[history.best_epoch] == 1.0


def test_early_stopping_restores_the_best_epoch_weights():
    # validation labels are the opposite of the training labels: the validation loss only grows,
    # so the best weights are those after the first epoch
    X, y = blobs()
    Xv, yv = blobs(seed=1, flip=True)
    module = make_module()
    history = fit(module, X, y, Xv, yv, epochs=50, early_stopping=EarlyStopping(patience=4))
    assert history.stopped_early and history.epochs == 5 and history.best_epoch == 0
    assert history.val_loss[0] == min(history.val_loss)
    one_epoch = make_module()
    fit(one_epoch, X, y, epochs=1)
    assert same(weights(module), weights(one_epoch))


def test_early_stopping_on_accuracy_needs_validation_data():
    X, y = blobs()
    with pytest.raises(ConfigError, match="pass X_val and y_val"):
        fit(make_module(), X, y, early_stopping=EarlyStopping(mode="max"))


@pytest.mark.parametrize("to_matrix", [sp.csr_matrix, sp.csc_matrix])
def test_sparse_input_trains_exactly_like_dense(to_matrix):
    X, y = blobs()
    Xv, yv = blobs(seed=1)
    dense, sparse = make_module(), make_module()
    h_dense = fit(dense, X, y, Xv, yv)
    h_sparse = fit(sparse, to_matrix(X), y, to_matrix(Xv), yv)
    assert same(weights(dense), weights(sparse))
    assert h_dense.val_loss == h_sparse.val_loss


def test_progress_off_prints_nothing_and_progress_on_works_without_a_tty(capsys):
    X, y = blobs()
    fit(make_module(), X, y, progress=False)
    assert capsys.readouterr() == ("", "")
    history = fit(make_module(), X, y, progress=True, desc="tiny")
    assert history.epochs == 5


def test_tuple_outputs_and_logits_fn():
    class WithAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(10, 2)

        def forward(self, x):
            return self.head(x), torch.softmax(x, dim=1)

    X, y = blobs()
    torch.manual_seed(0)
    a = WithAttention()
    b = WithAttention()
    b.load_state_dict(a.state_dict())
    fit(a, X, y)
    fit(b, X, y, logits_fn=lambda m, xb: m.head(xb))
    assert same(weights(a), weights(b))


def test_schedulers_step_per_epoch_or_per_batch():
    X, y = blobs()  # 64 cells, batch 16 → 4 batches per epoch
    for step, expected in (("epoch", 0.1 * 0.5**5), ("batch", 0.1 * 0.5**20)):
        module = make_module()
        opt = torch.optim.SGD(module.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        fit(module, X, y, optimizer=opt, scheduler=sched, scheduler_step=step)
        assert opt.param_groups[0]["lr"] == pytest.approx(expected)


def test_a_last_batch_of_one_cell_is_folded_in():
    X, y = blobs(n=33)  # 33 = 2 × 16 + 1: BatchNorm would fail on a batch of one
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    assert fit(module, X, y, epochs=2).epochs == 2


def test_bad_inputs_are_clear_errors():
    X, y = blobs()
    with pytest.raises(InputError, match="integer class codes"):
        fit(make_module(), X, y.astype(str))
    with pytest.raises(InputError, match=r"expected one integer label per cell \(64\)"):
        fit(make_module(), X, y[:10])
    with pytest.raises(CellzooError, match="the loss became nan at epoch 1"):
        fit(make_module(), X, y, loss_fn=lambda logits, target: logits.sum() * float("nan"))
    with pytest.raises(ConfigError, match="scheduler_step"):
        fit(make_module(), X, y, scheduler_step="step")


# -- inference -------------------------------------------------------------------------------------


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix])
def test_predict_in_batches_matches_one_forward_pass(to_matrix):
    X, _ = blobs(n=50)
    module = make_module()
    module.train()
    out = predict_in_batches(module, to_matrix(X), batch_size=8, device="cpu")
    module.eval()
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert out.shape == (50, 2)


def test_predict_in_batches_restores_mode_and_handles_tuples_and_dicts():
    X, _ = blobs(n=20)
    module = make_module()
    module.train()
    pair = predict_in_batches(module, X, 7, "cpu", fn=lambda m, xb: (m(xb), xb.sum(dim=1)))
    assert module.training
    assert isinstance(pair, tuple) and pair[0].shape == (20, 2)
    np.testing.assert_allclose(pair[1], X.sum(axis=1), rtol=1e-6)
    named = predict_in_batches(module, X, 7, "cpu", fn=lambda m, xb: {"proba": torch.softmax(m(xb), dim=1)})
    np.testing.assert_allclose(named["proba"].sum(axis=1), 1.0, rtol=1e-6)
