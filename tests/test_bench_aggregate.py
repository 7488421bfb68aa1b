"""Aggregation maths on fabricated records, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from cellzoo.bench.aggregate import aggregate, competition_ranks, mean_std

CONTROLS = ("majority", "random_labels", "true_labels")
HIB = {"acc": True, "err": False}  # err: lower is better


def rec(dataset, model, fold, status="ok", role=None, **metrics):
    role = role or ("control" if model in CONTROLS else "method")
    return {
        "task": "annotate",
        "dataset": {"name": dataset},
        "model": {"name": model, "role": role},
        "seed": 0,
        "fold": fold,
        "status": status,
        "error": None if status == "ok" else "RuntimeError: boom",
        "metrics": metrics if status == "ok" else {},
        "fit_seconds": 2.0 + fold if status == "ok" else None,
        "predict_seconds": 0.5 if status == "ok" else None,
        "peak_rss_mb": 100.0 + fold,
    }


def d1_records():
    # controls on d1: acc range = [mean(random) 0.3, mean(true) 1.0]; err range = [true 0.0, random 0.7]
    return [
        rec("d1", "true_labels", 0, acc=1.0, err=0.0),
        rec("d1", "true_labels", 1, acc=1.0, err=0.0),
        rec("d1", "random_labels", 0, acc=0.2, err=0.8),
        rec("d1", "random_labels", 1, acc=0.4, err=0.6),
        rec("d1", "majority", 0, acc=0.4, err=0.5),
        rec("d1", "majority", 1, acc=0.4, err=0.7),
        rec("d1", "alpha", 0, acc=0.65, err=0.35),
        rec("d1", "alpha", 1, acc=0.825, err=0.0),
        rec("d1", "beta", 0, acc=0.1, err=0.84),
        rec("d1", "beta", 1, status="failed"),
    ]


def d2_records():
    # d2: acc range [0.5, 1.0], err range [0.0, 0.5]; beta has no record on d2 at all
    return [
        rec("d2", "true_labels", 0, acc=1.0, err=0.0),
        rec("d2", "true_labels", 1, acc=1.0, err=0.0),
        rec("d2", "random_labels", 0, acc=0.5, err=0.5),
        rec("d2", "random_labels", 1, acc=0.5, err=0.5),
        rec("d2", "majority", 0, acc=0.5, err=0.5),
        rec("d2", "majority", 1, acc=0.5, err=0.5),
        rec("d2", "alpha", 0, acc=0.75, err=0.25),
        rec("d2", "alpha", 1, acc=0.75, err=0.25),
    ]


def board_of(records, **kwargs):
    return aggregate(records, metrics=["acc", "err"], higher_is_better=HIB, controls=CONTROLS, **kwargs)


def test_mean_std_and_competition_ranks():
    assert mean_std([]) == (None, None)
    assert mean_std([0.5]) == (0.5, None)
    mean, std = mean_std([0.65, 0.825])
    assert mean == pytest.approx(0.7375)
    assert std == pytest.approx(0.175 / math.sqrt(2))  # sample std, ddof=1
    assert competition_ranks({"a": 0.9, "b": 0.5, "c": 0.9, "d": None}) == {"a": 1, "c": 1, "b": 3}
    assert competition_ranks({"a": 0.1, "b": 0.3}, higher_is_better=False) == {"a": 1, "b": 2}


def test_means_control_range_and_scaled_scores_by_hand():
    board = board_of(d1_records() + d2_records())
    assert board.datasets == ["d1", "d2"]
    assert board.control_range["d1"]["acc"] == pytest.approx([0.3, 1.0])
    assert board.control_range["d1"]["err"] == pytest.approx([0.0, 0.7])
    assert board.control_range["d2"]["acc"] == pytest.approx([0.5, 1.0])

    alpha = board.row("d1", "alpha")
    assert alpha["metrics"]["acc"]["mean"] == pytest.approx(0.7375)
    assert alpha["metrics"]["acc"]["std"] == pytest.approx(0.1237437, abs=1e-7)
    # per run: (0.65-0.3)/0.7 = 0.5 and (0.825-0.3)/0.7 = 0.75
    assert alpha["scaled"]["acc"] == pytest.approx(0.625)
    # lower is better: 1 - 0.35/0.7 = 0.5 and 1 - 0/0.7 = 1
    assert alpha["scaled"]["err"] == pytest.approx(0.75)
    assert alpha["score"] == pytest.approx(0.6875)
    assert alpha["fit_seconds"] == pytest.approx(2.5)
    assert alpha["peak_rss_mb"] == pytest.approx(101.0)

    # beta: its one good run is below every control (clipped to 0), the failed run counts 0
    beta = board.row("d1", "beta")
    assert (beta["runs"], beta["ok"], beta["failed"]) == (2, 1, 1)
    assert beta["metrics"]["acc"]["mean"] == pytest.approx(0.1)
    assert beta["metrics"]["acc"]["std"] is None
    assert beta["scaled"] == {"acc": 0.0, "err": 0.0}

    # controls are scaled like everyone: random 0.2 → 0 (clipped), 0.4 → 1/7
    assert board.row("d1", "random_labels")["scaled"]["acc"] == pytest.approx(1 / 14)
    assert board.row("d1", "majority")["score"] == pytest.approx(1 / 7)
    assert board.row("d1", "true_labels")["score"] == pytest.approx(1.0)
    assert board.row("d2", "alpha")["score"] == pytest.approx(0.5)


def test_overall_score_is_the_mean_over_datasets_and_missing_counts_zero():
    board = board_of(d1_records() + d2_records())
    assert board.model("alpha")["score"] == pytest.approx((0.6875 + 0.5) / 2)
    assert board.model("beta")["score"] == 0.0
    assert board.model("beta")["datasets"] == {"d1": 0.0, "d2": None}
    assert board.model("random_labels")["score"] == pytest.approx((1 / 14) / 2)
    assert board.model("majority")["score"] == pytest.approx((1 / 7) / 2)
    assert [o["model"] for o in board.overall] == ["true_labels", "alpha", "majority", "random_labels", "beta"]
    assert [o["rank"] for o in board.overall] == [1, 2, 3, 4, 5]
    assert board.model("alpha")["ok"] == 4
    assert board.best("d1") == "alpha"
    assert board.best("d1", include_controls=True) == "true_labels"


def test_per_metric_ranks_respect_direction():
    board = board_of(d1_records())
    ranks = {r["model"]: r["metrics"]["err"]["rank"] for r in board.rows}
    # mean err: true 0.0, alpha 0.175, majority 0.6, random 0.7, beta 0.84
    assert ranks == {"true_labels": 1, "alpha": 2, "majority": 3, "random_labels": 4, "beta": 5}


def test_qc_flags_worse_than_random_and_failures_only():
    board = board_of(d1_records() + d2_records())
    assert len(board.qc) == 3, board.qc
    text = "\n".join(board.qc)
    assert "'beta' is worse than 'random_labels' on 'd1' for 'acc' (0.100 vs 0.300)" in text
    assert "'beta' is worse than 'random_labels' on 'd1' for 'err' (0.840 vs 0.700)" in text
    assert "'beta' failed 1 of 2 runs on 'd1' (first error: RuntimeError: boom)" in text
    assert board.failures == [
        {"dataset": "d1", "model": "beta", "seed": 0, "fold": 1, "status": "failed", "error": "RuntimeError: boom"}
    ]


def test_qc_missing_and_failed_controls_and_a_degenerate_range():
    records = [r for r in d1_records() if r["model"]["name"] not in ("majority", "true_labels")]
    records += [rec("d1", "true_labels", 0, status="timeout"), rec("d1", "true_labels", 1, status="failed")]
    board = board_of(records)
    text = "\n".join(board.qc)
    assert "control 'majority' has no runs on 'd1'" in text
    assert "control 'true_labels' failed on every run on 'd1'" in text
    # only random_labels is left: no range, so every scaled value is 0
    assert board.control_range["d1"] == {"acc": None, "err": None}
    assert "do not span a range for 'acc'" in text
    assert board.row("d1", "alpha")["score"] == 0.0
    # 3 of 8 runs failed
    assert "3 of 8 runs (38%) failed or timed out" in text


def test_qc_flags_a_method_above_the_positive_control():
    cheater = [rec("d1", "cheater", fold, acc=1.0, err=-0.2) for fold in (0, 1)]
    records = [*d1_records()[:6], *cheater]
    board = board_of(records)
    # err: 1 - (-0.2 / 0.7) = 1.29 before clipping
    assert any("'cheater' scores above the best control on 'd1' for 'err' (scaled 1.29" in w for w in board.qc)
    assert board.row("d1", "cheater")["scaled"]["err"] == 1.0
