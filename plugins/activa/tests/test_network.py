"""ACTIVA's modules and loss terms: architecture, per-cell scaling, hand-computed losses, ONNX tracing."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import scipy.sparse as sp  # noqa: E402
from torch import nn  # noqa: E402

from cellzoo_activa.network import (  # noqa: E402
    ActivaDecoder,
    ActivaEncoder,
    cell_type_loss,
    kl_divergence,
    library_normalise,
    margin_loss,
    parameter_count,
    reconstruction_loss,
    reparameterise,
)

G = 50


def _kinds(seq: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in seq]


def test_encoder_layers_and_shapes():
    enc = ActivaEncoder(G)
    linears = [m for m in enc.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(G, 1024), (1024, 512), (512, 256), (256, 256)]
    # Linear -> ReLU -> BatchNorm on every layer
    assert _kinds(enc.layers) == ["Linear", "ReLU", "BatchNorm1d"] * 4
    mu, logvar = enc.eval()(torch.rand(5, G))
    assert mu.shape == logvar.shape == (5, 128)


def test_batchnorm_on_the_mu_logvar_layer():
    enc = ActivaEncoder(G, latent_dim=128)
    last_linear, relu, bn = list(enc.layers)[-3:]
    assert isinstance(last_linear, nn.Linear) and last_linear.out_features == 256
    assert isinstance(relu, nn.ReLU)
    assert isinstance(bn, nn.BatchNorm1d) and bn.num_features == 256
    # in training mode each μ/logvar unit is batch-normalised: mean ~ 0 over the batch (BN's beta starts at 0)
    out = torch.cat(enc.train()(torch.rand(64, G) * 100), dim=1)
    assert torch.allclose(out.mean(dim=0), torch.zeros(256), atol=1e-4)


def test_decoder_layers_and_shapes():
    dec = ActivaDecoder(G)
    linears = [m for m in dec.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 256), (256, 512), (512, 1024), (1024, G)]
    assert _kinds(dec.layers) == ["Linear", "ReLU", "BatchNorm1d"] * 3 + ["Linear", "ReLU"]
    x = dec.eval()(torch.randn(7, 128))
    assert x.shape == (7, G) and bool((x >= 0).all())


def test_parameter_count_matches_the_reference_formula():
    assert parameter_count(G) == 2049 * G + 1_420_544
    assert parameter_count(17_789) == 37_870_205  # ≈ 37.9 M at the 68k-PBMC gene count


def test_library_normalise_is_per_cell():
    X = np.array([[1.0, 3.0, 0.0], [10.0, 0.0, 30.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    out = library_normalise(X, 20000.0)
    np.testing.assert_allclose(out.sum(axis=1), [20000.0, 20000.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[0], [5000.0, 15000.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[1], [5000.0, 0.0, 15000.0], rtol=1e-6)
    # a per-batch scaling (the reference's LSN) would give rows summing to 4/44 and 40/44 of 40,000
    sparse = library_normalise(sp.csr_matrix(X), 20000.0)
    assert sp.issparse(sparse)
    np.testing.assert_allclose(sparse.toarray(), out, rtol=1e-6)


def test_decoder_lsn_is_per_cell():
    dec = ActivaDecoder(G, 16, (32, 32, 32), lsn=True, target_sum=20000.0).eval()
    x = dec(torch.randn(9, 16))
    totals = x.sum(dim=1)
    nonzero = totals > 0
    assert bool(nonzero.any())
    torch.testing.assert_close(totals[nonzero], torch.full_like(totals[nonzero], 20000.0), rtol=1e-5, atol=1e-2)


def test_kl_divergence_by_hand():
    mu = torch.tensor([[1.0, 0.0], [0.5, -1.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), 0.0]])
    # −½ Σ (1 + lv − μ² − e^lv) per cell, then the mean over cells
    cell0 = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2.0) - 0 - 2))
    cell1 = -0.5 * ((1 + math.log(0.5) - 0.25 - 0.5) + (1 + 0 - 1 - 1))
    assert kl_divergence(mu, logvar).item() == pytest.approx((cell0 + cell1) / 2, rel=1e-6)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_reconstruction_loss_sums_genes_and_averages_cells():
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    x_rec = torch.tensor([[1.0, 0.0, 4.0], [1.0, 1.0, 1.0]])
    # cell 0: 0 + 4 + 1 = 5; cell 1: 3 → mean 4
    assert reconstruction_loss(x_rec, x).item() == pytest.approx(4.0)


def test_cell_type_loss_reductions():
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    rec = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 1.0]])
    # per cell Σ_classes: 1, 4, 4
    assert cell_type_loss(rec, real).item() == pytest.approx(3.0)  # ours: mean over cells
    assert cell_type_loss(rec, real, faithful=True).item() == pytest.approx(9.0)  # released: sum over cells


def test_margin_loss_hinges():
    kl_real, kl_rec, kl_fake = torch.tensor(10.0), torch.tensor(100.0), torch.tensor(130.0)
    # 10 + ½·0.5·([110 − 100]⁺ + [110 − 130]⁺) = 10 + 0.25·10
    assert margin_loss(kl_real, kl_rec, kl_fake, m_plus=110.0, w_neg=0.5).item() == pytest.approx(12.5)
    assert margin_loss(kl_real, kl_rec, kl_fake, m_plus=150.0, w_neg=0.5).item() == pytest.approx(10 + 0.25 * 70)


def test_reparameterise_draws_noise_where_mu_lives():
    mu = torch.zeros(3, 4, device="meta")
    assert reparameterise(mu, torch.zeros(3, 4, device="meta")).device.type == "meta"
    torch.manual_seed(0)
    z = reparameterise(
        torch.ones(2000, 2, dtype=torch.float64), torch.full((2000, 2), math.log(4.0), dtype=torch.float64)
    )
    assert z.dtype == torch.float64
    assert z.mean().item() == pytest.approx(1.0, abs=0.15) and z.std().item() == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize("lsn", [False, True])
def test_decoder_traces_to_onnx(lsn):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    dec = ActivaDecoder(G, lsn=lsn).eval()
    buf = io.BytesIO()
    kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(dec, (torch.randn(4, 128),), buf, input_names=["z"], output_names=["cells"],
                          dynamic_axes={"z": {0: "n"}, "cells": {0: "n"}}, **kwargs)  # fmt: skip
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((11, 128), dtype=np.float32)
    got = session.run(None, {"z": z})[0]
    with torch.inference_mode():
        want = dec(torch.from_numpy(z)).numpy()
    assert got.shape == (11, G)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-2)
