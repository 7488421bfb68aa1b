"""The discover metrics: invariances of ARI/NMI and the rules of name matching."""

from __future__ import annotations

import numpy as np
import pytest

import cellzoo
from cellzoo.errors import InputError
from cellzoo_nact.discovery import Discovery
from cellzoo_nact.metrics import ari, name_accuracy, nmi, normalise_name

TRUTH = np.array(["B", "B", "B", "T", "T", "T", "NK", "NK"])


def test_ari_and_nmi_ignore_cluster_ids_and_see_errors():
    relabelled = np.array(["7", "7", "7", "x", "x", "x", "0", "0"])
    assert ari(TRUTH, relabelled) == pytest.approx(1.0)
    assert nmi(TRUTH, relabelled) == pytest.approx(1.0)
    merged = np.array(["a", "a", "a", "a", "a", "a", "b", "b"])
    assert ari(TRUTH, merged) < 1.0 and 0 < nmi(TRUTH, merged) < 1.0
    rng = np.random.default_rng(0)
    truth = rng.integers(5, size=5000).astype(str)
    noise = rng.integers(5, size=5000).astype(str)
    assert abs(ari(truth, noise)) < 0.01 and nmi(truth, noise) < 0.01


def test_metrics_read_a_discovery():
    found = Discovery(
        clusters=np.array(["0", "0", "0", "1", "1", "1", "2", "2"]),
        labels=np.array(["B", "B", "B", "B", "B", "B", "unassigned", "unassigned"]),
        names={"0": "B", "1": "B", "2": "unassigned"},
    )
    assert ari(TRUTH, found) == pytest.approx(1.0)
    assert name_accuracy(TRUTH, found) == pytest.approx(3 / 8)


def test_name_matching_normalises_case_and_spacing_and_uses_aliases():
    assert normalise_name("  CD14+_Monocyte ") == "cd14+ monocyte"
    assert normalise_name("CD4+/CD25 T Reg") != normalise_name("CD4+/CD25- T Reg")
    truth = np.array(["CD14+ Monocyte", "CD56+ NK", "CD56+ NK"])
    assert name_accuracy(truth, np.array(["cd14+ monocyte", "NK cell", "CD56+  NK"])) == pytest.approx(2 / 3)
    assert (
        name_accuracy(truth, np.array(["cd14+ monocyte", "NK cell", "NK cell"]), aliases={"NK cell": "CD56+ NK"}) == 1.0
    )
    # "unassigned" is never right, even against a label of that name
    assert name_accuracy(np.array(["unassigned"]), np.array(["unassigned"])) == 0.0


def test_mismatched_lengths_are_input_errors():
    with pytest.raises(InputError, match="3 predicted clusters for 8 cells"):
        ari(TRUTH, np.array(["a", "b", "c"]))
    with pytest.raises(InputError, match="names for 8 cells"):
        name_accuracy(TRUTH, np.array(["a"]))


def test_the_discover_task_is_registered_with_its_metrics_and_control():
    task = cellzoo.task_spec("discover")
    assert task.protocol == ("fit", "predict")
    assert task.metrics == ("ari", "nmi", "name_accuracy")
    assert task.controls == ("random_clusters", "true_clusters")
    assert set(cellzoo.list_metrics(task="discover")) == {"ari", "nmi", "name_accuracy"}
    assert cellzoo.get_metric("nmi") is nmi
    assert cellzoo.list_models(task="discover") == ["leiden_wilcoxon", "nact", "random_clusters", "true_clusters"]
    assert "splat" in cellzoo.list_datasets(task="discover")
