"""Classification metrics for the ``annotate`` task (scikit-learn definitions)."""

from __future__ import annotations

import numpy as np


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
