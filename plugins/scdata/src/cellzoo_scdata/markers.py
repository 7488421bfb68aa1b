"""Marker precision@k: how many of a method's top-k genes per class are true markers.

Lives beside the simulator because the simulator is what makes the ground truth
(``uns["splat"]["markers"]``), and it is numpy-free plain Python so that any annotate method —
scANNA's attention, a logistic regression's coefficients, scanpy's ``rank_genes_groups`` — can be
scored without installing a model family it does not use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cellzoo.errors import InputError


def precision_at_k_per_class(
    true_markers: Mapping[str, Iterable[str]], ranked: Mapping[str, Iterable[str]], k: int
) -> dict[str, float]:
    """For each class present in both mappings: the share of its first ``k`` ranked genes that are true markers.

    The denominator is ``k`` even when a class lists fewer than ``k`` genes (an empty slot is a
    miss), so a method cannot score well by returning short lists. Classes are matched by name
    (as strings); classes only one side has are left out.
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
        top = [str(g) for g in list(genes)[:k]]
        out[cls] = sum(g in truth[cls] for g in top) / k
    return out


def marker_precision_at_k(
    true_markers: Mapping[str, Iterable[str]], ranked: Mapping[str, Iterable[str]], k: int = 10
) -> float:
    """Mean over the classes both sides name of :func:`precision_at_k_per_class`.

    ``true_markers`` maps class → its true marker genes (e.g. ``uns["splat"]["markers"]`` or a
    curated table); ``ranked`` maps class → genes ranked best first. No shared class is an error:
    it usually means the class names of the two sides differ.
    """
    per_class = precision_at_k_per_class(true_markers, ranked, k)
    if not per_class:
        raise InputError(
            f"no class is named in both true_markers ({sorted(map(str, true_markers))[:5]}) and ranked "
            f"({sorted(map(str, ranked))[:5]}); match the class names before scoring"
        )
    return sum(per_class.values()) / len(per_class)
