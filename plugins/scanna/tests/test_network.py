"""scANNA's network: shapes, attention, shared feed-forward block, parameter count."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from cellzoo_scanna.network import (  # noqa: E402
    PointwiseFeedForward,
    ScannaInference,
    ScannaNet,
    parameter_count,
)

G, C = 30, 4


@pytest.fixture
def net():
    torch.manual_seed(0)
    return ScannaNet(G, C, ffn_width=16).eval()


def test_forward_shapes(net):
    x = torch.rand(5, G)
    logits, alpha, gamma = net(x)
    assert logits.shape == (5, C)
    assert alpha.shape == (5, G)
    assert gamma.shape == (5, G)


def test_batch_of_one_cell(net):
    # the reference squeezed the batch axis away and crashed on a single cell
    x = torch.rand(1, G)
    logits, alpha, _ = net(x)
    assert logits.shape == (1, C) and alpha.shape == (1, G)
    batch = torch.cat([x, torch.rand(3, G)])
    assert torch.allclose(net(batch)[0][:1], logits, atol=1e-6)


def test_attention_is_a_distribution_over_genes_and_gates_the_input(net):
    x = torch.rand(6, G) * 5
    _, alpha, gamma = net(x)
    assert torch.all(alpha >= 0)
    assert torch.allclose(alpha.sum(dim=1), torch.ones(6), atol=1e-6)
    assert torch.allclose(gamma, alpha * x)


def test_logits_are_leaky_relu_of_the_classifier_output(net):
    captured = []
    handle = net.classifier.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    logits, _, _ = net(torch.rand(64, G) * 3)
    handle.remove()
    pre = captured[0]
    assert (pre < 0).any()
    assert torch.allclose(logits, torch.where(pre > 0, pre, 0.01 * pre))


def test_the_feed_forward_block_is_one_module_used_twice(net):
    blocks = [m for m in net.modules() if isinstance(m, PointwiseFeedForward)]
    assert len(blocks) == 1
    calls = []
    handle = net.feed_forward.register_forward_hook(lambda *_: calls.append(1))
    net(torch.rand(2, G))
    handle.remove()
    assert len(calls) == 2


def test_initialisation_is_xavier_uniform_with_bias_001(net):
    for module in net.modules():
        if isinstance(module, torch.nn.Linear):
            assert torch.all(module.bias == 0.01)
            fan_out, fan_in = module.weight.shape
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            assert module.weight.abs().max() <= bound


@pytest.mark.parametrize(("g", "c", "width"), [(30, 4, 16), (7, 2, 128), (50, 11, 3)])
def test_parameter_count_formula_matches_the_module(g, c, width):
    built = sum(p.numel() for p in ScannaNet(g, c, ffn_width=width).parameters())
    assert parameter_count(g, c, width) == built


def test_parameter_count_at_5000_genes_matches_the_reference_figure():
    for c in (1, 10, 37):
        assert parameter_count(5000, c) == 76_330_128 + 5_001 * c


def test_masking_drops_expression_but_not_the_attention_input():
    torch.manual_seed(0)
    net = ScannaNet(G, C, ffn_width=8, masking_fraction=0.5)
    x = torch.rand(4, G) + 0.1
    net.eval()
    _, alpha_eval, gamma_eval = net(x)
    net.train()
    _, alpha_train, gamma_train = net(x)
    assert torch.allclose(alpha_train, alpha_eval)
    assert (gamma_train == 0).any() and not (gamma_eval == 0).any()


def test_inference_module_returns_probabilities_and_attention(net):
    proba, attention = ScannaInference(net)(torch.rand(3, G))
    assert proba.shape == (3, C) and attention.shape == (3, G)
    assert torch.allclose(proba.sum(dim=1), torch.ones(3), atol=1e-6)
