"""Test settings for the scANNA plugin."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # tiny models on a shared 2-core machine: a second intra-op thread only adds spin-wait contention
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # never read or write the user's cellzoo cache
    monkeypatch.setenv("CELLZOO_HOME", str(tmp_path_factory.mktemp("cellzoo_home")))
