"""How close generated cells are to real ones: the metrics of the ``generate`` task.

Every metric compares a set of real cells (``truth``: held-out cells the generator never saw)
with generated cells (``prediction``), both AnnData over the same genes. Cells are put in one
space first (:func:`shared_space`): per-cell normalised to 10,000 and log1p (from counts or from
any per-cell-scaled, un-logged expression, such as scGAN's and ACTIVA's 20,000-normalised
output), then projected on the principal components of real cells — those of the training
cells when the harness puts their basis in ``truth.uns["cellzoo_pca"]``, else of ``truth``
itself. (PCs fitted on the very cells that are scored inflate their spread: on 200 + 200 cells
of one Splat simulation, 30 PCs fitted on one half made a random forest tell the halves apart
at AUC 0.91; fitted on other cells, 0.53.) Distances are computed
there; per-gene statistics on the log1p-CP10k values. Everything is seeded; large sets are
subsampled (at most :data:`MAX_CELLS` per side) so a metric costs seconds.

Numbers from numpy, scipy, scikit-learn and POT (exact optimal transport); the formulas are the
standard ones: energy distance (Székely & Rizzo), RBF MMD² (Gretton et al.) at several
bandwidths around the median distance, a random-forest classifier two-sample test scored on cells
it was not fitted on (0.5 = indistinguishable), and the gene-wise coefficient of variation across
cells that scvi-tools' posterior predictive checks compare (their docs: do not use generated data
whose squared correlation is below 0.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from .errors import InputError

if TYPE_CHECKING:
    import anndata

#: principal components of the shared space
N_COMPONENTS = 30
#: cells per side used by the pairwise metrics (energy, MMD, Wasserstein)
MAX_CELLS = 2000
#: most variable real genes whose gene–gene correlations are compared
N_CORR_GENES = 100
#: MMD bandwidths, as multiples of the median pairwise distance of the pooled cells
MMD_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
#: ``uns`` key of the real cells holding the PCA basis to use (fitted on *other* real cells)
PCA_KEY = "cellzoo_pca"
#: the obs column of generated cells naming the type they were sampled as
TYPE_KEY = "cell_type"
SEED = 0


def _log1p_cp10k(adata: anndata.AnnData) -> np.ndarray:
    X = adata.X
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float64, copy=False)
    if X.size and (not np.isfinite(X).all() or X.min() < 0):
        raise InputError(
            "generated or real cells must be non-negative and finite expression (counts or per-cell scaled, no log)"
        )
    totals = X.sum(axis=1, keepdims=True)
    totals[totals == 0] = 1.0
    return np.log1p(X / totals * 1e4)


def pca_basis(log1p_cp10k: np.ndarray) -> dict[str, np.ndarray]:
    """``{"mean", "components"}`` of the first :data:`N_COMPONENTS` principal components of these cells."""
    from sklearn.decomposition import PCA

    k = max(1, min(N_COMPONENTS, log1p_cp10k.shape[0] - 1, log1p_cp10k.shape[1]))
    pca = PCA(n_components=k, random_state=SEED).fit(log1p_cp10k)
    return {"mean": pca.mean_, "components": pca.components_}


def space_of_training_cells(counts: Any, max_cells: int = 5000) -> dict[str, np.ndarray]:
    """The PCA basis of (up to ``max_cells`` of) the real training cells, to be put in ``truth.uns[PCA_KEY]``."""
    import anndata

    rows = np.arange(counts.shape[0])
    if len(rows) > max_cells:
        rows = np.sort(np.random.default_rng(SEED).choice(len(rows), max_cells, replace=False))
    return pca_basis(_log1p_cp10k(anndata.AnnData(X=counts[rows])))


def reference_cells(adata: anndata.AnnData, rows: np.ndarray, labels: Any = None, train_rows: Any = None):
    """Real cells to score generated ones against: raw counts of ``rows``, their type in ``obs['cell_type']``.

    With ``train_rows`` the PCA basis of those (training) cells goes into ``uns[PCA_KEY]``, so the
    shared space is not fitted on the cells it scores.
    """
    import anndata
    import pandas as pd

    from .data.contract import InputContract, prepare_input

    cells = adata[rows]
    obs = pd.DataFrame(index=cells.obs_names.copy())
    if labels is not None:
        obs[TYPE_KEY] = pd.Categorical(np.asarray(labels, dtype=str))
    out = anndata.AnnData(X=prepare_input(cells, InputContract(state="counts")), obs=obs,
                          var=pd.DataFrame(index=cells.var_names.copy()))  # fmt: skip
    if train_rows is not None:
        out.uns[PCA_KEY] = space_of_training_cells(prepare_input(adata[train_rows], InputContract(state="counts")))
    return out


@dataclass
class Space:
    """Real and generated cells in one space: log1p-CP10k genes and the real cells' PCs."""

    real: np.ndarray
    fake: np.ndarray
    real_pcs: np.ndarray
    fake_pcs: np.ndarray
    real_raw: np.ndarray
    fake_raw: np.ndarray


_CACHE: dict[tuple[int, ...], Space] = {}


def shared_space(truth: anndata.AnnData, prediction: anndata.AnnData) -> Space:
    """Both sets in log1p-CP10k and on the PCs of the real cells (cached for one pair of objects)."""
    key = (id(truth), id(prediction), truth.n_obs, prediction.n_obs, id(truth.uns.get(PCA_KEY)))
    if key in _CACHE:
        return _CACHE[key]
    if list(map(str, truth.var_names)) != list(map(str, prediction.var_names)):
        common = truth.var_names.intersection(prediction.var_names)
        if len(common) == 0:
            raise InputError("the generated cells share no gene with the real cells")
        truth, prediction = truth[:, common], prediction[:, common]
    if truth.n_obs < 2 or prediction.n_obs < 2:
        raise InputError(f"need at least 2 real and 2 generated cells, got {truth.n_obs} and {prediction.n_obs}")
    real, fake = _log1p_cp10k(truth), _log1p_cp10k(prediction)
    basis = truth.uns.get(PCA_KEY)
    if basis is None or np.shape(basis["components"])[1] != real.shape[1]:
        basis = pca_basis(real)
    mean, components = np.asarray(basis["mean"]), np.asarray(basis["components"])
    raw = lambda a: a.X.toarray() if sp.issparse(a.X) else np.asarray(a.X)  # noqa: E731
    space = Space(real, fake, (real - mean) @ components.T, (fake - mean) @ components.T, raw(truth), raw(prediction))
    _CACHE.clear()  # one pair at a time: a run scores one generated set
    _CACHE[key] = space
    return space


def _subsample(X: np.ndarray, seed: int = SEED) -> np.ndarray:
    if len(X) <= MAX_CELLS:
        return X
    rows = np.random.default_rng(seed).choice(len(X), MAX_CELLS, replace=False)
    return X[np.sort(rows)]


def _pairwise(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(A, B)


# -- distances on the PCs -----------------------------------------------------------------------


def energy_distance(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """2·E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ on the PCs (0 for equal distributions)."""
    s = shared_space(truth, prediction)
    X, Y = _subsample(s.real_pcs), _subsample(s.fake_pcs, SEED + 1)
    return float(2 * _pairwise(X, Y).mean() - _pairwise(X, X).mean() - _pairwise(Y, Y).mean())


def mmd_rbf(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """RBF-kernel MMD² (biased estimate) averaged over bandwidths around the median pooled distance."""
    s = shared_space(truth, prediction)
    X, Y = _subsample(s.real_pcs), _subsample(s.fake_pcs, SEED + 1)
    dxx, dyy, dxy = _pairwise(X, X) ** 2, _pairwise(Y, Y) ** 2, _pairwise(X, Y) ** 2
    median = float(np.median(np.sqrt(np.concatenate([dxx.ravel(), dyy.ravel(), dxy.ravel()]))))
    median = median if median > 0 else 1.0
    values = []
    for scale in MMD_SCALES:
        gamma = 1.0 / (2 * (scale * median) ** 2)
        values.append(np.exp(-gamma * dxx).mean() + np.exp(-gamma * dyy).mean() - 2 * np.exp(-gamma * dxy).mean())
    return float(np.mean(values))


def _wasserstein(truth: anndata.AnnData, prediction: anndata.AnnData, p: int) -> float:
    import ot

    s = shared_space(truth, prediction)
    X, Y = _subsample(s.real_pcs), _subsample(s.fake_pcs, SEED + 1)
    cost = _pairwise(X, Y) ** p
    a, b = np.full(len(X), 1 / len(X)), np.full(len(Y), 1 / len(Y))
    return float(ot.emd2(a, b, cost, numItermax=1_000_000) ** (1 / p))


def wasserstein_1(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """Exact 1-Wasserstein distance on the PCs (POT)."""
    return _wasserstein(truth, prediction, 1)


def wasserstein_2(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """Exact 2-Wasserstein distance on the PCs (POT)."""
    return _wasserstein(truth, prediction, 2)


def classifier_auc(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """ROC AUC of a random forest telling real from generated cells, on held-out cells (0.5 = indistinguishable).

    Equal numbers of real and generated cells (the smaller set's size), split in half per class
    (stratified, seeded): the forest is fitted on one half and scored on the other, then the
    halves swap; the AUC is the mean of the two.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score

    s = shared_space(truth, prediction)
    rng = np.random.default_rng(SEED)
    n = min(len(s.real_pcs), len(s.fake_pcs), MAX_CELLS)
    real = s.real_pcs[rng.choice(len(s.real_pcs), n, replace=False)]
    fake = s.fake_pcs[rng.choice(len(s.fake_pcs), n, replace=False)]
    X = np.concatenate([real, fake])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    half = np.zeros(2 * n, dtype=bool)
    for cls in (0, 1):
        rows = np.flatnonzero(y == cls)
        half[rng.permutation(rows)[: len(rows) // 2]] = True
    aucs = []
    for fit_rows in (half, ~half):
        forest = RandomForestClassifier(n_estimators=100, min_samples_leaf=2, random_state=SEED, n_jobs=1)
        forest.fit(X[fit_rows], y[fit_rows])
        aucs.append(roc_auc_score(y[~fit_rows], forest.predict_proba(X[~fit_rows])[:, 1]))
    return float(np.mean(aucs))


# -- per-gene statistics ------------------------------------------------------------------------


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def gene_mean_corr(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """Pearson correlation over genes of the mean log1p-CP10k expression."""
    s = shared_space(truth, prediction)
    return _pearson(s.real.mean(axis=0), s.fake.mean(axis=0))


def gene_var_corr(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """Pearson correlation over genes of the variance of log1p-CP10k expression."""
    s = shared_space(truth, prediction)
    return _pearson(s.real.var(axis=0), s.fake.var(axis=0))


def zero_fraction_corr(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """Pearson correlation over genes of the share of cells where the gene is exactly zero."""
    s = shared_space(truth, prediction)
    return _pearson((s.real_raw == 0).mean(axis=0), (s.fake_raw == 0).mean(axis=0))


def gene_corr_distance(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """Mean absolute difference of the gene–gene Pearson correlations of the most variable real genes."""
    s = shared_space(truth, prediction)
    top = np.argsort(-s.real.var(axis=0), kind="stable")[:N_CORR_GENES]
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.nan_to_num(np.corrcoef(s.real[:, top], rowvar=False))
        b = np.nan_to_num(np.corrcoef(s.fake[:, top], rowvar=False))
    off = ~np.eye(len(top), dtype=bool)
    return float(np.abs(a - b)[off].mean())


def cv_r2(truth: anndata.AnnData, prediction: anndata.AnnData) -> float:
    """Squared Pearson correlation of each gene's coefficient of variation across cells (scvi-tools' PPC)."""
    s = shared_space(truth, prediction)

    def cv(X: np.ndarray) -> np.ndarray:
        mean = X.mean(axis=0)
        return np.where(mean > 0, X.std(axis=0) / np.where(mean > 0, mean, 1.0), 0.0)

    return _pearson(cv(s.real), cv(s.fake)) ** 2


#: the scalar metrics of the task, by name
SCALARS = {
    "classifier_auc": classifier_auc,
    "mmd_rbf": mmd_rbf,
    "energy_distance": energy_distance,
    "wasserstein_1": wasserstein_1,
    "wasserstein_2": wasserstein_2,
    "gene_mean_corr": gene_mean_corr,
    "gene_var_corr": gene_var_corr,
    "zero_fraction_corr": zero_fraction_corr,
    "gene_corr_distance": gene_corr_distance,
    "cv_r2": cv_r2,
}
#: per-type tables report these (the classifier and transport metrics would be slow per type)
PER_TYPE = ("mmd_rbf", "energy_distance", "gene_mean_corr", "gene_corr_distance")


def per_type(truth: anndata.AnnData, prediction: anndata.AnnData, label_key: str = TYPE_KEY) -> dict[str, Any]:
    """The :data:`PER_TYPE` metrics for each type present in both sets (generated cells need ``obs['cell_type']``)."""
    if TYPE_KEY not in prediction.obs or label_key not in truth.obs:
        return {}
    out: dict[str, Mapping[str, float]] = {}
    real_types = truth.obs[label_key].astype(str).to_numpy()
    fake_types = prediction.obs[TYPE_KEY].astype(str).to_numpy()
    for cell_type in sorted(set(real_types) & set(fake_types)):
        real, fake = truth[real_types == cell_type], prediction[fake_types == cell_type]
        if real.n_obs < 3 or fake.n_obs < 3:
            continue
        out[cell_type] = {name: SCALARS[name](real, fake) for name in PER_TYPE}
    return out
