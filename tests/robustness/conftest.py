"""Fixtures of the robustness tests: the command-line ones of ``tests/test_cli.py``, shared rather than copied.

``zoo`` (only the built-in plugin, an empty cellzoo home), ``data`` (40 cells × 12 genes of raw
counts with ``obs["cell_type"]``) and ``trained`` (the ``majority`` control trained on them and
saved as an artifact directory).
"""

from __future__ import annotations

from test_cli import data, trained, zoo

__all__ = ["data", "trained", "zoo"]
