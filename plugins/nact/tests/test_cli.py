"""N-ACT from the command line: `cellzoo train nact` then `cellzoo predict` writes clusters and names."""

from __future__ import annotations

import json

import anndata
from click.testing import CliRunner

from cellzoo.cli import main

from .conftest import TINY, simulate


def test_train_then_predict_from_the_cli(tmp_path):
    data = tmp_path / "cells.h5ad"
    cells = simulate(n_cells=240)
    del cells.uns["splat"]  # nested ground truth is not needed here
    cells.write_h5ad(data)
    runner = CliRunner()
    settings = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    trained = runner.invoke(main, ["train", "nact", "--dataset", str(data), "-o", str(tmp_path / "nact"), *settings])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "annotated.h5ad"
    result = runner.invoke(main, ["predict", f"local-dir:{tmp_path / 'nact'}", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    annotated = anndata.read_h5ad(out)
    assert annotated.obs["cellzoo_nact_cluster"].nunique() >= 2
    assert "cellzoo_nact_label" in annotated.obs and "cellzoo_nact_markers" in annotated.uns
    again = runner.invoke(main, ["predict", f"local-dir:{tmp_path / 'nact'}", str(out), "-o", str(tmp_path / "b.h5ad")])
    assert again.exit_code == 1 and "cellzoo_nact_cluster" in again.output  # never overwrites silently
