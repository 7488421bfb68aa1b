"""An ``-o`` that cannot be written is refused before any model or data is loaded, naming the path and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_cli import cli, one_error_line

import cellzoo
from cellzoo.errors import OutputError
from cellzoo.fileio import check_output_file
from cellzoo.pipeline import predict_h5ad

# root writes into read-only folders, so nothing would be refused
needs_permissions = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions"
)


@pytest.fixture
def read_only(tmp_path) -> Path:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)  # so that pytest can clean up


# a model that does not exist: had it been loaded first, its error would come instead
COMMANDS = {
    "predict": lambda data, out: ["predict", "local-dir:/nonexistent/model", data, "-o", out],
    "run": lambda data, out: ["run", "/nonexistent/model.onnx", data, "-o", out],
    "sample": lambda data, out: ["sample", "local-dir:/nonexistent/model", "--n", "5", "-o", out],
}


@needs_permissions
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_read_only_folder_is_refused_before_any_work(zoo, data, read_only, command):
    out = read_only / "out.h5ad"
    result = cli(*COMMANDS[command](data, out))
    assert result.exit_code == 1, result.output
    line = one_error_line(result)
    assert f"cannot write {out}: the folder {read_only} is not writable (permission denied)" in line
    assert "choose another -o" in line and "PermissionError" not in line
    assert list(read_only.iterdir()) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_folder_is_refused_before_any_work(zoo, data, tmp_path, command):
    out = tmp_path / "missing" / "out.h5ad"
    result = cli(*COMMANDS[command](data, out))
    assert result.exit_code == 1, result.output
    line = one_error_line(result)
    assert f"its folder {out.parent} does not exist; create it (mkdir -p {out.parent}) or choose another -o" in line
    assert not out.parent.exists()


@needs_permissions
def test_predict_with_a_real_model_writes_nothing(trained, data, read_only):
    result = cli("predict", f"local-dir:{trained}", data, "-o", read_only / "annotated.h5ad")
    assert result.exit_code == 1
    assert "is not writable" in one_error_line(result)
    assert "annotated" not in result.stdout  # no prediction ran


@needs_permissions
def test_the_api_checks_the_output_before_reading_data(trained, data, read_only):
    model = cellzoo.load(f"local-dir:{trained}")
    with pytest.raises(OutputError, match=f"the folder {read_only} is not writable") as info:
        predict_h5ad(model, data, read_only / "out.h5ad")
    assert isinstance(info.value, OSError)
    with pytest.raises(OutputError, match="not writable"):
        predict_h5ad(model, data, read_only / "sub" / "out.h5ad")  # the folder it would create is refused too


def test_the_api_still_creates_missing_folders(trained, data, tmp_path):
    model = cellzoo.load(f"local-dir:{trained}")
    out = tmp_path / "new" / "folder" / "out.h5ad"
    assert predict_h5ad(model, data, out).n_cells == 40
    assert out.is_file()


def test_check_output_file_refuses_a_folder_and_a_file_as_folder(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputError, match="it is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match=r"file\.txt is a file, not a folder"):
        check_output_file(tmp_path / "file.txt" / "out.h5ad")
    with pytest.raises(OutputError, match=r"file\.txt is a file, not a folder"):
        check_output_file(tmp_path / "file.txt" / "a" / "out.h5ad", create_parents=True)
    assert check_output_file(tmp_path / "out.h5ad") == tmp_path / "out.h5ad"
