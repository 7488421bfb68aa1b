"""One exception hierarchy for the whole zoo.

Every message says what was wrong, with which value, and how to fix it; the CLI prints the
message (no traceback) and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CellzooError(Exception):
    """Base class of every error cellzoo raises on purpose."""

    exit_code = 1


class UnknownNameError(CellzooError, KeyError):
    """A model, dataset, metric or task name that nothing installed provides."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = ""):
        self.kind, self.name = kind, name
        known = sorted(set(known))
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        msg = f"unknown {kind} {name!r}."
        if close:
            msg += f" Did you mean: {', '.join(close)}?"
        elif known:
            shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
            msg += f" Installed {kind}s: {shown}."
        else:
            msg += f" No {kind}s are installed."
        msg += hint or " Run `cellzoo list` to see what is available, or install the plugin that provides it."
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class ConfigError(CellzooError, ValueError):
    """A configuration key or value that the model (or suite) does not accept."""


class SamplingError(ConfigError):
    """A generator could not produce cells of a requested type within its bounds (the message names the type)."""


class PluginError(CellzooError):
    """A plugin failed to load, raised in a hook, or clashes with another plugin."""


class ArtifactError(CellzooError):
    """A directory or file that is not a valid cellzoo artifact."""


class IntegrityError(ArtifactError):
    """A file whose content does not match its recorded hash."""


class InputError(CellzooError, ValueError):
    """Data that does not satisfy a model's input contract."""


class GeneAlignmentError(InputError):
    """Too few of a model's genes are present in the query data."""


class NotFittedError(CellzooError):
    """A model used for prediction before it was trained or loaded."""


class ResourceError(CellzooError):
    """A run that would not fit in the machine's memory, found before it started (the message has the numbers)."""


class TrainingError(CellzooError):
    """Training cannot go on (e.g. a loss became NaN); the message says where and what to try.

    ``kept`` names the point of training whose weights the model kept (``"epoch 12"``), or is None.
    """

    kept: str | None = None


class ProtocolError(CellzooError):
    """A model that does not implement, or breaks, its task's protocol."""


class HubError(CellzooError):
    """Publishing to or pulling from the Hugging Face Hub failed."""


class BenchmarkError(CellzooError):
    """A benchmark suite that cannot run as written."""


class OutputError(CellzooError, OSError):
    """An output path that cannot be written (a missing or read-only folder), found before any work."""


class ClusterError(CellzooError):
    """A Dask cluster that cannot be used (unreachable, workers unlike this process) or a chunk that failed there."""
