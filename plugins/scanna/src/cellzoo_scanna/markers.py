"""Marker-gene rankings from per-class attention mass (numpy only; used by scANNA and N-ACT).

Input is ``mass``: a groups × genes matrix whose row ``k`` is the attention α summed over the
cells of group ``k`` (for scANNA: the correctly predicted cells of that class).

* ``attention`` ranks each group's genes by that summed attention (the reference behaviour).
* ``tfidf`` down-weights genes that are among the top genes of many groups — the ranking the
  reference computed and then discarded. Definitions, per group ``k`` and gene ``g``:

  - term frequency ``tf[k, g] = mass[k, g] / Σ_g' mass[k, g']`` (the share of the group's
    attention that falls on the gene, so groups of different sizes are comparable);
  - document frequency ``df[g]`` = the number of groups that have ``g`` among their ``top_k``
    genes by ``tf`` (``top_k`` defaults to the number of markers asked for);
  - ``idf[g] = log(K / max(df[g], 1))`` with ``K`` groups, so a gene in every group's top list
    scores 0 and a gene in one group's list (or none) scores ``log K``;
  - rank by ``tf · idf``, ties broken by ``tf`` and then by gene order.

  With a single group every idf is 0 and the ranking falls back to ``tf``, i.e. the attention
  ranking.
"""

from __future__ import annotations

import numpy as np

METHODS = ("attention", "tfidf")


def term_frequency(mass: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (all-zero rows stay zero)."""
    mass = np.asarray(mass, dtype=np.float64)
    totals = mass.sum(axis=1, keepdims=True)
    return np.divide(mass, totals, out=np.zeros_like(mass), where=totals > 0)


def ranked_indices(scores: np.ndarray, n: int, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Per row, the column indices of the ``n`` largest scores (ties: ``tiebreak``, then index)."""
    scores = np.asarray(scores, dtype=np.float64)
    n = max(0, min(int(n), scores.shape[1]))
    columns = np.arange(scores.shape[1])
    out = np.empty((scores.shape[0], n), dtype=np.int64)
    for k, row in enumerate(scores):  # one sort per group, not per cell
        keys = [columns, -row] if tiebreak is None else [columns, -tiebreak[k], -row]
        out[k] = np.lexsort(keys)[:n]
    return out


def tfidf_scores(mass: np.ndarray, top_k: int) -> np.ndarray:
    """``tf · idf`` as defined in the module docstring."""
    tf = term_frequency(mass)
    n_groups = tf.shape[0]
    top = ranked_indices(tf, top_k)
    df = np.zeros(tf.shape[1], dtype=np.int64)
    np.add.at(df, top.ravel(), 1)
    idf = np.log(n_groups / np.maximum(df, 1))
    return tf * idf


def rank_markers(mass: np.ndarray, n: int = 25, method: str = "attention", top_k: int | None = None):
    """``(indices, scores)``: per group the ``n`` best gene indices and the score they were ranked by."""
    if method not in METHODS:
        from cellzoo.errors import ConfigError

        raise ConfigError(f"marker method {method!r} is not one of {METHODS}")
    mass = np.asarray(mass, dtype=np.float64)
    if method == "attention":
        scores = mass
        idx = ranked_indices(scores, n)
    else:
        scores = tfidf_scores(mass, top_k or n)
        idx = ranked_indices(scores, n, tiebreak=term_frequency(mass))
    return idx, np.take_along_axis(scores, idx, axis=1)
