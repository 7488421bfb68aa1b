"""Forward finite differences of the first derivative, from the Taylor (Vandermonde) system.

An order-``p`` forward stencil uses the values ``f(0), f(1), …, f(p)`` (unit spacing) and gives
``f'(0)`` with error ``O(h^p)``: its coefficients ``c_0 … c_p`` make the stencil exact for every
polynomial of degree ``≤ p``, i.e. they solve ``Σ_j c_j · j^m = [m == 1]`` for ``m = 0 … p``.
The system is solved here in exact rational arithmetic (a Vandermonde matrix is badly conditioned
in floating point already at ``p ≈ 10``), then converted to floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache

import numpy as np

from cellzoo.errors import ConfigError, InputError


def _solve_exact(matrix: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    """Gauss–Jordan elimination over the rationals (the matrix is square and non-singular)."""
    n = len(rhs)
    rows = [[*row, b] for row, b in zip(matrix, rhs, strict=True)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [v / lead for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [row[n] for row in rows]


@lru_cache(maxsize=64)
def _coefficients(order: int) -> tuple[Fraction, ...]:
    points = range(order + 1)
    vandermonde = [[Fraction(j) ** m for j in points] for m in range(order + 1)]
    rhs = [Fraction(int(m == 1)) for m in range(order + 1)]
    return tuple(_solve_exact(vandermonde, rhs))


def forward_difference_coefficients(order: int, exact: bool = False) -> np.ndarray | tuple[Fraction, ...]:
    """Coefficients ``c_0 … c_order`` of the order-``order`` forward difference of ``f'(0)``.

    ``order=1`` → (−1, 1); ``order=2`` → (−3/2, 2, −1/2); ``order=3`` → (−11/6, 3, −3/2, 1/3).
    ``exact=True`` returns them as :class:`fractions.Fraction`.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ConfigError(f"finite-difference order={order!r} must be a positive integer")
    coefficients = _coefficients(order)
    return coefficients if exact else np.array([float(c) for c in coefficients], dtype=np.float64)


def forward_slope(values: Sequence[float], order: int | None = None) -> float:
    """Slope of a series (unit spacing, oldest first) by a forward difference at the oldest used point.

    The order-``p`` stencil uses the ``p + 1`` most recent values and evaluates the derivative at the
    oldest of them, as SoftAdapt does; ``order=None`` uses every value (``p = len(values) - 1``).
    """
    series = np.asarray(values, dtype=np.float64).ravel()
    if order is None:
        order = len(series) - 1
    if len(series) < 2:
        raise InputError(f"a slope needs at least 2 values, got {len(series)}")
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= len(series) - 1:
        raise ConfigError(f"finite-difference order={order!r} must be in 1..{len(series) - 1} for {len(series)} values")
    return float(forward_difference_coefficients(order) @ series[-(order + 1) :])
