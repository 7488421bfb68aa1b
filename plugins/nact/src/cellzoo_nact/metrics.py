"""Metrics of the ``discover`` task: agreement of clusters (ARI, NMI) and of names (accuracy) with the truth.

``prediction`` is a :class:`~cellzoo_nact.discovery.Discovery` or a plain array: ARI and NMI
read its cluster ids, ``name_accuracy`` its per-cell names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from cellzoo.errors import InputError

from .discovery import clusters_of, names_of
from .naming import UNASSIGNED


def _pair(y_true, y_pred: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(str)
    if y_true.shape != y_pred.shape:
        raise InputError(f"{y_pred.shape[0]} predicted {what} for {y_true.shape[0]} cells; give one per cell")
    return y_true, y_pred


def ari(y_true, prediction) -> float:
    """Adjusted Rand index between the true labels and the clusters (scikit-learn)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(*_pair(y_true, clusters_of(prediction), "clusters")))


def nmi(y_true, prediction) -> float:
    """Normalised mutual information (arithmetic mean normalisation, scikit-learn's default)."""
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(*_pair(y_true, clusters_of(prediction), "clusters")))


def normalise_name(name: str) -> str:
    """Case-folded, with runs of spaces, '_' and '.' collapsed to one space ('+', '-' and '/' are meaningful)."""
    return re.sub(r"[\s_.]+", " ", str(name)).strip().casefold()


def name_accuracy(y_true, prediction, aliases: Mapping[str, str] | None = None) -> float:
    """Share of cells whose cluster name is their true label, after name matching.

    Names match when equal after :func:`normalise_name`; ``aliases`` maps predicted names to the
    truth's vocabulary first (e.g. ``{"NK cell": "CD56+ NK"}``). ``"unassigned"`` never matches.
    """
    y_true, names = _pair(y_true, names_of(prediction), "names")
    lookup = {normalise_name(k): normalise_name(v) for k, v in (aliases or {}).items()}
    unique_pred, inverse = np.unique(names, return_inverse=True)
    mapped = np.asarray([lookup.get(normalise_name(n), normalise_name(n)) for n in unique_pred], dtype=object)[inverse]
    unique_true, inverse_true = np.unique(y_true, return_inverse=True)
    truth = np.asarray([normalise_name(t) for t in unique_true], dtype=object)[inverse_true]
    return float(np.mean((mapped == truth) & (mapped != UNASSIGNED)))
