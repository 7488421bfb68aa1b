"""N-ACT end to end on tiny simulated data: outputs, naming, prediction, persistence, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cellzoo
from cellzoo.errors import ConfigError, GeneAlignmentError, InputError, NotFittedError
from cellzoo_nact.metrics import ari
from cellzoo_nact.naming import MarkerTable, name_clusters

from .conftest import TINY

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_fit_finds_the_groups_and_names_every_cluster_by_its_markers(fitted, cells):
    result = fitted.fit_result
    assert ari(cells.obs["group"].to_numpy(), result) > 0.95
    assert result.source.endswith("clustering") and result.proba is None
    assert set(fitted.classes) == set(result.clusters) == set(fitted.cluster_names)
    # the names are the scoring rule applied to the attention markers, with the shipped PBMC table
    expected = name_clusters(fitted.cluster_markers, MarkerTable.default())
    assert {c: n.name for c, n in expected.items()} == fitted.names
    for genes in fitted.cluster_markers.values():
        assert 0 < len(genes) <= TINY["n_markers"] and set(genes) <= set(cells.var_names)
    # every cell carries its cluster's name
    for cluster, name in fitted.names.items():
        assert set(result.labels[result.clusters == cluster]) == {name}
    table = fitted.cluster_table()
    assert table["n_cells"].sum() == cells.n_obs and list(table.index) == sorted(fitted.classes, key=int)


def test_a_table_of_the_clusters_own_markers_names_each_cluster_after_itself(fitted, cells, tmp_path):
    rows = [(f"type {c}", g) for c, genes in fitted.cluster_markers.items() for g in genes[:3]]
    path = tmp_path / "own.csv"
    pd.DataFrame(rows, columns=["cell_type", "gene"]).to_csv(path, index=False)
    model = cellzoo.create_model("nact", **TINY, marker_table=str(path)).fit(cells)
    assert model.cluster_markers == fitted.cluster_markers  # same seed, same network
    assert model.names == {c: f"type {c}" for c in fitted.classes}
    assert model.marker_table["origin"] == str(path)


def test_declared_markers_are_the_naming_table(cells):
    model = cellzoo.create_model("nact", **TINY, marker_table="declared").fit(cells)
    assert model.marker_table["origin"] == 'uns["cellzoo"]["markers"]'
    assert set(model.marker_table["cell_types"]) == set(cells.uns["cellzoo"]["markers"])
    assert set(model.names.values()) <= set(cells.uns["cellzoo"]["markers"]) | {"unassigned"}
    undeclared = cells.copy()
    del undeclared.uns["cellzoo"]["markers"]
    with pytest.raises(InputError, match="declares none"):
        cellzoo.create_model("nact", **TINY, marker_table="declared").fit(undeclared)


def test_discover_writes_clusters_names_and_markers_without_touching_user_columns(cells):
    adata = cells.copy()
    adata.obs["mine"] = "keep"
    out = cellzoo.create_model("nact", **TINY).discover(adata)
    assert out is adata
    assert list(adata.obs["mine"].unique()) == ["keep"] and "group" in adata.obs
    clusters, labels = adata.obs["cellzoo_nact_cluster"], adata.obs["cellzoo_nact_label"]
    assert isinstance(clusters.dtype, pd.CategoricalDtype) and not clusters.isna().any() and not labels.isna().any()
    uns = adata.uns["cellzoo_nact_markers"]
    assert set(uns["names"]) == set(clusters.cat.categories) == set(uns["genes"])
    assert all(labels[clusters == c].eq(n).all() for c, n in uns["names"].items())


def test_the_written_result_survives_h5ad(cells, fitted, tmp_path):
    import anndata as ad

    adata = fitted.fit_result.write(cells.copy(), "nact")
    adata.write_h5ad(tmp_path / "out.h5ad")
    back = ad.read_h5ad(tmp_path / "out.h5ad")
    assert back.obs["cellzoo_nact_label"].astype(str).tolist() == adata.obs["cellzoo_nact_label"].astype(str).tolist()
    assert dict(back.uns["cellzoo_nact_markers"]["names"]) == fitted.names


def test_predict_puts_new_cells_into_the_learned_clusters(fitted, cells):
    found = fitted.predict(cells)
    assert found.source == "network" and found.proba.shape == (cells.n_obs, len(fitted.classes))
    np.testing.assert_allclose(found.proba.sum(1), 1.0, atol=1e-5)
    assert np.mean(found.clusters == fitted.fit_result.clusters) > 0.95
    single = fitted.predict(cells[:1].copy())  # a batch of one cell
    assert single.clusters.shape == (1,) and single.clusters[0] == found.clusters[0]
    assert single.labels[0] == fitted.names[single.clusters[0]]


def test_predict_handles_partial_gene_overlap_by_threshold(fitted, cells):
    keep = cells[:, 1:].copy()  # 59 of 60 genes: the missing one is zero-filled and reported
    found = fitted.predict(keep)
    assert fitted.last_alignment.report.missing == ("Gene1",)
    assert set(found.clusters) <= set(fitted.classes) and found.clusters.shape == (cells.n_obs,)
    assert np.mean(found.clusters == fitted.fit_result.clusters) > 0.75
    with pytest.raises(GeneAlignmentError):
        fitted.predict(cells[:, :20].copy())


def test_same_seed_gives_the_same_model(cells, fitted):
    again = cellzoo.create_model("nact", **TINY).fit(cells)
    np.testing.assert_array_equal(again.fit_result.clusters, fitted.fit_result.clusters)
    assert again.names == fitted.names and again.cluster_markers == fitted.cluster_markers
    for key, value in fitted.state_tensors().items():
        np.testing.assert_array_equal(again.state_tensors()[key], value)


def test_save_and_load_round_trip(fitted, cells, tmp_path):
    path = cellzoo.save(fitted, tmp_path / "nact")
    loaded = cellzoo.load(f"local-dir:{path}")
    assert type(loaded).__name__ == "Nact" and loaded.names == fitted.names
    assert loaded.cluster_markers == fitted.cluster_markers and loaded.clustering == fitted.clustering
    before, after = fitted.predict(cells), loaded.predict(cells)
    np.testing.assert_array_equal(before.clusters, after.clusters)
    np.testing.assert_allclose(before.proba, after.proba, atol=1e-6)
    np.testing.assert_array_equal(before.labels, after.labels)
    assert cellzoo.verify(loaded).passed


def test_unfitted_model_and_bad_input_are_refused(cells):
    model = cellzoo.create_model("nact", **TINY)
    assert not model.is_fitted
    with pytest.raises(NotFittedError, match="fit"):
        model.predict(cells)
    with pytest.raises(InputError, match="0 cells"):
        model.fit(cells[:0].copy())
    with pytest.raises(ConfigError, match="resolution"):
        cellzoo.create_model("nact", resolution=0)
    with pytest.raises(ConfigError, match="marker table"):
        cellzoo.create_model("nact", **TINY, marker_table="/no/such/table.csv").fit(cells)
    scaled = cells.copy()
    scaled.X = scaled.X.toarray() - 1.0  # negative values: neither counts nor log1p
    with pytest.raises(InputError):
        cellzoo.create_model("nact", **TINY).fit(scaled)


def test_dense_and_sparse_input_give_the_same_clusters(fitted, cells):
    dense = cells.copy()
    dense.X = dense.X.toarray()
    np.testing.assert_array_equal(fitted.predict(dense).clusters, fitted.predict(cells).clusters)


def test_a_cluster_the_network_never_gets_right_is_ranked_over_all_its_cells(cells, monkeypatch):
    from cellzoo_scanna.model import Scanna

    original = Scanna.markers
    calls = []

    def markers(self, adata, label_key, n=25, method="attention", correct_only=True, top_k=None):
        calls.append(correct_only)
        found = original(self, adata, label_key, n=n, method=method, correct_only=correct_only, top_k=top_k)
        if correct_only:  # as if no cell of cluster "0" were predicted correctly
            found.pop("0")
        return found

    monkeypatch.setattr(Scanna, "markers", markers)
    model = cellzoo.create_model("nact", **TINY).fit(cells)
    assert calls == [True, False]
    for cluster in model.classes:
        assert len(model.cluster_markers[cluster]) == TINY["n_markers"]
    reference = original(
        model.scanna, model._training_data(cells, model.fit_result.clusters), "cluster", n=10, correct_only=False
    )
    assert model.cluster_markers["0"] == reference["0"]
    assert set(model.names) == set(model.classes)


def test_random_clusters_control(cells):
    control = cellzoo.create_model("random_clusters", n_clusters=4, seed=1).fit(cells)
    found = control.predict(cells)
    np.testing.assert_array_equal(found.clusters, control.predict(cells).clusters)
    assert set(found.clusters) == {"0", "1", "2", "3"}
    assert abs(ari(cells.obs["group"].to_numpy(), found)) < 0.05
    assert cellzoo.get_metric("name_accuracy")(cells.obs["group"].to_numpy(), found) == 0.0


def test_onnx_export_of_the_cluster_network_is_validated(fitted, tmp_path):
    pytest.importorskip("onnxruntime")
    from cellzoo.export import export_onnx

    report = export_onnx(fitted, tmp_path / "onnx", batch_sizes=(1, 5))
    assert report.passed
    assert (tmp_path / "onnx" / "model.onnx").is_file()


def test_true_clusters_control_scores_one_and_needs_the_solution(cells):
    truth = cells.obs["group"].to_numpy()
    control = cellzoo.create_model("true_clusters").fit(cells)
    found = control.predict(cells, solution=truth)
    for metric in ("ari", "nmi", "name_accuracy"):
        assert cellzoo.get_metric(metric)(truth, found) == pytest.approx(1.0)
    with pytest.raises(InputError, match="needs the true labels"):
        control.predict(cells)


def test_an_all_zero_cell_is_clustered_and_predicted(cells):
    adata = cells.copy()
    X = adata.X.tolil()
    X[0, :] = 0
    adata.X = X.tocsr()
    model = cellzoo.create_model("nact", **TINY).fit(adata)
    assert model.fit_result.clusters[0] in model.classes
    found = model.predict(adata[:1].copy())
    assert found.clusters[0] in model.classes and np.isfinite(found.proba).all()
