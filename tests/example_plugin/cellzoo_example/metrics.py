"""Balanced accuracy: the mean over true classes of the share of their cells labelled right."""

from __future__ import annotations

import numpy as np


def balanced_accuracy(y_true, prediction) -> float:
    y_pred = np.asarray(getattr(prediction, "labels", prediction)).astype(str)
    y_true = np.asarray(y_true).astype(str)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_pred.shape[0]} predictions for {y_true.shape[0]} cells")
    classes, codes = np.unique(y_true, return_inverse=True)
    hits = np.bincount(codes, weights=(y_true == y_pred).astype(float), minlength=len(classes))
    return float(np.mean(hits / np.bincount(codes, minlength=len(classes))))
