"""The marker table and the scoring rule that names clusters."""

from __future__ import annotations

import numpy as np
import pytest

from cellzoo.errors import ConfigError, InputError
from cellzoo_nact.naming import UNASSIGNED, MarkerTable, name_cluster, name_clusters, rank_weights, score_types

TABLE = MarkerTable.from_mapping({"B": ["MS4A1", "CD79A", "CD79B", "CD19"], "NK": ["GNLY", "NKG7"], "T": ["CD3D"]})


def test_score_is_the_cosine_of_rank_weights_and_the_marker_indicator():
    ranked = ["CD79A", "X", "GNLY", "ms4a1"]
    w = rank_weights(4)
    np.testing.assert_allclose(w, [1.0, 0.75, 0.5, 0.25])
    scores = {t: (s, m) for t, s, m in score_types(ranked, TABLE)}
    norm = np.sqrt((w**2).sum())
    assert scores["B"][0] == pytest.approx((1.0 + 0.25) / (norm * 2))  # CD79A and ms4a1 (case-insensitive)
    assert scores["B"][1] == ("CD79A", "ms4a1")
    assert scores["NK"][0] == pytest.approx(0.5 / (norm * np.sqrt(2)))
    assert scores["T"][0] == 0.0
    named = name_cluster(ranked, TABLE)
    assert (named.name, named.runner_up) == ("B", "NK")


def test_no_overlap_or_a_low_score_leaves_the_cluster_unassigned():
    assert name_cluster(["A", "B"], TABLE).name == UNASSIGNED
    weak = name_cluster(["X", "X2", "X3", "CD3D"], TABLE, min_score=0.5)
    assert weak.name == UNASSIGNED and weak.runner_up == "T" and 0 < weak.score <= 0.5


def test_ties_go_to_the_table_order_and_each_cluster_is_named_on_its_own():
    tied = MarkerTable.from_mapping({"first": ["A", "Q"], "second": ["A", "R"]})
    assert name_cluster(["A", "B"], tied).name == "first"
    assert (
        name_cluster(["A", "B"], MarkerTable.from_mapping({"second": ["A", "R"], "first": ["A", "Q"]})).name == "second"
    )
    table = MarkerTable.from_mapping({"x": ["A"], "y": ["B"]})
    named = name_clusters({"0": ["A", "B"], 1: ["B", "A"]}, table)
    assert {c: n.name for c, n in named.items()} == {"0": "x", "1": "y"}


def test_csv_tables_with_gene_or_marker_columns(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("Cell_Type,marker,source\nB,MS4A1,x\nB,CD79A,y\nB,MS4A1,dup\nNK,GNLY,z\n")
    table = MarkerTable.from_csv(path)
    assert table.markers == {"B": ["MS4A1", "CD79A"], "NK": ["GNLY"]}
    assert table.sources[("B", "CD79A")] == "y"
    assert len(table.sha256) == 64 and table.origin == str(path)
    bad = tmp_path / "bad.csv"
    bad.write_text("type,gene\nB,MS4A1\n")
    with pytest.raises(InputError, match="needs 'cell_type' and 'gene'"):
        MarkerTable.from_csv(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        MarkerTable.from_csv(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="lists no marker gene"):
        MarkerTable.from_mapping({"B": []})


def test_the_shipped_pbmc_table_is_sourced_and_says_which_genes_pbmc68k_has():
    from importlib import resources

    import pandas as pd
    import scanpy as sc

    table = MarkerTable.default()
    assert {"CD14+ Monocyte", "CD19+ B", "CD56+ NK", "Dendritic", "CD34+", "CD8+ Cytotoxic T"} <= set(table.markers)
    assert {"CD3D", "CD3E"} <= set(table.markers["CD8+ Cytotoxic T"])
    assert {"NKG7", "GNLY", "KLRD1"} <= set(table.markers["CD56+ NK"])
    frame = pd.read_csv(resources.files("cellzoo_scdata") / "data" / "pbmc_markers.csv")
    assert set(frame["source"].str.split(";").explode()) == {"seurat_pbmc3k", "cd_antigen", "azimuth_pbmc"}
    genes = set(sc.datasets.pbmc68k_reduced().raw.var_names)
    assert (frame["in_pbmc68k_reduced"] == "yes").tolist() == frame["gene"].isin(genes).tolist()
    # every cell-type label of pbmc68k_reduced is a type of the table (so names can match labels)
    labels = set(sc.datasets.pbmc68k_reduced().obs["bulk_labels"].astype(str))
    assert labels <= set(table.markers)
