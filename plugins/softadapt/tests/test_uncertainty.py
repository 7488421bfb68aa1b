"""Kendall et al.'s uncertainty weighting: its total, gradients through WeightedLoss, and learning."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import cellzoo  # noqa: E402
import cellzoo_softadapt.plugin  # noqa: E402
from cellzoo.errors import ConfigError  # noqa: E402
from cellzoo.testing import zoo_pm  # noqa: E402, F401
from cellzoo.training import WeightedLoss  # noqa: E402


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_softadapt.plugin, name="softadapt", distribution="cellzoo-softadapt")


def test_total_is_exp_minus_s_times_loss_plus_s():
    w = cellzoo.create_loss_weighting("uncertainty", n_parts=2, init_log_variance=0.5)
    losses = [torch.tensor(2.0), torch.tensor(3.0)]
    expected = math.exp(-0.5) * 2 + 0.5 + math.exp(-0.5) * 3 + 0.5
    assert float(w.combine(losses).detach()) == pytest.approx(expected)
    assert w.weights([[2.0], [3.0]]) == pytest.approx([math.exp(-0.5)] * 2)


def test_parameters_receive_gradients_through_weighted_loss():
    weighting = cellzoo.create_loss_weighting("uncertainty", n_parts=2)
    weighted = WeightedLoss(weighting, n_parts=2)
    params = weighted.parameters()
    assert len(params) == 1 and params[0].shape == (2,)
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    total = weighted.combine([(x[0] - 3) ** 2, (x[1] + 1) ** 2])
    total.backward()
    # d/ds_k [exp(−s_k) L_k + s_k] at s = 0 is 1 − L_k
    torch.testing.assert_close(params[0].grad, torch.tensor([1 - 4.0, 1 - 9.0]))
    assert x.grad is not None and torch.all(x.grad != 0)


def test_learned_weights_approach_inverse_losses():
    torch.manual_seed(0)
    weighting = cellzoo.create_loss_weighting("uncertainty", n_parts=2)
    weighted = WeightedLoss(weighting, n_parts=2)
    optimiser = torch.optim.Adam(weighted.parameters(), lr=0.05)
    fixed_losses = [torch.tensor(4.0), torch.tensor(0.25)]
    for _ in range(600):
        optimiser.zero_grad()
        weighted.combine(fixed_losses).backward()
        optimiser.step()
    for _ in range(2):
        weighted.record([4.0, 0.25])
        weighted.update()
    assert weighted.current == pytest.approx([0.25, 4.0], rel=0.02)  # exp(−s_k) → 1 / L_k


def test_wrong_number_of_parts():
    w = cellzoo.create_loss_weighting("uncertainty", n_parts=3)
    with pytest.raises(ConfigError, match="n_parts=2"):
        w.combine([torch.tensor(1.0), torch.tensor(1.0)])
    with pytest.raises(ConfigError):
        cellzoo.create_loss_weighting("uncertainty", n_parts=0)


def test_cpu_parameters_with_losses_elsewhere_keep_their_gradient():
    w = cellzoo.create_loss_weighting("uncertainty")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    losses = [torch.tensor(2.0, device=device), torch.tensor(3.0, device=device)]
    w.combine(losses).backward()
    assert w.log_variance.grad is not None
