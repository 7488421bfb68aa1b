"""Gene manifests, namespace/species detection and alignment of query genes to a model's genes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cellzoo.data.genes import (
    ENSEMBL_GENE,
    GeneAlignment,
    GeneManifest,
    align_genes,
    apply_alignment,
    detect_namespace,
    guess_species,
)
from cellzoo.errors import ArtifactError, ConfigError, GeneAlignmentError, InputError

HUMAN = [f"GENE{i}" for i in range(60)]
MOUSE = [f"Gene{i}" for i in range(60)]


def ens(i: int, prefix: str = "ENSG", version: int | None = None) -> str:
    return f"{prefix}{i:011d}" + (f".{version}" if version is not None else "")


# -- namespaces and species ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "is_id"),
    [
        ("ENSG00000141510", True),
        ("ENSG00000141510.17", True),
        ("ENSMUSG00000059552", True),
        ("ENSA", False),  # the gene symbol (endosulfine alpha), helical#418's first bug
        ("ENSAP2", False),
        ("ENSG0000014151", False),  # 10 digits
        ("ENST00000269305", False),  # a transcript, not a gene
        ("ensg00000141510", False),
    ],
)
def test_ensembl_gene_pattern(name, is_id):
    assert (ENSEMBL_GENE.match(name) is not None) is is_id


def test_detect_namespace():
    assert detect_namespace(["CD3E", "ACTB", "ENSA", "HLA-A", "MT-CO1"]) == "symbol"
    assert detect_namespace([ens(1), ens(2, version=4)]) == "ensembl"
    assert detect_namespace(["CD3E", ens(1)]) == "mixed"
    assert detect_namespace(["1017", "7157", "672"]) == "unknown"  # Entrez IDs
    assert detect_namespace([]) == "unknown"
    assert detect_namespace(["0610005C13Rik", "Cd3e", "Actb"]) == "symbol"


def test_guess_species():
    assert guess_species([ens(i) for i in range(3)]) == "human"
    assert guess_species([ens(i, "ENSMUSG") for i in range(3)]) == "mouse"
    assert guess_species([ens(1), ens(2, "ENSMUSG")]) is None
    assert guess_species(HUMAN) == "human"
    assert guess_species(MOUSE) == "mouse"
    assert guess_species(HUMAN[:10]) is None  # too few symbols to say
    assert guess_species(HUMAN[:30] + MOUSE[:30]) is None


def test_manifest_from_names_and_json_round_trip():
    m = GeneManifest.from_names([ens(i, "ENSMUSG", version=2) for i in range(4)])
    assert (m.namespace, m.species, len(m)) == ("ensembl", "mouse", 4)
    assert GeneManifest.from_json(m.to_json()) == m
    assert GeneManifest.from_names(["CD3E", "ACTB"], species="human").species == "human"
    assert GeneManifest.from_names(["CD3E", "ACTB"]).species is None


@pytest.mark.parametrize(
    "content",
    [{"namespace": "symbol"}, {"genes": "CD3E"}, {"genes": ["A", 3]}, {"genes": ["A"], "namespace": "entrez"}, []],
)
def test_manifest_from_bad_json(content):
    with pytest.raises(ArtifactError, match="gene manifest"):
        GeneManifest.from_json(content)


# -- alignment ------------------------------------------------------------------------------------


def test_reordered_genes_are_aligned_to_manifest_order():
    manifest = GeneManifest.from_names(["A1", "B2", "C3", "D4"])
    query = ["C3", "A1", "D4", "B2"]
    alignment = align_genes(query, manifest)
    np.testing.assert_array_equal(alignment.index, [1, 3, 0, 2])
    X = np.array([[3, 1, 4, 2], [30, 10, 40, 20]], dtype=np.float32)
    np.testing.assert_array_equal(apply_alignment(X, alignment), [[1, 2, 3, 4], [10, 20, 30, 40]])
    assert alignment.report.fraction == 1.0 and not alignment.report.missing


def test_identity_alignment_returns_the_same_matrix():
    manifest = GeneManifest.from_names(["A1", "B2"])
    X = sp.csr_matrix(np.eye(2, dtype=np.float32))
    assert apply_alignment(X, align_genes(["A1", "B2"], manifest)) is X


def test_missing_genes_are_zero_filled_and_reported():
    manifest = GeneManifest.from_names(["A1", "B2", "C3", "D4"])
    alignment = align_genes(["D4", "X9", "A1", "B2", "Y8"], manifest)
    report = alignment.report
    assert report.missing == ("C3",)
    assert (report.matched, report.n_model, report.n_query, report.extra) == (3, 4, 5, 2)
    assert report.extra_examples == ("X9", "Y8")
    assert report.fraction == pytest.approx(0.75)
    X = np.arange(1, 11, dtype=np.float32).reshape(2, 5)
    np.testing.assert_array_equal(apply_alignment(X, alignment), [[3, 4, 0, 1], [8, 9, 0, 6]])
    summary = report.summary()
    assert "matched 3/4 model genes (75.0%)" in summary
    assert "1 missing, zero-filled (e.g. C3)" in summary
    assert "2 query genes not used" in summary


def test_ensembl_version_suffixes_are_ignored_on_both_sides():
    manifest = GeneManifest.from_names([ens(1, version=3), ens(2), ens(3, version=1)])
    query = [ens(3, version=7), ens(1, version=3), ens(2, version=12)]
    alignment = align_genes(query, manifest)
    np.testing.assert_array_equal(alignment.index, [1, 2, 0])
    assert alignment.report.version_stripped == 2
    assert "2 ignoring Ensembl versions" in alignment.report.summary()


def test_ensa_the_symbol_is_matched_as_a_symbol():
    manifest = GeneManifest.from_names(["ENSA", "ACTB", "CD3E"])
    assert manifest.namespace == "symbol"
    alignment = align_genes(["cd3e", "ENSA", "ACTB", "ENSA.1"], manifest)
    np.testing.assert_array_equal(alignment.index, [1, 2, 0])
    assert alignment.report.query_namespace == "symbol"
    assert alignment.report.version_stripped == 0  # "ENSA.1" is not an ID: no version stripped


def test_case_insensitive_symbols_come_after_exact_matches():
    manifest = GeneManifest.from_names(["CD3E", "Actb"])
    alignment = align_genes(["cd3e", "CD3E", "ACTB"], manifest)
    np.testing.assert_array_equal(alignment.index, [1, 2])
    assert alignment.report.case_insensitive == 1
    assert alignment.report.extra == 1


def test_duplicated_query_names_use_the_first_column_and_are_reported():
    manifest = GeneManifest.from_names(["A1", "B2"])
    alignment = align_genes(["B2", "A1", "B2", "A1", "C3"], manifest)
    np.testing.assert_array_equal(alignment.index, [1, 0])
    assert alignment.report.duplicates == ("B2", "A1")
    assert alignment.report.extra == 1  # C3; the duplicate columns are not counted as extra
    assert "2 duplicated query names, first column used" in alignment.report.summary()


def test_symbols_model_with_ensembl_query_says_to_pass_the_symbol_column():
    manifest = GeneManifest.from_names(["CD3E", "ACTB", "MS4A1", "LYZ"])
    with pytest.raises(GeneAlignmentError) as info:
        align_genes([ens(i) for i in range(10)], manifest)
    message = str(info.value)
    assert "only 0 of the model's 4 genes (0.0%)" in message
    assert "(10 genes); at least 50% are needed" in message
    assert "the model uses gene symbols but your var_names look like Ensembl IDs" in message
    assert "--gene-column" in message
    assert "CD3E, ACTB, MS4A1, LYZ" in message  # examples of missing genes
    assert info.value.report.query_namespace == "ensembl"
    assert isinstance(info.value, InputError)


def test_ensembl_model_with_symbol_query_says_to_pass_the_id_column():
    manifest = GeneManifest.from_names([ens(i) for i in range(4)])
    with pytest.raises(GeneAlignmentError, match="the model uses Ensembl gene IDs but your var_names look like gene"):
        align_genes(["CD3E", "ACTB", "LYZ"], manifest)


def test_species_mismatch_is_named():
    manifest = GeneManifest.from_names([ens(i) for i in range(4)])
    with pytest.raises(GeneAlignmentError, match="trained on human genes but your genes look like mouse"):
        align_genes([ens(i, "ENSMUSG") for i in range(4)], manifest)


def test_min_overlap_threshold():
    manifest = GeneManifest.from_names(["A1", "B2", "C3", "D4"])
    assert align_genes(["A1", "B2", "Z0"], manifest, min_overlap=0.5).report.matched == 2
    with pytest.raises(GeneAlignmentError, match=r"only 2 of the model's 4 genes.*at least 60%"):
        align_genes(["A1", "B2", "Z0"], manifest, min_overlap=0.6)
    # controls accept any genes at all
    none = align_genes(["Z0", "Z1"], manifest, min_overlap=0.0)
    np.testing.assert_array_equal(apply_alignment(np.ones((2, 2)), none), np.zeros((2, 4)))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        align_genes(["A1"], manifest, min_overlap=50)


@pytest.mark.parametrize("to_matrix", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
def test_sparse_input_stays_sparse_and_matches_dense(to_matrix):
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(40)]
    manifest = GeneManifest.from_names([*rng.permutation(genes)[:30].tolist(), "MISSING1", "MISSING2"])
    alignment = align_genes(genes, manifest)
    dense = rng.poisson(0.5, size=(25, 40)).astype(np.float32)
    out = apply_alignment(to_matrix(dense), alignment)
    assert sp.issparse(out) and out.format == "csr" and out.shape == (25, 32)
    assert out.has_sorted_indices
    np.testing.assert_array_equal(out.toarray(), apply_alignment(dense, alignment))
    np.testing.assert_array_equal(out.toarray()[:, :30], dense[:, alignment.index[:30]])
    assert not out.toarray()[:, 30:].any()


def test_apply_alignment_checks_the_number_of_columns():
    alignment = align_genes(["A1", "B2"], GeneManifest.from_names(["A1", "B2"]))
    with pytest.raises(InputError, match="has 3 genes but the alignment was computed for 2"):
        apply_alignment(np.zeros((1, 3)), alignment)


def test_alignment_of_many_genes_is_vectorised_and_exact():
    rng = np.random.default_rng(1)
    genes = [ens(i, version=1) for i in range(20000)]
    manifest = GeneManifest.from_names([ens(i) for i in rng.permutation(20000)[:5000]])
    alignment = align_genes(genes, manifest)
    assert isinstance(alignment, GeneAlignment)
    assert alignment.report.matched == 5000 and alignment.report.version_stripped == 5000
    expected = [int(g.split(".")[0][4:]) for g in manifest.genes]
    np.testing.assert_array_equal(alignment.index, expected)
    report = alignment.report.to_json()
    assert report["extra"] == 15000 and report["model_species"] == "human"
