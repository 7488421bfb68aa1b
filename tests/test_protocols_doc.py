"""docs/protocols.md documents every protocol method and every capability of cellzoo.protocols."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from cellzoo import protocols

DOC = (Path(__file__).resolve().parents[1] / "docs" / "protocols.md").read_text()


def _methods(protocol: type) -> set[str]:
    own = set(vars(protocol)) - set(vars(protocols.Model)) if protocol is not protocols.Model else set(vars(protocol))
    return {n for n in own if not n.startswith("_") and (inspect.isfunction(vars(protocol)[n]) or
                                                          isinstance(vars(protocol)[n], property))}  # fmt: skip


def test_every_capability_is_documented_with_its_default():
    for name, declared in protocols.CAPABILITIES.items():
        rows = [line for line in DOC.splitlines() if line.startswith(f"| `{name}` |")]
        assert rows, f"docs/protocols.md has no row for capability {name!r}"
        if declared.falls_back_to:
            assert f"`{declared.falls_back_to}`" in rows[0]
        elif declared.default is not None:
            shown = rows[0].split("|")[2].strip().strip("`")
            assert ast.literal_eval(shown) == declared.default, (name, rows[0])


def test_every_protocol_and_method_is_documented():
    for task, protocol in protocols.TASK_PROTOCOLS.items():
        assert f"| `{task}` | `{protocol.__name__}` |" in DOC
        for method in _methods(protocol):
            assert f"`{method}(" in DOC, f"docs/protocols.md does not show {protocol.__name__}.{method}"
    for method in _methods(protocols.Model) | _methods(protocols.LossWeighting):
        assert f"`{method}" in DOC, f"docs/protocols.md does not show {method}"
