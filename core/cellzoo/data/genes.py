"""Gene manifests and the alignment of query genes to a model's genes.

Every trained model records the ordered genes it was trained on (a :class:`GeneManifest`, with
the identifier namespace and species). Query data is aligned to it by :func:`align_genes`, which
matches exactly, then ignoring Ensembl version suffixes (``ENSG00000141510.17``), then ignoring
case for symbols, and reports what matched, what is missing and what is extra. Too little
overlap is an error that says why (symbols vs Ensembl IDs, human vs mouse) and how to fix it —
the failure that CellTypist (#26, #55) and helical (#418) users meet as silently bad labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import ArtifactError, ConfigError, GeneAlignmentError, InputError

NAMESPACES = ("symbol", "ensembl", "mixed", "unknown")

#: a stable Ensembl gene ID: ENS + species code + G + 11 digits (+ version); so ``ENSA``, the gene
#: symbol, is not an ID, and ``ENSG00000141510.17`` is one
ENSEMBL_GENE = re.compile(r"^ENS([A-Z]*)G\d{11}(\.\d+)?$")
_VERSION = re.compile(r"\.\d+$")

#: Ensembl species codes (the letters between ENS and G) of the species single-cell data comes from
ENSEMBL_SPECIES = {
    "": "human",
    "MUS": "mouse",
    "RNO": "rat",
    "DAR": "zebrafish",
    "MMU": "macaque",
    "SSC": "pig",
    "BTA": "cow",
    "GAL": "chicken",
    "CAF": "dog",
    "PTR": "chimpanzee",
}

#: below this many symbols the case of gene symbols says nothing about the species
_MIN_NAMES_FOR_CASE_GUESS = 50


def _names(names: Iterable[Any]) -> list[str]:
    if isinstance(names, str):
        raise InputError(f"gene names must be a list of names, got the single string {names!r}")
    return [str(n) for n in names]


def _is_ensembl(names: list[str]) -> np.ndarray:
    return np.fromiter((ENSEMBL_GENE.match(n) is not None for n in names), dtype=bool, count=len(names))


def _looks_like_symbol(name: str) -> bool:
    # mouse symbols may start with a digit (0610005C13Rik); all-digit names are Entrez IDs
    return bool(name) and not name.isdigit() and any(c.isalpha() for c in name) and not any(c.isspace() for c in name)


def detect_namespace(names: Iterable[Any]) -> str:
    """``"ensembl"``, ``"symbol"``, ``"mixed"`` (both) or ``"unknown"`` (e.g. Entrez IDs, empty)."""
    names = _names(names)
    if not names:
        return "unknown"
    ens = _is_ensembl(names)
    if ens.all():
        return "ensembl"
    if ens.any():
        return "mixed"
    symbols = sum(_looks_like_symbol(n) for n in names)
    return "symbol" if symbols >= 0.9 * len(names) else "unknown"


def guess_species(names: Iterable[Any]) -> str | None:
    """The species the gene names come from, or ``None`` when they do not say clearly.

    Ensembl IDs name it (ENSG human, ENSMUSG mouse, …). Symbol case is only a weak hint (human
    symbols are upper case, mouse ones capitalised), used with many names and a clear majority.
    """
    names = _names(names)
    ens = _is_ensembl(names)
    if ens.any():
        codes = {ENSEMBL_GENE.match(n).group(1) for n, e in zip(names, ens) if e}
        if len(codes) == 1:
            return ENSEMBL_SPECIES.get(codes.pop())
        return None
    letters = [n for n in names if any(c.isalpha() for c in n)]
    if len(letters) < _MIN_NAMES_FOR_CASE_GUESS:
        return None
    upper = sum(n.upper() == n for n in letters)
    capitalised = sum(n[0].isupper() and any(c.islower() for c in n[1:]) for n in letters if n[0].isalpha())
    if upper >= 0.95 * len(letters):
        return "human"
    if capitalised >= 0.9 * len(letters):
        return "mouse"
    return None


@dataclass(frozen=True)
class GeneManifest:
    """The ordered genes a model consumes, their identifier namespace and species."""

    genes: tuple[str, ...]
    namespace: str = "unknown"
    species: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "genes", tuple(_names(self.genes)))
        if self.namespace not in NAMESPACES:
            raise ConfigError(f"gene namespace {self.namespace!r} is not one of {', '.join(NAMESPACES)}")

    @classmethod
    def from_names(cls, names: Iterable[Any], species: str | None = None) -> GeneManifest:
        names = _names(names)
        return cls(tuple(names), detect_namespace(names), species or guess_species(names))

    def __len__(self) -> int:
        return len(self.genes)

    def to_json(self) -> dict[str, Any]:
        return {"genes": list(self.genes), "namespace": self.namespace, "species": self.species}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GeneManifest:
        if not isinstance(data, Mapping) or not isinstance(data.get("genes"), list):
            raise ArtifactError(
                "the gene manifest must be a JSON object with a 'genes' list (and 'namespace', 'species'); "
                f"got {type(data).__name__}"
            )
        unknown = sorted(set(data) - {"genes", "namespace", "species"})
        if unknown:
            raise ArtifactError(f"the gene manifest has unknown keys {unknown}")
        genes = data["genes"]
        if not all(isinstance(g, str) for g in genes):
            raise ArtifactError("the gene manifest's 'genes' must all be strings")
        try:
            return cls(tuple(genes), data.get("namespace") or detect_namespace(genes), data.get("species"))
        except ConfigError as exc:
            raise ArtifactError(f"the gene manifest is invalid: {exc}") from exc


@dataclass(frozen=True)
class AlignmentReport:
    """What :func:`align_genes` found; ``summary()`` is the line a user reads."""

    n_model: int
    n_query: int
    matched: int
    missing: tuple[str, ...]
    extra: int
    extra_examples: tuple[str, ...]
    fraction: float
    query_namespace: str
    model_namespace: str
    duplicates: tuple[str, ...] = ()
    #: matches found only after removing Ensembl version suffixes / only ignoring case
    version_stripped: int = 0
    case_insensitive: int = 0
    query_species: str | None = None
    model_species: str | None = None

    def summary(self) -> str:
        text = f"matched {self.matched}/{self.n_model} model genes ({self.fraction:.1%})"
        how = []
        if self.version_stripped:
            how.append(f"{self.version_stripped} ignoring Ensembl versions")
        if self.case_insensitive:
            how.append(f"{self.case_insensitive} ignoring case")
        if how:
            text += f" ({', '.join(how)})"
        if self.missing:
            text += f"; {len(self.missing)} missing, zero-filled (e.g. {_examples(self.missing)})"
        if self.extra:
            text += f"; {self.extra} query genes not used by the model (e.g. {_examples(self.extra_examples)})"
        if self.duplicates:
            text += f"; {len(self.duplicates)} duplicated query names, first column used (e.g. {_examples(self.duplicates)})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "n_model": self.n_model,
            "n_query": self.n_query,
            "matched": self.matched,
            "fraction": self.fraction,
            "missing": list(self.missing),
            "extra": self.extra,
            "extra_examples": list(self.extra_examples),
            "duplicates": list(self.duplicates),
            "version_stripped": self.version_stripped,
            "case_insensitive": self.case_insensitive,
            "query_namespace": self.query_namespace,
            "model_namespace": self.model_namespace,
            "query_species": self.query_species,
            "model_species": self.model_species,
        }


def _examples(names: Iterable[str], k: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:k]) + (", …" if len(names) > k else "")


@dataclass(frozen=True)
class GeneAlignment:
    """For each manifest gene, the query column that holds it (``-1``: missing, zero-filled)."""

    index: np.ndarray
    report: AlignmentReport
    n_query: int = field(default=-1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", np.asarray(self.index, dtype=np.int64))
        if self.n_query < 0:
            object.__setattr__(self, "n_query", self.report.n_query)

    @property
    def is_identity(self) -> bool:
        return self.n_query == len(self.index) and bool(np.array_equal(self.index, np.arange(self.n_query)))


def _match_stage(index: np.ndarray, model_keys: np.ndarray, query_keys: np.ndarray, free: np.ndarray) -> int:
    """Fill ``index`` for unmatched model genes whose key equals a still-unused query column's key.

    ``None`` keys never match. Among query columns with the same key the first wins. Returns the
    number of new matches; ``free`` (unused query columns) is updated in place.
    """
    want = np.flatnonzero((index < 0) & pd.notna(model_keys))
    cand = np.flatnonzero(free & pd.notna(query_keys))
    if not len(want) or not len(cand):
        return 0
    keys = pd.Index(query_keys[cand])
    first = ~keys.duplicated(keep="first")
    lookup = pd.Index(keys[first])
    hits = lookup.get_indexer(model_keys[want])
    ok = hits >= 0
    cols = cand[first][hits[ok]]
    index[want[ok]] = cols
    free[cols] = False
    return int(ok.sum())


def _strip_versions(names: np.ndarray, is_ens: np.ndarray) -> np.ndarray:
    keys = np.full(len(names), None, dtype=object)
    keys[is_ens] = [_VERSION.sub("", n) for n in names[is_ens]]
    return keys


def _upper_symbols(names: np.ndarray, is_ens: np.ndarray) -> np.ndarray:
    keys = np.full(len(names), None, dtype=object)
    keys[~is_ens] = [n.upper() for n in names[~is_ens]]
    return keys


def align_genes(query_names: Iterable[Any], manifest: GeneManifest, min_overlap: float = 0.5) -> GeneAlignment:
    """Map the model's genes onto the query's columns and report; too little overlap is an error.

    Matching, each stage only for genes still unmatched: exact names; Ensembl IDs with version
    suffixes removed on both sides; symbols ignoring case. A query name that occurs more than once
    is matched to its first column and reported in ``duplicates``.
    """
    if not 0.0 <= float(min_overlap) <= 1.0:
        raise ConfigError(f"min_overlap must be a fraction between 0 and 1, got {min_overlap!r}")
    query = np.asarray(_names(query_names), dtype=object)
    model = np.asarray(manifest.genes, dtype=object)
    index = np.full(len(model), -1, dtype=np.int64)
    free = np.ones(len(query), dtype=bool)

    q_ens, m_ens = _is_ensembl(list(query)), _is_ensembl(list(model))
    exact = _match_stage(index, model, query, free)
    stripped = _match_stage(index, _strip_versions(model, m_ens), _strip_versions(query, q_ens), free)
    cased = _match_stage(index, _upper_symbols(model, m_ens), _upper_symbols(query, q_ens), free)

    q_index = pd.Index(query)
    duplicates = tuple(pd.unique(query[q_index.duplicated(keep="first")]))
    dup_cols = q_index.duplicated(keep="first")
    matched = exact + stripped + cased
    extra_cols = np.flatnonzero(free & ~dup_cols)
    report = AlignmentReport(
        n_model=len(model),
        n_query=len(query),
        matched=matched,
        missing=tuple(model[index < 0]),
        extra=len(extra_cols),
        extra_examples=tuple(query[extra_cols[:10]]),
        fraction=matched / len(model) if len(model) else 0.0,
        query_namespace=detect_namespace(query),
        model_namespace=manifest.namespace,
        duplicates=duplicates,
        version_stripped=stripped,
        case_insensitive=cased,
        query_species=guess_species(query),
        model_species=manifest.species,
    )
    if report.fraction < min_overlap:
        error = GeneAlignmentError(_overlap_message(report, min_overlap, query))
        error.report = report
        raise error
    return GeneAlignment(index=index, report=report, n_query=len(query))


def _hint(report: AlignmentReport) -> str:
    model_ns, query_ns = report.model_namespace, report.query_namespace
    if model_ns == "symbol" and query_ns in ("ensembl", "mixed"):
        return (
            "the model uses gene symbols but your var_names look like Ensembl IDs: pass --gene-column with the "
            "column of adata.var that holds symbols (in Python: adata.var_names = adata.var['gene_symbols'])"
        )
    if model_ns == "ensembl" and query_ns in ("symbol", "mixed"):
        return (
            "the model uses Ensembl gene IDs but your var_names look like gene symbols: pass --gene-column with "
            "the column of adata.var that holds Ensembl IDs (in Python: adata.var_names = adata.var['gene_ids'])"
        )
    if report.model_species and report.query_species and report.model_species != report.query_species:
        return (
            f"the model was trained on {report.model_species} genes but your genes look like "
            f"{report.query_species} ones: use a model trained on {report.query_species} data, or map the genes "
            "to orthologs first"
        )
    return (
        "check that adata.var_names hold the same kind of gene identifiers as the model (pass --gene-column "
        "to use another column of adata.var)"
    )


def _overlap_message(report: AlignmentReport, min_overlap: float, query: np.ndarray) -> str:
    return (
        f"only {report.matched} of the model's {report.n_model} genes ({report.fraction:.1%}) are in your data "
        f"({report.n_query} genes); at least {min_overlap:.0%} are needed. Model genes ({report.model_namespace}"
        f"{', ' + report.model_species if report.model_species else ''}) missing from your data: "
        f"{_examples(report.missing)}; your genes ({report.query_namespace}) look like: {_examples(query[:5])}. "
        f"Likely cause: {_hint(report)}"
    )


def apply_alignment(X: Any, alignment: GeneAlignment) -> Any:
    """``X`` (cells × query genes) reordered to the manifest's genes, missing genes as zeros.

    Sparse stays sparse (CSR); one vectorised fancy-indexing step, no loop over cells or genes.
    """
    if X.shape[1] != alignment.n_query:
        raise InputError(
            f"the matrix has {X.shape[1]} genes but the alignment was computed for {alignment.n_query}; "
            "align the var_names of this same AnnData"
        )
    if alignment.is_identity:
        return X
    index = alignment.index
    present = index >= 0
    n_model = len(index)
    if sp.issparse(X):
        X = X.tocsr()
        sub = X[:, index[present]]
        sub.sort_indices()
        # a monotone map from kept columns to manifest positions keeps the indices sorted
        positions = np.flatnonzero(present).astype(sub.indices.dtype, copy=False)
        return type(sub)((sub.data, positions[sub.indices], sub.indptr), shape=(X.shape[0], n_model))
    X = np.asarray(X)
    out = np.zeros((X.shape[0], n_model), dtype=X.dtype)
    out[:, present] = X[:, index[present]]
    return out
