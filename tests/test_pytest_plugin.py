"""cellzoo's pytest plugin (``pytest11`` entry point ``cellzoo``): the fixtures a plugin's tests get without a conftest.

Each check runs pytest in a fresh interpreter on a folder outside this repository, as a plugin
author's ``pytest tests`` would.
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ZOO_TESTS = """
import os
import sys

import cellzoo.testing.contract  # a session that tests zoo models: torch goes single-threaded


def test_home_is_isolated(cellzoo_home):
    assert os.environ["CELLZOO_HOME"] == str(cellzoo_home) and not any(cellzoo_home.iterdir())
    (cellzoo_home / "written").touch()


def test_each_test_has_its_own_home(cellzoo_home):
    assert not (cellzoo_home / "written").exists()


def test_zoo_pm_blocks_discovery(zoo_pm):
    import cellzoo

    assert cellzoo.get_plugin_manager() is zoo_pm
    names = cellzoo.list_models()
    assert "majority" in names and not {"scanna", "actinn", "logreg"} & set(names)  # installed, not discovered


def test_torch_threads():
    torch = sys.modules.get("torch")
    assert torch is None or torch.get_num_threads() == int(os.environ["EXPECT_THREADS"])
"""

OTHER_TESTS = """
import os
import sys


def test_a_session_without_zoo_tests_imports_nothing_heavy():
    assert "CELLZOO_HOME" in os.environ  # isolation is cheap, so it is always on
    heavy = [m for m in ("torch", "anndata", "cellzoo.testing.contract") if m in sys.modules]
    assert not heavy, heavy
"""


def _pytest(folder: Path, *args: str, threads: str) -> subprocess.CompletedProcess:
    env_code = f"import os; os.environ['EXPECT_THREADS'] = {threads!r}; "
    return subprocess.run(
        [sys.executable, "-c", env_code + "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))",
         "-q", "-p", "no:cacheprovider", *args, str(folder)],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture
def tests_dir(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # a rootdir of its own, not this repository's
    return tmp_path


def test_the_entry_point_is_registered():
    entry = [e for e in md.entry_points(group="pytest11") if e.name == "cellzoo"]
    assert [e.value for e in entry] == ["cellzoo.testing.fixtures"]


def test_the_fixtures_without_a_conftest(tests_dir):
    pytest.importorskip("torch")
    (tests_dir / "test_zoo.py").write_text(textwrap.dedent(ZOO_TESTS))
    result = _pytest(tests_dir, threads="1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout

    import torch

    default = str(torch.get_num_threads())
    result = _pytest(tests_dir, "-o", "cellzoo_torch_threads=0", "-k", "torch_threads", threads=default)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_unrelated_sessions_stay_light(tests_dir):
    (tests_dir / "test_other.py").write_text(textwrap.dedent(OTHER_TESTS))
    result = _pytest(tests_dir, threads="0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
