"""The built-in metrics: classification scores for ``annotate`` (scikit-learn definitions) and
marker precision@k for ``markers``.

The ``markers`` truth is the dataset's: ``adata.uns["cellzoo"]["markers"]`` maps each class (a
value of the label column) to its true marker genes — the simulator's up-regulated genes for
``splat``, a curated literature table for ``pbmc68k_reduced``. Precision@k is plain Python, so
any ranking — attention, coefficients, Wilcoxon scores — is scored without installing the family
that made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .errors import InputError


def _labels(y_true, prediction):
    y_pred = getattr(prediction, "labels", prediction)
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_pred.shape[0]} predictions for {y_true.shape[0]} cells")
    return y_true, y_pred


def accuracy(y_true, prediction) -> float:
    y_true, y_pred = _labels(y_true, prediction)
    return float(np.mean(y_true == y_pred))


def f1_macro(y_true, prediction) -> float:
    from sklearn.metrics import f1_score

    y_true, y_pred = _labels(y_true, prediction)
    return float(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true), zero_division=0))


def f1_weighted(y_true, prediction) -> float:
    from sklearn.metrics import f1_score

    y_true, y_pred = _labels(y_true, prediction)
    return float(f1_score(y_true, y_pred, average="weighted", labels=np.unique(y_true), zero_division=0))


def f1_per_class(y_true, prediction) -> dict[str, float]:
    from sklearn.metrics import f1_score

    y_true, y_pred = _labels(y_true, prediction)
    classes = np.unique(y_true)
    scores = f1_score(y_true, y_pred, average=None, labels=classes, zero_division=0)
    return {str(c): float(s) for c, s in zip(classes, scores, strict=True)}


def f1_median(y_true, prediction) -> float:
    return float(np.median(list(f1_per_class(y_true, prediction).values())))


# -- markers ------------------------------------------------------------------------------------


def true_markers(adata) -> dict[str, list[str]] | None:
    """The markers a dataset declares (``uns["cellzoo"]["markers"]``), as ``{class: [gene, ...]}``; None if none.

    A gene declared twice for a class is kept once, at its first place (the ``true_markers``
    control returns this list as its ranking, and a ranking names each gene once).
    """
    meta = adata.uns.get("cellzoo")
    markers = meta.get("markers") if isinstance(meta, Mapping) else None
    if markers is None:
        return None
    if not isinstance(markers, Mapping):
        raise InputError(
            f'uns["cellzoo"]["markers"] must map each class to its marker genes, got {type(markers).__name__}'
        )
    return {
        str(c): list(dict.fromkeys(str(g) for g in np.atleast_1d(np.asarray(genes)).tolist()))
        for c, genes in markers.items()
    }


def precision_at_k_per_class(
    true_markers: Mapping[str, Iterable[str]], ranked: Mapping[str, Iterable[str]], k: int
) -> dict[str, float]:
    """For each class present in both mappings: the share of its first ``k`` ranked genes that are true markers.

    A ranking names each gene once: repeats are dropped, keeping each gene's first (best) place,
    before the top ``k`` are taken, so a gene listed twice counts once. The denominator is ``k``
    even when a class lists fewer than ``k`` distinct genes (an empty slot is a miss), so a method
    cannot score well by returning short or repeated lists. Classes are matched by name (as
    strings); classes only one side has are left out.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k={k!r} must be a positive integer (how many top genes per class to score)")
    for name, value in (("true_markers", true_markers), ("ranked", ranked)):
        if not isinstance(value, Mapping):
            raise InputError(
                f"{name} must map each class to its genes ({{class: [gene, ...]}}), got {type(value).__name__}; "
                "marker precision@k compares gene rankings, not label predictions"
            )
    truth = {str(c): {str(g) for g in genes} for c, genes in true_markers.items()}
    out = {}
    for cls, genes in ranked.items():
        cls = str(cls)
        if cls not in truth:
            continue
        if isinstance(genes, str):
            raise InputError(f"ranked[{cls!r}] is the string {genes!r}; give a list of gene names")
        top = list(dict.fromkeys(str(g) for g in genes))[:k]  # first occurrences, in rank order
        out[cls] = sum(g in truth[cls] for g in top) / k
    return out


def marker_precision_at_k(
    true_markers: Mapping[str, Iterable[str]], ranked: Mapping[str, Iterable[str]], k: int = 10
) -> float:
    """Mean over the classes both sides name of :func:`precision_at_k_per_class`.

    A gene a ranking repeats counts once (its first place); see :func:`precision_at_k_per_class`.
    No shared class is an error: it usually means the class names of the two sides differ.
    """
    per_class = precision_at_k_per_class(true_markers, ranked, k)
    if not per_class:
        raise InputError(
            f"no class is named in both true_markers ({sorted(map(str, true_markers))[:5]}) and ranked "
            f"({sorted(map(str, ranked))[:5]}); match the class names before scoring"
        )
    return sum(per_class.values()) / len(per_class)


def marker_precision_at_10(true_markers, ranked) -> float:
    return marker_precision_at_k(true_markers, ranked, k=10)


def marker_precision_at_20(true_markers, ranked) -> float:
    return marker_precision_at_k(true_markers, ranked, k=20)
