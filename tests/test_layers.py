"""The core's structure holds: layers checked by import-linter, the facade used only at the top,
plugins on the public API only. Every import counts, also those inside functions."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core" / "cellzoo"
#: what a plugin may import from the core: the facade and the public modules it documents
PUBLIC = {"cellzoo", "cellzoo.errors", "cellzoo.training", "cellzoo.testing"}
#: the surfaces, which may use the facade (everything below them names the module it needs)
SURFACES = ("cli", "demo")


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            if node.module is None:  # ``from . import a, b`` imports the modules a and b
                found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, base))
    return found


def _package_of(path: Path) -> str:
    # a module's relative imports start from its package; ``__init__`` is its package's own module
    return ".".join(path.relative_to(CORE.parent).parts[:-1])


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_only_the_surfaces_import_the_facade():
    offenders = []
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE)
        if rel.parts[0].removesuffix(".py") in SURFACES or rel == Path("__init__.py"):
            continue
        for line, module in _imports(path, _package_of(path)):
            if module == "cellzoo":
                offenders.append(f"core/cellzoo/{rel}:{line}")
    assert not offenders, "import the module that holds the name, not the facade: " + ", ".join(offenders)


def test_plugins_use_the_public_api_only():
    offenders = []
    for path in sorted((ROOT / "plugins").glob("*/src/cellzoo_*/**/*.py")):
        for line, module in _imports(path, "cellzoo_plugin"):
            if (module == "cellzoo" or module.startswith("cellzoo.")) and module not in PUBLIC:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, f"plugins may import {sorted(PUBLIC)} only: " + "; ".join(offenders)


def test_the_checks_see_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from cellzoo.cache import cache_hit\n", encoding="utf-8")
    assert (2, "cellzoo.cache") in _imports(source, "cellzoo_plugin")
