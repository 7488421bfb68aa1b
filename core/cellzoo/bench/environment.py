"""The software and hardware a benchmark ran on, stored in every run record.

Versions are read from package metadata, not by importing the packages, and the GPU is named by
``nvidia-smi``: initialising CUDA in the parent process would break CUDA in the forked runs.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("numpy", "scipy", "scikit-learn", "anndata", "pandas", "torch", "onnxruntime", "onnxruntime-gpu")


def package_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def git_commit(cwd: str | Path | None = None) -> dict[str, Any] | None:
    """The commit checked out in ``cwd`` (default: the current directory) and whether it has local changes."""
    if shutil.which("git") is None:
        return None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    return {"commit": head, "dirty": bool(status.strip())}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def threads() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        **{var: os.environ[var] for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if var in os.environ},
    }


def environment(plugins: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Everything that could explain a different number on another machine."""
    from ..constants import __version__

    packages = {name: v for name in PACKAGES if (v := package_version(name)) is not None}
    return {
        "cellzoo": __version__,
        "plugins": dict(sorted((plugins or {}).items())),
        "python": sys.version.split()[0],
        "packages": packages,
        "platform": platform.platform(),
        "git": git_commit(),
        "cpu": cpu_model(),
        "gpu": gpu_names(),
        "threads": threads(),
    }
