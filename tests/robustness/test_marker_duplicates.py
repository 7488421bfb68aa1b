"""A marker ranking that repeats a gene: counted once by precision@k, refused by the harness."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import cellzoo
from cellzoo import Annotator, ModelSpec, hookimpl
from cellzoo.bench.plan import build_plan
from cellzoo.bench.runner import checked_markers, execute, plan_jobs
from cellzoo.bench.suite import suite_from_dict
from cellzoo.errors import ProtocolError
from cellzoo.metrics import marker_precision_at_10, marker_precision_at_20, marker_precision_at_k, true_markers
from cellzoo.testing import tiny_annotate_adata

TRUE = [f"t{i}" for i in range(10)]
OTHER = [f"o{i}" for i in range(40)]


def test_a_repeated_gene_counts_once():
    assert marker_precision_at_k({"C": ["c1", "c2"]}, {"C": ["c1"] * 4}, k=4) == 0.25
    # repeats are dropped keeping first places, so the genes behind them move up
    assert marker_precision_at_k({"C": ["c1", "c2"]}, {"C": ["c1", "c1", "c2", "x"]}, k=2) == 1.0
    assert marker_precision_at_k({"C": ["c1", "c2"]}, {"C": ["x", "c1", "x", "c2"]}, k=2) == 0.5


def test_marker_precision_at_20_is_registered_and_reads_the_top_20(zoo_pm):
    assert cellzoo.get_metric("marker_precision_at_20") is marker_precision_at_20
    truth = {"A": TRUE}
    ranked = {"A": TRUE[:2] + OTHER[:8] + TRUE[2:10] + OTHER[8:]}
    assert marker_precision_at_10(truth, ranked) == pytest.approx(2 / 10)
    assert marker_precision_at_20(truth, ranked) == pytest.approx(10 / 20)
    assert cellzoo.get_metric("marker_precision_at_20")(truth, {"A": [TRUE[0]] * 20 + TRUE[1:]}) == pytest.approx(
        10 / 20
    )
    assert marker_precision_at_20(truth, {"A": [TRUE[0]] * 25}) == pytest.approx(1 / 20)


def test_declared_markers_listed_twice_are_kept_once():
    import anndata

    adata = anndata.AnnData(np.zeros((2, 2), np.float32))
    adata.uns["cellzoo"] = {"markers": {"A": ["g1", "g2", "g1"]}}
    assert true_markers(adata) == {"A": ["g1", "g2"]}


def test_the_harness_refuses_a_ranking_with_a_repeated_gene():
    assert checked_markers({"A": ["g1", "g2"]}, "fine") == {"A": ["g1", "g2"]}
    with pytest.raises(
        ProtocolError, match=r"model 'dup': markers\(\)\['A'\] lists gene 'g1' twice \(at ranks 1 and 3\)"
    ):
        checked_markers({"A": ["g1", "g2", "g1"]}, "dup")
    with pytest.raises(ProtocolError, match=r"'B'.*'g7'"):
        checked_markers({"A": ["g1"], "B": ["g7", "g7"]}, "dup")


# -- a run of a ranker that repeats its best gene is refused, not scored --------------------------


@dataclass(frozen=True)
class Cfg:
    seed: int = 0


class Repeater(Annotator):
    """Ranks the first gene of each class's true markers again and again."""

    input_state = "any"
    min_gene_overlap = 0.0

    def __init__(self, config=None):
        super().__init__(config or Cfg())

    def _fit(self, X, y):
        pass

    def _predict_proba(self, X):
        return np.full((X.shape[0], len(self.classes)), 1 / len(self.classes))

    def markers(self, adata, label_key, n=25):
        truth = adata.uns["cellzoo"]["markers"]
        return {c: [str(np.atleast_1d(truth[c])[0])] * n for c in self.classes}


class RepeaterPlugin:
    @hookimpl
    def cellzoo_models(self):
        return [ModelSpec("repeater", task="markers", builder=Repeater, config=Cfg, summary="repeats a gene")]


def test_a_run_whose_ranking_repeats_a_gene_fails_naming_the_class_and_gene(zoo_pm, tmp_path):
    zoo_pm.register(RepeaterPlugin(), name="repeater-test", distribution=None, version="0.0")
    path = tmp_path / "tiny.h5ad"
    tiny_annotate_adata(60, 30, 3).write_h5ad(path)
    suite = suite_from_dict(
        {"task": "markers", "models": ["repeater"], "datasets": [{"name": str(path), "label_key": "cell_type"}]}
    )
    plan = build_plan(suite)
    (job,) = [j for j in plan_jobs(plan, tmp_path / "runs") if j.model.name == "repeater"]
    with pytest.raises(ProtocolError, match=r"model 'repeater': markers\(\)\['[^']+'\] lists gene '[^']+' twice"):
        execute(job, plan)
