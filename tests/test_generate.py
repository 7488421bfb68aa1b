"""The generate task: its metrics, its controls, the Generator base, the harness and `cellzoo sample`."""

from __future__ import annotations

import anndata
import numpy as np
import pytest
from click.testing import CliRunner

import cellzoo
from cellzoo import genmetrics
from cellzoo.errors import ConfigError, UnknownNameError
from cellzoo.testing import tiny_annotate_adata


def cells(n=300, seed=0, n_genes=40, shift=0.0, part=None):
    """Tiny counts; ``part`` = (start, stop) takes those cells of a 1,200-cell pool (one distribution)."""
    adata = tiny_annotate_adata(n_cells=1200 if part else n, n_genes=n_genes, n_classes=3, seed=seed)
    if part:
        adata = adata[part[0] : part[1]].copy()
    if shift:
        adata.X = adata.X * np.linspace(1.0, 1.0 + shift, adata.n_vars, dtype=np.float32)
    return adata


# -- metrics ------------------------------------------------------------------------------------


def test_identical_sets_are_at_the_ideal_of_every_distance():
    a = cells()
    b = a.copy()
    assert genmetrics.energy_distance(a, b) == pytest.approx(0.0, abs=1e-9)
    assert genmetrics.mmd_rbf(a, b) == pytest.approx(0.0, abs=1e-9)
    assert genmetrics.wasserstein_1(a, b) == pytest.approx(0.0, abs=1e-6)
    assert genmetrics.gene_mean_corr(a, b) == pytest.approx(1.0)
    assert genmetrics.gene_corr_distance(a, b) == pytest.approx(0.0, abs=1e-12)
    assert genmetrics.cv_r2(a, b) == pytest.approx(1.0)


def test_distances_grow_with_the_difference():
    real = cells(part=(0, 300))
    near, far = cells(shift=0.3, part=(300, 600)), cells(shift=3.0, part=(300, 600))
    for metric in (genmetrics.energy_distance, genmetrics.mmd_rbf, genmetrics.wasserstein_2):
        assert metric(real, near) < metric(real, far), metric.__name__
    assert genmetrics.gene_mean_corr(real, near) > genmetrics.gene_mean_corr(real, far)


def test_energy_distance_matches_its_formula_on_one_dimension():
    """With one PC the energy distance is scipy's squared (scipy returns the square root)."""
    from scipy.stats import energy_distance

    real, fake = cells(part=(0, 300)), cells(shift=1.0, part=(300, 600))
    s = genmetrics.shared_space(real, fake)
    basis = genmetrics.pca_basis(s.real)
    one = {"mean": basis["mean"], "components": basis["components"][:1]}
    real.uns[genmetrics.PCA_KEY] = one
    x = ((s.real - one["mean"]) @ one["components"].T)[:, 0]
    y = ((s.fake - one["mean"]) @ one["components"].T)[:, 0]
    ours = genmetrics.energy_distance(real, fake)
    assert ours == pytest.approx(energy_distance(x, y) ** 2, rel=1e-6)


def test_the_classifier_test_is_at_chance_for_two_samples_of_one_distribution():
    """Scored on held-out cells and in a space fitted on other cells: 0.5 ± noise, not an in-sample artefact."""
    a, b, other = cells(part=(0, 300)), cells(part=(300, 600)), cells(part=(600, 1200))
    a.uns[genmetrics.PCA_KEY] = genmetrics.space_of_training_cells(other.X)
    assert 0.35 < genmetrics.classifier_auc(a, b) < 0.65
    assert genmetrics.classifier_auc(a, cells(seed=4)) > 0.95  # another simulation: other marker genes


def test_per_type_tables_need_types_on_both_sides():
    real, fake = cells(part=(0, 300)), cells(part=(300, 600))
    untyped = fake.copy()
    del untyped.obs["cell_type"]
    assert genmetrics.per_type(real, untyped) == {}
    table = genmetrics.per_type(real, fake)
    assert set(table) == set(real.obs["cell_type"].astype(str)) and set(next(iter(table.values()))) == set(
        genmetrics.PER_TYPE
    )


# -- the Generator base through the controls ---------------------------------------------------


@pytest.fixture
def fitted(zoo_pm):
    return cellzoo.create_model("independent_genes").fit(cells(), "cell_type")


def test_sampling_returns_an_anndata_over_the_training_genes(fitted):
    out = fitted.sample(50, seed=1)
    assert isinstance(out, anndata.AnnData) and out.shape == (50, 40)
    assert list(out.var_names) == list(cells().var_names)
    assert out.uns["cellzoo"]["input_state"] == "counts" and out.uns["cellzoo"]["seed"] == 1
    np.testing.assert_array_equal(out.X, fitted.sample(50, seed=1).X)
    typed = fitted.sample(20, cell_type=fitted.classes[1], seed=0)
    assert list(typed.obs["cell_type"].astype(str).unique()) == [fitted.classes[1]]


def test_bad_sampling_requests_are_refused_clearly(zoo_pm, fitted):
    for n in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="positive integer"):
            fitted.sample(n)
    with pytest.raises(UnknownNameError, match=fitted.classes[0]):
        fitted.sample(5, cell_type="no-such-type")
    unlabelled = cellzoo.create_model("independent_genes").fit(cells())
    with pytest.raises(ConfigError, match="without labels"):
        unlabelled.sample(5, cell_type=fitted.classes[0])


def test_independent_genes_keep_the_marginals_and_shuffled_genes_lose_them(zoo_pm):
    real = cells(n=600)
    independent = cellzoo.create_model("independent_genes").fit(real, "cell_type").sample(3000, seed=0)
    shuffled = cellzoo.create_model("shuffled_genes").fit(real, "cell_type").sample(600, seed=0)
    np.testing.assert_allclose(independent.X.mean(axis=0), real.X.mean(axis=0), rtol=0.15)
    assert genmetrics.gene_mean_corr(real, shuffled) < 0.5 < genmetrics.gene_mean_corr(real, independent)


# -- the harness and the CLI -------------------------------------------------------------------


def test_the_harness_scores_generators_between_their_controls(zoo_pm, tmp_path):
    data = tmp_path / "cells.h5ad"
    cells(n=600, seed=7).write_h5ad(data)
    suite = {
        "name": "generate-tiny",
        "task": "generate",
        "models": ["*"],
        "seeds": [0],
        "split": {"kind": "holdout", "test_fraction": 0.5},
        "datasets": [{"name": "h5ad", "alias": "tiny", "params": {"path": str(data)}, "label_key": "cell_type"}],
    }
    from cellzoo.bench import run_suite

    result = run_suite(suite, tmp_path / "out", progress=False)
    records = {r["model"]["name"]: r for r in result.records}
    assert set(records) == {"real_cells", "independent_genes", "shuffled_genes"}
    assert all(r["status"] == "ok" for r in records.values()), [r.get("error") for r in records.values()]
    auc = {name: r["metrics"]["classifier_auc"] for name, r in records.items()}
    assert auc["real_cells"] < 0.7 < auc["shuffled_genes"]
    assert records["real_cells"]["tables"]["generation_per_type"]  # per type: the reference has types
    assert (tmp_path / "out" / "leaderboard.md").exists()
    # a generate run stores no predictions file: its records are reused, not taken for damaged
    again = run_suite(suite, tmp_path / "out", progress=False, retry_failed=True)
    assert again.counts["reused"] == 3 and not again.notes


def test_cli_sample_writes_generated_cells(zoo_pm, tmp_path):
    from cellzoo.cli import main

    model = cellzoo.create_model("independent_genes").fit(cells(), "cell_type")
    artifact = cellzoo.save(model, tmp_path / "gen")
    out = tmp_path / "generated.h5ad"
    kind = model.classes[2]
    args = ["sample", f"local-dir:{artifact}", "--n", "40", "--cell-type", kind, "--seed", "3", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    written = anndata.read_h5ad(out)
    assert written.shape == (40, 40) and set(written.obs["cell_type"].astype(str)) == {kind}
    np.testing.assert_array_equal(written.X, model.sample(40, cell_type=kind, seed=3).X)
    bad = CliRunner().invoke(main, ["sample", f"local-dir:{artifact}", "--n", "0", "-o", str(tmp_path / "x.h5ad")])
    assert bad.exit_code != 0 and "positive integer" in bad.output and not (tmp_path / "x.h5ad").exists()
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_a_type_the_model_cannot_produce_is_scored_as_missing_not_a_lost_run():
    from cellzoo.errors import InputError, SamplingError
    from cellzoo.tasks import GENERATE

    reference = cells(n=90)
    kinds = sorted(set(reference.obs["cell_type"].astype(str)))

    class Picky:
        name, conditional = "picky", True
        classes = tuple(kinds)

        def __init__(self, refuse):
            self.refuse = refuse

        def sample(self, n, cell_type=None, seed=None):
            if cell_type in self.refuse:
                raise SamplingError(f"no {cell_type} within the bound")
            out = reference[:n].copy()
            out.uns["cellzoo"] = {"input_state": "counts"}
            return out

    out = GENERATE.output(Picky({kinds[0]}), reference, label_key="cell_type")
    assert out.uns["cellzoo"]["types_not_generated"] == {kinds[0]: f"no {kinds[0]} within the bound"}
    assert out.n_obs == int((reference.obs["cell_type"] != kinds[0]).sum())
    with pytest.raises(InputError, match=r"produced no cells.*within the bound"):
        GENERATE.output(Picky(set(kinds)), reference, label_key="cell_type")
