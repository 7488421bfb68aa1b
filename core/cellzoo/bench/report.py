"""Leaderboard files: ``leaderboard.md`` / ``.csv`` / ``.json`` and PNG plots, plus the console summary.

Plots use matplotlib's object API with the Agg canvas (no pyplot, no GUI backend, no global state).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_path, write_text
from .aggregate import Leaderboard
from .records import load_predictions, slug

CONTROL_COLOR = "#9e9e9e"
METHOD_COLOR = "#1f77b4"
#: confusion matrices with more classes than this are drawn without per-cell numbers
ANNOTATE_CELLS_UP_TO = 15


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def mean_pm_std(stat: Mapping[str, Any]) -> str:
    if stat.get("mean") is None:
        return "–"
    if stat.get("std") is None:
        return _fmt(stat["mean"])
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.3f}"
    return f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _status(row: Mapping[str, Any]) -> str:
    parts = [f"{row['ok']} ok"]
    if row["failed"]:
        parts.append(f"{row['failed']} failed")
    if row.get("skipped"):
        parts.append(f"{row['skipped']} skipped")
    if row["timeout"]:
        parts.append(f"{row['timeout']} timeout")
    return ", ".join(parts)


def _name(row: Mapping[str, Any]) -> str:
    return f"{row['model']} (control)" if row["role"] == "control" else row["model"]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    align = ["---:" if i in right else ":---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- markdown --------------------------------------------------------------------------------------


def leaderboard_markdown(
    board: Leaderboard,
    *,
    title: str,
    context: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    plots: Mapping[str, str] | None = None,
) -> str:
    context = dict(context or {})
    out = [f"# {title}", ""]
    if context:
        out += [f"- **{k}**: {v}" for k, v in context.items()] + [""]
    out += [
        "Scores are scaled between the controls, as in Open Problems: per dataset and metric, 0 is the worst "
        "control and 1 the best, each run clipped to [0, 1], failed runs counting 0; a dataset's score is the mean "
        "over metrics, the overall score the mean over datasets. Metrics are mean ± standard deviation over "
        "seeds × folds.",
        "",
        "## Overall",
        "",
    ]
    multi = len(board.datasets) > 1
    header = ["rank", "model", "score", *(board.datasets if multi else []), "fit s", "runs"]
    rows = [
        [
            str(o["rank"]),
            _name(o),
            _fmt(o["score"]),
            *([_fmt(o["datasets"][d]) for d in board.datasets] if multi else []),
            _seconds(o["fit_seconds"]),
            _status(o),
        ]
        for o in board.overall
    ]
    out += [_md_table(header, rows, right=[0, 2, *range(3, 3 + multi * len(board.datasets)), len(header) - 2]), ""]

    for d in board.datasets:
        here = [r for r in board.rows if r["dataset"] == d]
        out += [f"## {d}" if multi else f"## Per metric on {d}", ""]
        throughput = any(r.get("megapixels_per_second") is not None for r in here)
        header = ["rank", "model", "score", *board.metrics, "fit s", "predict s", *(["MP/s"] * throughput),
                  "peak MB", "runs"]  # fmt: skip
        rows = [
            [
                str(r["rank"]),
                _name(r),
                _fmt(r["score"]),
                *[mean_pm_std(r["metrics"][m]) for m in board.metrics],
                _seconds(r["fit_seconds"]),
                _seconds(r["predict_seconds"]),
                *([_fmt(r.get("megapixels_per_second"), 2)] * throughput),
                _fmt(r["peak_rss_mb"], 0),
                _status(r),
            ]
            for r in here
        ]
        out += [_md_table(header, rows, right=[0, 2, *range(3, 3 + len(board.metrics) + 3 + throughput)]), ""]
        span = board.control_range.get(d, {})
        ranges = ", ".join(
            f"{m} {_fmt(span[m][0])}–{_fmt(span[m][1])}" if span.get(m) else f"{m} (none)" for m in board.metrics
        )
        out += [f"Control range on {d}: {ranges}.", ""]

    if plots:
        out += ["## Plots", ""] + [f"![{name}]({path})" for name, path in plots.items()] + [""]

    out += ["## QC warnings", ""]
    out += [f"- {w}" for w in board.qc] if board.qc else ["None."]
    out += [""]
    if board.failures:
        out += ["## Failed and skipped runs", ""]
        rows = [
            [
                f["dataset"],
                f["model"],
                str(f["seed"]),
                str(f["fold"]),
                f["status"],
                (f["error"] or "").splitlines()[0][:160],
            ]
            for f in board.failures
        ]
        out += [_md_table(["dataset", "model", "seed", "fold", "status", "error"], rows), ""]

    if environment:
        out += ["## Environment", ""]
        out += [_md_table(["", ""], [[k, _env_text(v)] for k, v in environment.items()]), ""]
    return "\n".join(out)


def _env_text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_env_text(v)}" for k, v in value.items()) or "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return "–" if value is None else str(value)


# -- csv -------------------------------------------------------------------------------------------


def leaderboard_csv(board: Leaderboard) -> str:
    """One row per (dataset, model); metric columns ``<metric>_mean``, ``<metric>_std``, ``<metric>_scaled``."""
    overall = {o["model"]: o for o in board.overall}
    header = ["dataset", "model", "role", "overall_rank", "overall_score", "rank", "score"]
    for m in board.metrics:
        header += [f"{m}_mean", f"{m}_std", f"{m}_scaled"]
    header += ["fit_seconds", "predict_seconds", "peak_rss_mb", "runs", "ok", "failed", "skipped", "timeout"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in board.rows:
        o = overall[r["model"]]
        row = [r["dataset"], r["model"], r["role"], o["rank"], o["score"], r["rank"], r["score"]]
        for m in board.metrics:
            row += [r["metrics"][m]["mean"], r["metrics"][m]["std"], r["scaled"][m]]
        row += [
            r["fit_seconds"],
            r["predict_seconds"],
            r["peak_rss_mb"],
            r["runs"],
            r["ok"],
            r["failed"],
            r["skipped"],
            r["timeout"],
        ]
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


# -- plots -----------------------------------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")


def plot_metric_bars(board: Leaderboard, metric: str, path: Path) -> None:
    """One panel per dataset: each model's mean with its standard deviation as an error bar."""
    n = len(board.datasets)
    n_models = max(len([r for r in board.rows if r["dataset"] == d]) for d in board.datasets)
    fig = _figure(4.2 * n + 1.5, 0.35 * n_models + 1.4)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, d in zip(axes, board.datasets):
        here = [r for r in board.rows if r["dataset"] == d and r["metrics"][metric]["mean"] is not None]
        # best first, drawn at the top
        here.sort(key=lambda r: r["metrics"][metric]["mean"], reverse=board.higher_is_better[metric])
        y = np.arange(len(here))[::-1]
        means = [r["metrics"][metric]["mean"] for r in here]
        errs = [r["metrics"][metric]["std"] or 0.0 for r in here]
        colors = [CONTROL_COLOR if r["role"] == "control" else METHOD_COLOR for r in here]
        ax.barh(y, means, xerr=errs, color=colors, capsize=3, error_kw={"elinewidth": 1})
        ax.set_yticks(y, [_name(r) for r in here])
        ax.set_xlabel(f"{metric} ({'higher' if board.higher_is_better[metric] else 'lower'} is better)")
        ax.set_title(d)
        ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def plot_confusion(true: np.ndarray, pred: np.ndarray, title: str, path: Path) -> None:
    """Row-normalised confusion matrix (each true class sums to 1), with counts when it stays readable."""
    from sklearn.metrics import confusion_matrix

    classes = np.unique(np.concatenate([true, pred]))
    counts = confusion_matrix(true, pred, labels=classes)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    size = 0.45 * len(classes) + 3
    fig = _figure(size + 1, size)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if len(classes) <= ANNOTATE_CELLS_UP_TO:
        for i in range(len(classes)):
            for j in range(len(classes)):
                if counts[i, j]:
                    color = "white" if share[i, j] > 0.5 else "black"
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, label="share of the true class")
    _save(fig, path)


def plot_time_vs_score(board: Leaderboard, path: Path) -> None:
    """Overall score against mean fit + predict seconds per run (log scale): what accuracy costs."""
    points = [
        (o, (o["fit_seconds"] or 0.0) + (o["predict_seconds"] or 0.0))
        for o in board.overall
        if o["fit_seconds"] is not None
    ]
    fig = _figure(6.5, 4.5)
    ax = fig.subplots()
    for o, seconds in points:
        color = CONTROL_COLOR if o["role"] == "control" else METHOD_COLOR
        ax.scatter([max(seconds, 1e-4)], [o["score"]], color=color, s=40, zorder=3)
        ax.annotate(o["model"], (max(seconds, 1e-4), o["score"]), textcoords="offset points", xytext=(5, 3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("fit + predict seconds per run (mean)")
    ax.set_ylabel("overall scaled score")
    ax.set_ylim(-0.05, 1.1)
    ax.set_title("score against time (grey: controls)")
    ax.grid(alpha=0.3)
    _save(fig, path)


def confusion_source(board: Leaderboard, dataset: str, records: Sequence[Mapping[str, Any]], runs_dir: Path):
    """The best non-control model on ``dataset`` and its pooled (true, predicted) labels over all its runs."""
    best = board.best(dataset)
    if best is None:
        return None
    true, pred = [], []
    for r in records:
        if (
            r["dataset"]["name"] == dataset
            and r["model"]["name"] == best
            and r["status"] == "ok"
            and r.get("predictions")
        ):
            t, p = load_predictions(runs_dir / r["predictions"])
            true.append(t)
            pred.append(p)
    if not true:
        return None
    return best, np.concatenate(true), np.concatenate(pred)


def write_plots(board: Leaderboard, records: Sequence[Mapping[str, Any]], out: Path) -> dict[str, str]:
    """Every PNG of the leaderboard, written into ``out``; returns title → file name."""
    plots: dict[str, str] = {}
    for metric in board.metrics:
        name = f"bar_{slug(metric)}.png"
        plot_metric_bars(board, metric, out / name)
        plots[f"{metric} by model"] = name
    for d in board.datasets:
        source = confusion_source(board, d, records, out / "runs")
        if source is None:
            continue
        model, true, pred = source
        name = f"confusion_{slug(d)}.png"
        plot_confusion(true, pred, f"{model} on {d} (all seeds and folds)", out / name)
        plots[f"confusion matrix of {model} on {d}"] = name
    plot_time_vs_score(board, out / "time_vs_score.png")
    plots["time vs score"] = "time_vs_score.png"
    return plots


# -- all files -------------------------------------------------------------------------------------


def write_leaderboard(
    board: Leaderboard,
    records: Sequence[Mapping[str, Any]],
    out: str | Path,
    *,
    title: str,
    context: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the leaderboard files and plots into ``out``; returns kind → path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(board, records, out)
    paths = {"markdown": out / "leaderboard.md", "csv": out / "leaderboard.csv", "json": out / "leaderboard.json"}
    write_text(
        paths["markdown"],
        leaderboard_markdown(board, title=title, context=context, environment=environment, plots=plots),
    )
    write_text(paths["csv"], leaderboard_csv(board))
    document = {
        "title": title,
        **dict(extra or {}),
        **board.to_json(),
        "plots": plots,
        "runs": [
            {k: r[k] for k in ("key", "seed", "fold", "status")}
            | {"dataset": r["dataset"]["name"], "model": r["model"]["name"]}
            for r in records
        ],
        "environment": dict(environment or {}),
    }
    write_text(paths["json"], json.dumps(document, indent=2, default=str) + "\n")
    paths.update({name: out / file for name, file in plots.items()})
    return paths


def summary_table(board: Leaderboard, title: str = "leaderboard"):
    """The rich table printed at the end of a benchmark."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("rank", justify="right")
    table.add_column("model", style="bold cyan", no_wrap=True)
    table.add_column("score", justify="right")
    for d in board.datasets if len(board.datasets) > 1 else []:
        table.add_column(d, justify="right")
    if len(board.datasets) == 1:
        for m in board.metrics:
            table.add_column(m, justify="right")
    table.add_column("fit s", justify="right")
    table.add_column("runs")
    for o in board.overall:
        cells = [str(o["rank"]), _name(o), _fmt(o["score"])]
        if len(board.datasets) > 1:
            cells += [_fmt(o["datasets"][d]) for d in board.datasets]
        else:
            row = board.row(board.datasets[0], o["model"])
            cells += [mean_pm_std(row["metrics"][m]) for m in board.metrics]
        status = _status(o)
        if o["failed"] or o.get("skipped") or o["timeout"]:
            status = f"[red]{status}[/]"
        cells += [_seconds(o["fit_seconds"]), status]
        table.add_row(*cells, style="dim" if o["role"] == "control" else None)
    return table
