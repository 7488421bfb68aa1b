"""Gene attributions (cellzoo.attribution): completeness of integrated gradients, the analytic gradient, baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cellzoo.attribution import attributions, baselines, class_means, target_codes
from cellzoo.errors import ConfigError, InputError


class Softmax(nn.Module):
    """x → softmax(tanh(x W1) W2): small, non-linear, and its log-probability has a known gradient at W1 = I."""

    def __init__(self, n_genes=6, n_classes=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.hidden = nn.Linear(n_genes, 8)
        self.out = nn.Linear(8, n_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.7)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return torch.softmax(self.out(self.drop(torch.tanh(self.hidden(x)))), dim=-1)


def log_p(module, X, codes):
    with torch.no_grad():
        return torch.log(module(torch.from_numpy(X)))[np.arange(len(codes)), codes].numpy()


def data(n=20, g=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 1.0, size=(n, g)).astype(np.float32), rng.integers(0, 3, n)


def test_integrated_gradients_are_complete():
    module, (X, codes) = Softmax(), data()
    for baseline in ("zeros", "others"):
        att = attributions(module, X, codes, method="integrated_gradients", baseline=baseline, steps=128)
        b = baselines(X, codes, baseline)
        expected = log_p(module.eval(), X, codes) - log_p(module, b, codes)
        np.testing.assert_allclose(att.sum(axis=1), expected, atol=2e-3)


def test_grad_input_is_the_input_times_the_analytic_gradient():
    module = nn.Sequential(nn.Linear(5, 4), nn.Softmax(dim=-1))
    X, codes = data(10, 5)
    codes = codes % 4
    att = attributions(module, X, codes, method="grad_input")
    W = module[0].weight.detach().numpy()
    with torch.no_grad():
        p = module(torch.from_numpy(X)).numpy()
    # ∂ log softmax_k / ∂x = W_k − Σ_j p_j W_j
    grad = W[codes] - p @ W
    np.testing.assert_allclose(att, X * grad, rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_seeded_and_approaches_grad_input_as_the_noise_vanishes():
    module, (X, codes) = Softmax(), data()
    first = attributions(module, X, codes, method="smoothgrad", samples=8, seed=3)
    np.testing.assert_array_equal(first, attributions(module, X, codes, method="smoothgrad", samples=8, seed=3))
    assert not np.array_equal(first, attributions(module, X, codes, method="smoothgrad", samples=8, seed=4))
    quiet = attributions(module, X, codes, method="smoothgrad", samples=2, noise=0.0)
    np.testing.assert_allclose(quiet, attributions(module, X, codes, method="grad_input"), rtol=1e-5, atol=1e-7)


def test_the_module_runs_in_eval_mode_and_keeps_its_mode():
    module, (X, codes) = Softmax(), data()
    module.train()
    first = attributions(module, X, codes, method="grad_input")
    assert module.training  # restored
    np.testing.assert_array_equal(first, attributions(module, X, codes, method="grad_input"))  # dropout was off


def test_the_others_baseline_is_the_mean_of_the_other_classes_cells():
    X = np.array([[1, 0], [3, 0], [0, 4], [0, 8]], dtype=np.float32)
    codes = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(baselines(X, codes, "others"), [[0, 6], [0, 6], [2, 0], [2, 0]])
    np.testing.assert_allclose(baselines(X, codes, [1, 2]), [[1, 2]] * 4)
    with pytest.raises(InputError, match="another class"):
        baselines(X, np.zeros(4, dtype=int), "others")
    with pytest.raises(ConfigError, match="one value per model gene"):
        baselines(X, codes, [1, 2, 3])
    with pytest.raises(ConfigError, match="baseline 'mean'"):
        baselines(X, codes, "mean")


def test_targets_and_bad_requests():
    classes = ("a", "b", "c")
    np.testing.assert_array_equal(target_codes("b", 3, classes, None), [1, 1, 1])
    np.testing.assert_array_equal(target_codes(["c", "a"], 2, classes, None), [2, 0])
    np.testing.assert_array_equal(target_codes(None, 2, classes, lambda: np.array([2, 2])), [2, 2])
    with pytest.raises(InputError, match="'z'"):
        target_codes(["a", "z"], 2, classes, None)
    with pytest.raises(InputError, match="3 entries for 2 cells"):
        target_codes(["a", "b", "c"], 2, classes, None)
    module, (X, codes) = Softmax(), data()
    with pytest.raises(ConfigError, match="attribution method 'saliency'"):
        attributions(module, X, codes, method="saliency")
    with pytest.raises(ConfigError, match="steps=0"):
        attributions(module, X, codes, steps=0)


def test_class_means():
    names, means = class_means(np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]]), np.array(["x", "x", "y"]))
    assert list(names) == ["x", "y"]
    np.testing.assert_allclose(means, [[2, 3], [10, 0]])
