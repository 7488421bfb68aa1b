"""Naming clusters by their marker genes: a marker table and the scoring rule (offline Enrichr stand-in).

**Marker table.** A CSV with one row per (cell type, marker gene) — columns ``cell_type`` and
``gene`` (``marker`` is accepted for ``gene``), optionally ``source``; other columns are kept
but not used. The default is the curated PBMC table shipped with the scdata plugin (``cellzoo_scdata/data``).

**Scoring rule.** For a cluster with ranked marker genes ``g_1 … g_n`` (best first), gene ``g_r``
gets the rank weight ``w_r = (n − r + 1) / n`` (1 for the top gene, 1/n for the last). The score
of cell type ``t`` with listed markers ``M_t`` is the cosine similarity between the weight vector
and the indicator vector of ``M_t``::

    score(c, t) = Σ_{r : g_r ∈ M_t} w_r  /  ( ‖w‖ · √|M_t| )

so it lies in [0, 1], rewards markers found near the top, and does not favour a type just for
listing more genes. ``|M_t|`` counts every listed marker, also those the data lack, so a type
whose markers are mostly unmeasured needs stronger evidence. Gene names are compared
case-insensitively. The cluster takes the best-scoring type; ties go to the type with more
matched markers, then to the table's order. A cluster whose best score is not above
``min_score`` (by default: no marker in common with any type) is ``"unassigned"``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cellzoo.errors import ConfigError, InputError

UNASSIGNED = "unassigned"
DEFAULT_TABLE = "pbmc_markers.csv"


@dataclass(frozen=True)
class MarkerTable:
    """Cell type → marker genes (in table order), with where the table came from."""

    markers: dict[str, list[str]]
    origin: str
    sha256: str = ""
    sources: dict[tuple[str, str], str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_mapping(cls, markers: Mapping[str, Iterable[str]], origin: str = "mapping") -> MarkerTable:
        table: dict[str, list[str]] = {}
        for cell_type, genes in markers.items():
            if isinstance(genes, str):
                raise InputError(f"markers of {cell_type!r} is the string {genes!r}; give a list of gene names")
            unique = list(dict.fromkeys(str(g) for g in genes))
            if unique:
                table[str(cell_type)] = unique
        if not table:
            raise InputError(
                f"the marker table from {origin} lists no marker gene; give at least one cell type with genes"
            )
        digest = hashlib.sha256(repr(sorted(table.items())).encode()).hexdigest()
        return cls(table, origin, digest)

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> MarkerTable:
        import pandas as pd

        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"marker table {path} does not exist; give the path to a CSV with columns cell_type and gene "
                "(one row per marker), or leave marker_table unset for the shipped PBMC table"
            )
        try:
            frame = pd.read_csv(path, dtype=str, comment="#")
        except Exception as exc:  # pandas raises several types for a malformed file
            raise InputError(f"could not read the marker table {path} as CSV ({type(exc).__name__}: {exc})") from exc
        return cls._from_frame(frame, str(path), hashlib.sha256(path.read_bytes()).hexdigest())

    @classmethod
    def _from_frame(cls, frame: Any, origin: str, digest: str) -> MarkerTable:
        columns = {c.strip().lower(): c for c in frame.columns}
        gene_col = columns.get("gene") or columns.get("marker")
        type_col = columns.get("cell_type")
        if type_col is None or gene_col is None:
            raise InputError(
                f"the marker table {origin} has columns {list(frame.columns)}; it needs 'cell_type' and 'gene' "
                "(or 'marker'), one row per marker gene"
            )
        frame = frame.dropna(subset=[type_col, gene_col])
        markers: dict[str, list[str]] = {}
        sources: dict[tuple[str, str], str] = {}
        source_col = columns.get("source")
        for record in frame.to_dict("records"):
            cell_type, gene = str(record[type_col]).strip(), str(record[gene_col]).strip()
            if not cell_type or not gene:
                continue
            genes = markers.setdefault(cell_type, [])
            if gene not in genes:
                genes.append(gene)
            if source_col is not None and isinstance(record[source_col], str):
                sources[(cell_type, gene)] = record[source_col]
        table = cls.from_mapping(markers, origin)
        return cls(table.markers, origin, digest, sources)

    @classmethod
    def default(cls) -> MarkerTable:
        """The curated PBMC marker table (shipped with the scdata plugin, beside the PBMC data it describes)."""
        import pandas as pd

        resource = resources.files("cellzoo_scdata") / "data" / DEFAULT_TABLE
        data = resource.read_bytes()
        with resources.as_file(resource) as path:
            frame = pd.read_csv(path, dtype=str, comment="#")
        return cls._from_frame(frame, f"cellzoo_scdata/data/{DEFAULT_TABLE}", hashlib.sha256(data).hexdigest())

    @classmethod
    def load(cls, table: str | os.PathLike[str] | Mapping[str, Iterable[str]] | MarkerTable | None) -> MarkerTable:
        if table is None:
            return cls.default()
        if isinstance(table, MarkerTable):
            return table
        if isinstance(table, Mapping):
            return cls.from_mapping(table)
        return cls.from_csv(table)

    def to_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "sha256": self.sha256, "cell_types": list(self.markers)}


@dataclass(frozen=True)
class ClusterName:
    """The name given to one cluster, with the evidence."""

    name: str
    score: float
    matched: tuple[str, ...]
    runner_up: str | None = None
    runner_up_score: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": round(float(self.score), 6),
            "matched": list(self.matched),
            "runner_up": self.runner_up,
            "runner_up_score": round(float(self.runner_up_score), 6),
        }


def rank_weights(n: int) -> np.ndarray:
    """``w_r = (n − r + 1) / n`` for ranks ``r = 1 … n``."""
    return (n - np.arange(n)) / n if n > 0 else np.zeros(0)


def score_types(ranked_genes: Sequence[str], table: MarkerTable) -> list[tuple[str, float, tuple[str, ...]]]:
    """``(cell type, score, matched genes)`` for every type of ``table``, in table order."""
    genes = [str(g).upper() for g in ranked_genes]
    w = rank_weights(len(genes))
    norm = float(np.sqrt((w * w).sum()))
    out = []
    for cell_type, markers in table.markers.items():
        wanted = {m.upper() for m in markers}
        hits = [r for r, g in enumerate(genes) if g in wanted]
        score = float(w[hits].sum() / (norm * np.sqrt(len(wanted)))) if hits and norm > 0 else 0.0
        out.append((cell_type, score, tuple(ranked_genes[r] for r in hits)))
    return out


def name_cluster(ranked_genes: Sequence[str], table: MarkerTable, min_score: float = 0.0) -> ClusterName:
    """The best cell type for one cluster's ranked genes, by the rule in the module docstring."""
    scored = score_types(ranked_genes, table)
    # best score, then more matched genes, then table order (sorted is stable)
    order = sorted(range(len(scored)), key=lambda i: (-scored[i][1], -len(scored[i][2])))
    best = scored[order[0]]
    second = scored[order[1]] if len(order) > 1 else None
    runner = (second[0], second[1]) if second is not None and second[1] > 0 else (None, 0.0)
    if best[1] <= min_score:
        # the type that came closest is kept as the runner-up, so the evidence stays visible
        return ClusterName(UNASSIGNED, best[1], (), best[0] if best[1] > 0 else None, best[1])
    return ClusterName(best[0], best[1], best[2], *runner)


def name_clusters(
    markers: Mapping[str, Sequence[str]], table: MarkerTable, min_score: float = 0.0
) -> dict[str, ClusterName]:
    """:func:`name_cluster` for each cluster of ``markers`` (cluster id → ranked genes)."""
    return {str(c): name_cluster(list(genes), table, min_score) for c, genes in markers.items()}
