"""From run records to a leaderboard: means, ranks, scores scaled between controls, QC warnings.

The scaling follows Open Problems (see ``reference/bench-anchors.md`` §1.3):

1. for each (dataset, metric), ``lo`` and ``hi`` are the lowest and highest mean value of the
   control methods (each control averaged over its seeds × folds);
2. each run of a model is scaled ``(value − lo) / (hi − lo)`` (``1 −`` that for a metric where
   lower is better) and clipped to [0, 1]; a failed or timed-out run scores 0;
3. a model's scaled value for (dataset, metric) is the mean over its runs, its dataset score the
   mean over metrics, and its overall score the mean over datasets. Ranks follow the scores.

Open Problems has one run per (dataset, method); scaling each run and then averaging is what
keeps "failures count 0" true when only some seeds or folds fail.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: a model whose unclipped scaled score exceeds this is "better than the positive control"
ABOVE_CONTROLS = 1.1
#: share of failed runs above which the whole benchmark is flagged
FAILED_SHARE = 0.10


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1; None for fewer than two values)."""
    n = len(values)
    if n == 0:
        return None, None
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def competition_ranks(scores: Mapping[str, float | None], higher_is_better: bool = True) -> dict[str, int]:
    """Standard competition ranking ("1224"); names without a score get no rank."""
    scored = {k: round(v, 12) for k, v in scores.items() if v is not None}
    ordered = sorted(scored.values(), reverse=higher_is_better)
    return {k: 1 + ordered.index(v) for k, v in scored.items()}


@dataclass
class Leaderboard:
    """The aggregate of a set of run records (see :func:`aggregate`); ``to_json`` is its file form."""

    task: str
    metrics: list[str]
    higher_is_better: dict[str, bool]
    controls: list[str]
    datasets: list[str]
    #: one per (dataset, model), datasets in order, then by rank
    rows: list[dict[str, Any]]
    #: one per model, by overall rank
    overall: list[dict[str, Any]]
    control_range: dict[str, dict[str, list[float] | None]]
    qc: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def row(self, dataset: str, model: str) -> dict[str, Any]:
        for row in self.rows:
            if row["dataset"] == dataset and row["model"] == model:
                return row
        raise KeyError(f"no leaderboard row for model {model!r} on dataset {dataset!r}")

    def model(self, name: str) -> dict[str, Any]:
        for row in self.overall:
            if row["model"] == name:
                return row
        raise KeyError(f"no leaderboard row for model {name!r}")

    def best(self, dataset: str, include_controls: bool = False) -> str | None:
        """The top-ranked model on ``dataset`` (by default not a control) with at least one good run."""
        for row in self.rows:
            if row["dataset"] == dataset and row["ok"] and (include_controls or row["role"] != "control"):
                return row["model"]
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metrics": [{"name": m, "higher_is_better": self.higher_is_better[m]} for m in self.metrics],
            "controls": self.controls,
            "datasets": self.datasets,
            "overall": self.overall,
            "rows": self.rows,
            "control_range": self.control_range,
            "qc": self.qc,
            "failures": self.failures,
        }


def _scaled(value: float, lo: float, hi: float, higher_is_better: bool) -> float:
    """Unclipped position of ``value`` between the controls (0 = worst control, 1 = best)."""
    s = (value - lo) / (hi - lo)
    return s if higher_is_better else 1.0 - s


def _mean(values: Iterable[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return math.fsum(values) / len(values) if values else None


def aggregate(
    records: Sequence[Mapping[str, Any]],
    *,
    metrics: Sequence[str],
    higher_is_better: Mapping[str, bool],
    controls: Sequence[str],
    negative_controls: Sequence[str] | None = None,
    task: str | None = None,
    ceiling: bool = True,
) -> Leaderboard:
    """Aggregate run records into a :class:`Leaderboard`.

    ``controls`` are the task's control models (they define the scale); ``negative_controls``
    (default: the controls whose name starts with ``random``) are the ones a method must beat.
    ``ceiling=False`` when the best control is a baseline to beat, not a bound: scaled scores
    above 1 are kept (upscale: 0 = nearest, 1 = bicubic, 1.5 = half as far again above bicubic).
    """
    metrics = list(metrics)
    if negative_controls is None:
        negative_controls = [c for c in controls if c.startswith("random")]
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    datasets: list[str] = []
    models: list[str] = []
    roles: dict[str, str] = {}
    for r in records:
        d, m = r["dataset"]["name"], r["model"]["name"]
        groups[(d, m)].append(r)
        if d not in datasets:
            datasets.append(d)
        if m not in models:
            models.append(m)
        roles[m] = "control" if m in controls else r["model"].get("role", "method")

    qc: list[str] = []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for (d, m), recs in groups.items():
        ok = [r for r in recs if r["status"] == "ok"]
        status = Counter(r["status"] for r in recs)
        stats = {}
        for metric in metrics:
            mean, std = mean_std([r["metrics"][metric] for r in ok if r["metrics"].get(metric) is not None])
            stats[metric] = {"mean": mean, "std": std, "n": sum(metric in r["metrics"] for r in ok)}
        rows[(d, m)] = {
            "dataset": d,
            "model": m,
            "role": roles[m],
            "runs": len(recs),
            "ok": status["ok"],
            "failed": status["failed"],
            "skipped": status["skipped"],
            "timeout": status["timeout"],
            "metrics": stats,
            "fit_seconds": _mean(r.get("fit_seconds") for r in ok),
            "predict_seconds": _mean(r.get("predict_seconds") for r in ok),
            # up-scalers: output megapixels per second of prediction
            "megapixels_per_second": _mean(r.get("megapixels_per_second") for r in ok),
            "peak_rss_mb": max((r["peak_rss_mb"] for r in recs if r.get("peak_rss_mb") is not None), default=None),
        }

    # -- the scale: the controls' range per (dataset, metric) ---------------------------------------
    control_range: dict[str, dict[str, list[float] | None]] = {}
    for d in datasets:
        for c in controls:
            row = rows.get((d, c))
            if row is None:
                qc.append(f"control {c!r} has no runs on {d!r}: scores on {d!r} are scaled without it")
            elif row["ok"] == 0:
                qc.append(f"control {c!r} failed on every run on {d!r}: scores on {d!r} are scaled without it")
            elif row["ok"] < row["runs"]:
                qc.append(f"control {c!r} failed {row['runs'] - row['ok']} of {row['runs']} runs on {d!r}")
        control_range[d] = {}
        for metric in metrics:
            means = [
                rows[(d, c)]["metrics"][metric]["mean"]
                for c in controls
                if (d, c) in rows and rows[(d, c)]["metrics"][metric]["mean"] is not None
            ]
            if len(means) >= 2 and max(means) - min(means) > 1e-12:
                control_range[d][metric] = [min(means), max(means)]
            else:
                control_range[d][metric] = None
                qc.append(
                    f"on {d!r} the controls do not span a range for {metric!r} "
                    f"({len(means)} control(s) with results{', all equal' if len(means) >= 2 else ''}): "
                    f"every model's scaled {metric} there counts 0"
                )

    # -- scaled scores, per run then averaged; failures count 0 -------------------------------------
    for (d, m), row in rows.items():
        recs = groups[(d, m)]
        row["scaled"] = {}
        for metric in metrics:
            span = control_range[d][metric]
            if span is None:
                row["scaled"][metric] = 0.0
                continue
            per_run, unclipped = [], []
            for r in recs:
                value = r["metrics"].get(metric) if r["status"] == "ok" else None
                if value is None:
                    per_run.append(0.0)
                    continue
                s = _scaled(value, span[0], span[1], higher_is_better[metric])
                unclipped.append(s)
                per_run.append(max(0.0, s) if not ceiling else min(1.0, max(0.0, s)))
            row["scaled"][metric] = math.fsum(per_run) / len(per_run)
            u = math.fsum(unclipped) / len(unclipped) if unclipped else 0.0
            if ceiling and roles[m] != "control" and u > ABOVE_CONTROLS:
                qc.append(
                    f"model {m!r} scores above the best control on {d!r} for {metric!r} (scaled {u:.2f} before "
                    "clipping): check the positive control, and that no labels leak into the model"
                )
        row["score"] = math.fsum(row["scaled"].values()) / len(metrics) if metrics else 0.0

    # -- QC: worse than random, failures -------------------------------------------------------------
    for (d, m), row in rows.items():
        if roles[m] == "control":
            continue
        if row["ok"] < row["runs"]:
            errors = [r.get("error") for r in groups[(d, m)] if r["status"] != "ok" and r.get("error")]
            first = f" (first error: {errors[0].splitlines()[0][:200]})" if errors else ""
            qc.append(f"model {m!r} failed {row['runs'] - row['ok']} of {row['runs']} runs on {d!r}{first}")
        missed = sorted({t for r in groups[(d, m)] for t in (r.get("types_not_generated") or {})})
        if missed:
            qc.append(
                f"model {m!r} could not generate cell type(s) {', '.join(missed)} on {d!r} within its sampling bound; "
                "they are scored as missing (see types_not_generated in the run records)"
            )
        for metric in metrics:
            mine = row["metrics"][metric]["mean"]
            for c in negative_controls:
                theirs = rows.get((d, c), {}).get("metrics", {}).get(metric, {}).get("mean")
                if mine is None or theirs is None:
                    continue
                worse = mine < theirs if higher_is_better[metric] else mine > theirs
                if worse:
                    qc.append(f"model {m!r} is worse than {c!r} on {d!r} for {metric!r} ({mine:.3f} vs {theirs:.3f})")
    total = sum(r["runs"] for r in rows.values())
    bad = sum(r["runs"] - r["ok"] for r in rows.values())
    if total and bad / total > FAILED_SHARE:
        qc.append(f"{bad} of {total} runs ({bad / total:.0%}) failed or timed out (more than {FAILED_SHARE:.0%})")

    # -- ranks ---------------------------------------------------------------------------------------
    for d in datasets:
        here = {m: rows[(d, m)] for m in models if (d, m) in rows}
        for m, rank in competition_ranks({m: r["score"] for m, r in here.items()}).items():
            here[m]["rank"] = rank
        for metric in metrics:
            ranks = competition_ranks(
                {m: r["metrics"][metric]["mean"] for m, r in here.items()}, higher_is_better[metric]
            )
            for m, r in here.items():
                r["metrics"][metric]["rank"] = ranks.get(m)

    overall = []
    for m in models:
        mine = [rows[(d, m)] for d in datasets if (d, m) in rows]
        overall.append(
            {
                "model": m,
                "role": roles[m],
                # a dataset the model has no record for counts 0, like a failure
                "score": math.fsum(rows[(d, m)]["score"] if (d, m) in rows else 0.0 for d in datasets) / len(datasets),
                "datasets": {d: rows[(d, m)]["score"] if (d, m) in rows else None for d in datasets},
                "runs": sum(r["runs"] for r in mine),
                "ok": sum(r["ok"] for r in mine),
                "failed": sum(r["failed"] for r in mine),
                "skipped": sum(r["skipped"] for r in mine),
                "timeout": sum(r["timeout"] for r in mine),
                "fit_seconds": _mean(r["fit_seconds"] for r in mine),
                "predict_seconds": _mean(r["predict_seconds"] for r in mine),
            }
        )
    ranks = competition_ranks({o["model"]: o["score"] for o in overall})
    for o in overall:
        o["rank"] = ranks[o["model"]]
    overall.sort(key=lambda o: (o["rank"], o["role"] == "control", o["model"]))
    ordered_rows = sorted(
        rows.values(), key=lambda r: (datasets.index(r["dataset"]), r["rank"], r["role"] == "control", r["model"])
    )

    failures = [
        {
            "dataset": r["dataset"]["name"],
            "model": r["model"]["name"],
            "seed": r.get("seed"),
            "fold": r.get("fold"),
            "status": r["status"],
            "error": r.get("error"),
        }
        for r in records
        if r["status"] != "ok"
    ]
    return Leaderboard(
        task=task or (records[0]["task"] if records else ""),
        metrics=metrics,
        higher_is_better=dict(higher_is_better),
        controls=list(controls),
        datasets=datasets,
        rows=ordered_rows,
        overall=overall,
        control_range=control_range,
        qc=qc,
        failures=failures,
    )
