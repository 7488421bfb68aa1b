"""Run records: one JSON file per (dataset, seed, fold, model) under ``OUT/runs/``.

A record is named by its key — a hash of everything that determines the run's result (task,
dataset content hash, label column, model, config hash, seed, fold, split hash) — so a suite that
is run again finds the records it can reuse, and a changed config or dataset makes new ones.
Predictions go beside the record in a small ``.npz`` of integer codes (no pickles), which the
leaderboard reads for confusion matrices and from which metrics can be recomputed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_path

SCHEMA = "cellzoo.bench.run/1"
STATUSES = ("ok", "failed", "skipped", "timeout")


def run_key(
    *,
    task: str,
    dataset_hash: str,
    label_key: str,
    model: str,
    config_hash: str,
    seed: int,
    fold: int,
    split_hash: str,
) -> str:
    """The identity of a run: equal keys mean the same data, split, model and config."""
    parts = {
        "task": task,
        "dataset_hash": dataset_hash,
        "label_key": label_key,
        "model": model,
        "config_hash": config_hash,
        "seed": int(seed),
        "fold": int(fold),
        "split_hash": split_hash,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def slug(text: str) -> str:
    """``text`` as a safe file-name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def record_path(runs_dir: str | Path, *, dataset: str, model: str, seed: int, fold: int, key: str) -> Path:
    """``runs/<dataset>__<model>__s<seed>f<fold>__<key>.json``: readable, and unique by its key."""
    return Path(runs_dir) / f"{slug(dataset)}__{slug(model)}__s{seed}f{fold}__{key}.json"


def predictions_path(record_file: str | Path) -> Path:
    return Path(record_file).with_suffix(".npz")


def read_record(path: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, None)``, or ``(None, why)`` for a file that is not a valid record."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} is not readable JSON ({exc})"
    if not isinstance(record, dict) or record.get("schema") != SCHEMA or record.get("status") not in STATUSES:
        return None, f"{path.name} is not a cellzoo run record (schema {SCHEMA})"
    # a run that stores no predictions (generate: it scores generated cells) says so with None
    expects = record.get("predictions", predictions_path(path).name)
    if record["status"] == "ok" and expects and not predictions_path(path).is_file():
        return None, f"{path.name} has no predictions file beside it"
    return record, None


def save_predictions(path: str | Path, y_true: np.ndarray, y_pred: np.ndarray, test_index: np.ndarray) -> None:
    """Labels as integer codes into one shared class list (compact, and loadable without pickles)."""
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    classes, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    codes = codes.astype(np.int32)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            classes=classes.astype(str),
            y_true=codes[: y_true.size],
            y_pred=codes[y_true.size :],
            test_index=np.asarray(test_index, dtype=np.int64),
        )


def load_predictions(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(true labels, predicted labels)`` of one run, as string arrays."""
    with np.load(path, allow_pickle=False) as data:
        classes = data["classes"]
        return classes[data["y_true"]], classes[data["y_pred"]]
