"""SoftAdapt's math: finite differences, the §6.1 worked example, windows, β, ordering, normalisation."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from cellzoo.errors import ConfigError, InputError
from cellzoo_softadapt.config import NormalisedSoftAdaptConfig, SoftAdaptConfig
from cellzoo_softadapt.finite_difference import forward_difference_coefficients, forward_slope
from cellzoo_softadapt.softadapt import LossWeightedSoftAdapt, NormalisedSoftAdapt, SoftAdapt, soft_max

#: the reference README's worked example (three parts, five values each; β = 0.1)
EXAMPLE = [[1, 2, 3, 4, 5], [150, 100, 50, 10, 0.1], [1500, 1000, 500, 100, 1]]


# -- finite differences -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (1, (-1, 1)),
        (2, (Fraction(-3, 2), 2, Fraction(-1, 2))),
        (3, (Fraction(-11, 6), 3, Fraction(-3, 2), Fraction(1, 3))),
        (4, (Fraction(-25, 12), 4, -3, Fraction(4, 3), Fraction(-1, 4))),
        (5, (Fraction(-137, 60), 5, -5, Fraction(10, 3), Fraction(-5, 4), Fraction(1, 5))),
    ],
)
def test_known_forward_coefficients(order, expected):
    assert forward_difference_coefficients(order, exact=True) == tuple(Fraction(e) for e in expected)
    np.testing.assert_allclose(forward_difference_coefficients(order), [float(e) for e in expected], rtol=0, atol=1e-15)


@pytest.mark.parametrize("order", range(1, 16))
def test_coefficients_match_the_closed_form_and_are_exact_on_polynomials(order):
    # closed form of the forward first-derivative stencil: c_0 = −H_p, c_j = (−1)^{j+1} C(p, j) / j
    closed = [-sum(Fraction(1, i) for i in range(1, order + 1))]
    closed += [Fraction((-1) ** (j + 1) * comb(order, j), j) for j in range(1, order + 1)]
    assert forward_difference_coefficients(order, exact=True) == tuple(closed)
    c = forward_difference_coefficients(order, exact=True)
    for degree in range(order + 1):  # d/dx x^degree at 0 is [degree == 1]
        assert sum(cj * Fraction(j) ** degree for j, cj in enumerate(c)) == int(degree == 1)


def test_forward_slope_uses_the_last_points_and_the_oldest_of_them():
    quadratic = [x**2 for x in range(6)]  # values at x = 0..5
    assert forward_slope(quadratic) == pytest.approx(0.0, abs=1e-9)  # f'(0), order 5
    assert forward_slope(quadratic, order=2) == pytest.approx(6.0)  # last 3 points: f'(3) = 6
    assert forward_slope(quadratic, order=1) == pytest.approx(9.0)  # 25 − 16
    with pytest.raises(ConfigError, match=r"1\.\.5"):
        forward_slope(quadratic, order=6)
    with pytest.raises(ConfigError):
        forward_difference_coefficients(0)


# -- the worked example -----------------------------------------------------------------------------


def test_worked_example_slopes():
    np.testing.assert_allclose(SoftAdapt().slopes(EXAMPLE), [1.0, -49.191667, -491.916667], rtol=1e-6)


@pytest.mark.parametrize(
    ("weighting", "expected"),
    [
        (SoftAdapt(), (0.99343, 0.0065666, 3.89e-22)),
        (NormalisedSoftAdapt(NormalisedSoftAdaptConfig(signed_sum=True)), (0.3221, 0.3251, 0.3528)),
        (LossWeightedSoftAdapt(), (0.87978, 0.12022, 7.12e-20)),
    ],
    ids=["original", "normalised_signed_published", "loss_weighted"],
)
def test_worked_example_weights(weighting, expected):
    assert weighting.config.beta == 0.1 and weighting.config.window == 5 and weighting.config.stencil_order == 4
    weights = weighting.weights(EXAMPLE)
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-4)
    # the tiny weights are right in magnitude, not only below 1e-4
    for w, e in zip(weights, expected):
        if e < 1e-3:
            assert w == pytest.approx(e, rel=2e-3)


def test_worked_example_absolute_sum_default():
    weights = NormalisedSoftAdapt().weights(EXAMPLE)
    np.testing.assert_allclose(weights, (0.344, 0.341, 0.314), atol=5e-4)  # the reference notes give 3 decimals
    # to 1e-4, recomputed independently: s from the closed-form order-4 stencil, then softmax(0.1 · s / Σ|s|)
    c = np.array([-25 / 12, 4, -3, 4 / 3, -1 / 4])
    s = np.array([c @ np.array(h, dtype=float) for h in EXAMPLE])
    e = np.exp(0.1 * s / np.abs(s).sum())
    np.testing.assert_allclose(weights, e / (e.sum() + 1e-8), atol=1e-12)
    np.testing.assert_allclose(weights, (0.3444, 0.3412, 0.3144), atol=1e-4)


def test_worked_example_to_the_digits_of_the_reference_recomputation():
    np.testing.assert_allclose(SoftAdapt().weights(EXAMPLE)[:2], (0.99343, 0.0065666), rtol=1e-4)
    np.testing.assert_allclose(LossWeightedSoftAdapt().weights(EXAMPLE)[:2], (0.87978, 0.12022), rtol=1e-4)
    np.testing.assert_allclose(
        NormalisedSoftAdapt(NormalisedSoftAdaptConfig(signed_sum=True)).weights(EXAMPLE),
        (0.3221, 0.3251, 0.3528),
        atol=1e-4,
    )


def test_signed_sum_reverses_the_order_when_losses_fall_and_the_absolute_sum_keeps_it():
    original = np.argsort(SoftAdapt().weights(EXAMPLE))
    absolute = np.argsort(NormalisedSoftAdapt().weights(EXAMPLE))
    signed = np.argsort(NormalisedSoftAdapt(NormalisedSoftAdaptConfig(signed_sum=True)).weights(EXAMPLE))
    assert list(original) == list(absolute) == [2, 1, 0]  # the part that rises (part 0) weighs most
    assert list(signed) == [0, 1, 2]  # reversed: the fastest-falling part weighs most


def test_epsilon_is_added_to_the_denominator():
    w = soft_max(np.zeros(4), beta=0.1, epsilon=1e-8)
    np.testing.assert_allclose(w, 1 / (4 + 1e-8), rtol=1e-15)
    assert w.sum() < 1
    assert soft_max(np.zeros(4), beta=0.1, epsilon=0.0).sum() == pytest.approx(1.0, abs=1e-15)


# -- windows, orders, β -----------------------------------------------------------------------------


@pytest.mark.parametrize("window", range(2, 13))
@pytest.mark.parametrize("variant", [SoftAdapt, NormalisedSoftAdapt, LossWeightedSoftAdapt])
def test_every_window_and_order_works(window, variant):
    # smooth series: high orders amplify noise (order 11 multiplies it by up to Σ|c_j| ≈ 2^11 / 11), see the README
    histories = [list(np.exp(-0.3 * np.arange(window))), list(1 + 0.1 * np.arange(window))]
    config_type = variant.config_type
    for order in [None, *range(1, window)]:
        weights = variant(config_type(window=window, order=order)).weights(histories)
        assert len(weights) == 2 and all(np.isfinite(weights)) and all(w >= 0 for w in weights)
        assert weights[1] > weights[0]  # the rising part weighs more (β = 0.1 > 0)


@pytest.mark.parametrize("bad", [0, -1, 5, 6, 2.5, True])
def test_invalid_order_is_a_config_error_naming_the_valid_range(bad):
    with pytest.raises(ConfigError, match=r"1\.\.4"):
        SoftAdaptConfig(window=5, order=bad)


@pytest.mark.parametrize(
    "kwargs", [{"window": 1}, {"window": 0}, {"beta": float("nan")}, {"epsilon": -1.0}, {"window": 3.0}]
)
def test_invalid_configs(kwargs):
    with pytest.raises(ConfigError):
        SoftAdaptConfig(**kwargs)
    with pytest.raises(ConfigError):
        NormalisedSoftAdaptConfig(**kwargs)
    with pytest.raises(ConfigError, match="signed_sum"):
        NormalisedSoftAdaptConfig(signed_sum="yes")


def test_too_short_or_non_finite_histories_are_input_errors():
    with pytest.raises(InputError, match="needs at least 5"):
        SoftAdapt().weights([[1, 2, 3], [1, 2, 3]])
    with pytest.raises(InputError, match="non-finite"):
        SoftAdapt().weights([[1, 2, 3, 4, float("nan")], [1, 2, 3, 4, 5]])
    with pytest.raises(InputError, match="at least one"):
        SoftAdapt().weights([])
    with pytest.raises(InputError, match=">= 0"):
        LossWeightedSoftAdapt().weights([[-5, -4, -3, -2, -1], [1, 2, 3, 4, 5]])


def test_longer_histories_use_the_last_window_values():
    long = [[100, 50, *h] for h in EXAMPLE]
    np.testing.assert_allclose(SoftAdapt().weights(long), SoftAdapt().weights(EXAMPLE))


@pytest.mark.parametrize("variant", [SoftAdapt, NormalisedSoftAdapt, LossWeightedSoftAdapt])
def test_beta_zero_is_uniform(variant):
    weights = variant(variant.config_type(beta=0.0)).weights(EXAMPLE)
    if variant is LossWeightedSoftAdapt:  # β = 0 leaves only the loss means: w_k ∝ f_k
        means = np.mean(EXAMPLE, axis=1)
        np.testing.assert_allclose(weights, means / (means.sum() + 1e-8), rtol=1e-12)
    else:
        np.testing.assert_allclose(weights, [1 / 3] * 3, rtol=1e-7)


@pytest.mark.parametrize("beta", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("variant", [SoftAdapt, NormalisedSoftAdapt])
def test_positive_beta_favours_the_increasing_loss_and_negative_beta_the_decreasing(beta, variant):
    histories = [[5, 4, 3, 2, 1], [1, 1.5, 2, 2.5, 3], [2, 2, 2, 2, 2]]  # falling, rising, flat
    up = variant(variant.config_type(beta=beta)).weights(histories)
    down = variant(variant.config_type(beta=-beta)).weights(histories)
    assert up[1] > up[2] > up[0]
    assert down[0] > down[2] > down[1]
    assert sum(up) == pytest.approx(1.0, abs=1e-7)


def test_large_slopes_do_not_overflow_for_either_sign_of_beta():
    histories = [[0, 1e6], [0, -1e6]]
    for beta in (10.0, -10.0):
        w = SoftAdapt(SoftAdaptConfig(beta=beta, window=2)).weights(histories)
        assert all(np.isfinite(w)) and sum(w) == pytest.approx(1.0)


def test_normalised_guard_when_the_divisor_vanishes():
    flat = [[2, 2, 2, 2, 2], [7, 7, 7, 7, 7]]
    np.testing.assert_allclose(NormalisedSoftAdapt().weights(flat), [0.5, 0.5], rtol=1e-7)
    cancelling = [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]  # Σ s_j = 0 exactly: the published formula divides by 0
    signed = NormalisedSoftAdapt(NormalisedSoftAdaptConfig(signed_sum=True)).weights(cancelling)
    np.testing.assert_allclose(signed, [0.5, 0.5], rtol=1e-7)
    absolute = NormalisedSoftAdapt().weights(cancelling)  # Σ|s_j| = 2: no guard needed, rising part first
    assert absolute[0] > absolute[1]


def test_numpy_numbers_are_accepted_in_configs():
    config = SoftAdaptConfig(beta=np.float32(0.5), window=np.int64(3), order=np.int64(2))
    assert type(config.window) is int and type(config.order) is int and config.stencil_order == 2
    assert len(SoftAdapt(config).weights([[3, 2, 1], [1, 2, 3]])) == 2
