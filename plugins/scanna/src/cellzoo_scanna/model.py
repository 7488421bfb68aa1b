"""scANNA as a cellzoo ``annotate`` model: training, prediction, attention and marker genes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from cellzoo.errors import ArtifactError, ConfigError, InputError
from cellzoo.training import TorchAnnotator

from .config import ScannaConfig
from .markers import METHODS, rank_markers
from .network import ScannaInference, ScannaNet

if TYPE_CHECKING:
    import anndata

#: marker rankings from gene attributions: name → (attribution method, integrated-gradients baseline)
ATTRIBUTION_RANKINGS = {
    "ig": ("integrated_gradients", "others"),
    "ig_zeros": ("integrated_gradients", "zeros"),
    "grad_input": ("grad_input", "zeros"),
}

#: marker rankings from the gene scores γ = α ⊙ x (scANNA's attended input)
GAMMA_RANKINGS = ("gamma", "gamma_contrast")

#: inference batch size: large enough to keep the G × G matmuls efficient, small enough for memory
PREDICT_BATCH = 1024


class Scanna(TorchAnnotator):
    """scANNA (Heydari et al.): gene attention → projection blocks → LeakyReLU logits.

    ``predict`` gives labels and softmax probabilities; :meth:`explain` the per-cell attention
    over the model's genes; :meth:`markers` and :meth:`global_markers` rank genes by attention.
    """

    min_gene_overlap = 0.5
    #: how :meth:`markers` ranks genes unless told otherwise (``scanna_tfidf`` ranks by tf-idf)
    marker_method: ClassVar[str] = "attention"
    #: config overrides that let the project's contract suite train on its 60-cell data in seconds
    contract_test_config: ClassVar[Mapping[str, Any]] = {
        "epochs": 20,
        "min_steps": 0,
        "batch_size": 16,
        "lr": 1e-3,
        "masking_fraction": 0.0,
    }
    #: a finding, not a bug: summed attention ranks the genes the network attends to, which are not
    #: each class's own up-regulated genes — precision@k near chance here, as on Splat and PBMC
    #: (README, "Marker genes")
    contract_expected_failures: ClassVar[Mapping[str, str]] = {
        "markers.learns": "attention markers are not per-class DE genes; precision@k is near chance",
    }
    golden_atol = 1e-5
    golden_rtol = 1e-3

    def __init__(self, config: ScannaConfig | None = None):
        super().__init__(config or ScannaConfig())
        # the instance's input state follows the configuration ("log1p_norm" or "counts")
        self.input_state = self.config.input_state

    # -- building -----------------------------------------------------------------------------
    def build_net(self, n_genes: int, n_classes: int) -> ScannaNet:
        return ScannaNet(
            n_genes, n_classes, ffn_width=self.config.ffn_width, masking_fraction=self.config.masking_fraction
        )

    def selected_genes(self, X) -> np.ndarray | None:
        """The ``n_top_genes`` most variable training genes when the data has more (None: every gene)."""
        from cellzoo.training import highly_variable

        n_top = int(self.config.n_top_genes)
        if not n_top or X.shape[1] <= n_top:
            return None
        return highly_variable(X, n_top, self.contract.state)

    def gene_selection_hint(self) -> str:
        return f" or set n_top_genes (now {self.config.n_top_genes}; --set n_top_genes=5000, the papers' choice)"

    def export_module(self) -> torch.nn.Module:
        """The eval-mode module ``x → (proba, attention)`` that :meth:`infer` runs (for ONNX export)."""
        self._check_fitted()
        return ScannaInference(self.net).cpu().eval()

    # -- training -----------------------------------------------------------------------------
    def _fit(self, X, y: np.ndarray) -> None:
        from cellzoo.training import seed_everything

        seed_everything(self.config.seed)
        self.net = self.build_net(X.shape[1], len(self.classes))
        self.train_net(X, y, desc="scanna")

    # -- inference ----------------------------------------------------------------------------
    def _run(self, X, *, attention: bool) -> Any:
        from cellzoo.training import predict_in_batches

        module = ScannaInference(self.net)
        fn = (lambda m, xb: m(xb)) if attention else (lambda m, xb: m(xb)[0])
        try:
            return predict_in_batches(module, X, batch_size=PREDICT_BATCH, device=self.config.device, fn=fn)
        finally:
            self.net.cpu()

    def _predict_proba(self, X, **kwargs) -> np.ndarray:
        return self._run(X, attention=False)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_fitted()
        with torch.inference_mode():
            proba, attention = self.export_module()(torch.as_tensor(np.asarray(inputs["x"], dtype=np.float32)))
        return {"proba": proba.numpy(), "attention": attention.numpy()}

    def explain(self, adata: anndata.AnnData) -> np.ndarray:
        """Attention α per cell (cells × the model's genes, rows sum to 1), computed in batches."""
        return self._run(self.model_input(adata), attention=True)[1]

    def annotate(
        self, adata: anndata.AnnData, outputs: Sequence[str] = ("proba",), *, attention: bool = False
    ) -> anndata.AnnData:
        """Write labels and probabilities into ``adata``; with ``attention=True`` also α, in the same pass.

        Keys: ``obs["cellzoo_scanna_label"]``, ``obsm["cellzoo_scanna_proba"]`` and, when asked,
        ``obsm["cellzoo_scanna_attention"]`` (cells × the model's genes, named in
        ``uns["cellzoo_scanna_attention_genes"]``). Attention is opt-in because it is as large as
        the expression matrix, and dense.
        """
        # one pass of the exported module through the shared pipeline, in chunks of cells
        return super().annotate(adata, ("proba", "attention") if attention else outputs)

    # -- marker genes -------------------------------------------------------------------------
    def _attention_mass(
        self, X, groups: np.ndarray, n_groups: int, keep: str | None, quantity: str = "alpha"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Attention summed per group (groups × genes) and cells counted per group, streamed in batches.

        ``keep="correct"`` counts only cells whose predicted class code equals their group code.
        ``quantity="gamma"`` sums the gene scores γ = α ⊙ x instead of α.
        """
        from cellzoo.training import batches, select_device

        device = select_device(self.config.device)
        module = ScannaInference(self.net).to(device).eval()
        mass = torch.zeros(n_groups, self.net.n_genes, dtype=torch.float64, device=device)
        n_cells = np.zeros(n_groups, dtype=np.int64)
        try:
            with torch.inference_mode():
                for start, block in zip(range(0, X.shape[0], PREDICT_BATCH), batches(X, PREDICT_BATCH)):
                    g = torch.as_tensor(groups[start : start + len(block)], device=device)
                    xb = torch.from_numpy(block).to(device)
                    proba, alpha = module(xb)
                    if quantity == "gamma":  # in eval mode the masking is the identity: γ = α ⊙ x
                        alpha = alpha * xb
                    if keep == "correct":
                        selected = proba.argmax(dim=1) == g
                        g, alpha = g[selected], alpha[selected]
                    mass.index_add_(0, g, alpha.double())
                    n_cells += np.bincount(g.cpu().numpy(), minlength=n_groups)
        finally:
            self.net.cpu()
        return mass.cpu().numpy(), n_cells

    def markers(
        self,
        adata: anndata.AnnData,
        label_key: str,
        n: int = 25,
        method: str | None = None,
        correct_only: bool = True,
        top_k: int | None = None,
    ) -> dict[str, list[str]]:
        """The ``n`` top genes of each class in ``adata.obs[label_key]``, ranked by attention.

        ``method`` defaults to the model's :attr:`marker_method` (``"attention"``, the reference).
        ``gamma`` ranks by the gene scores γ = α ⊙ x summed over each class's cells, ``gamma_contrast``
        by their mean in the class over their mean in the other cells. The rankings of
        :data:`ATTRIBUTION_RANKINGS` (``ig``, ``ig_zeros``, ``grad_input``) rank
        by the network's gene attributions instead (:meth:`~cellzoo.training.TorchAnnotator.attribution_markers`:
        each class's cells explained for their class, averaged); the other arguments are the attention rankings'.
        ``method="attention"`` sums α over the class's cells (only the correctly predicted ones
        with ``correct_only``); ``method="tfidf"`` re-ranks those sums by ``tf · idf`` so that genes
        at the top of many classes are pushed down (definition in :mod:`cellzoo_scanna.markers`;
        ``top_k`` sets the lists idf counts, default ``n``). Classes without any (correct) cell
        get no entry. The result is also stored in ``adata.uns["cellzoo_scanna_markers"][method]``.
        """
        self._check_fitted()
        method = method or self.marker_method
        if method in ATTRIBUTION_RANKINGS:
            how, baseline = ATTRIBUTION_RANKINGS[method]
            return self.attribution_markers(adata, label_key, n, method=how, baseline=baseline)
        if method in GAMMA_RANKINGS:
            return self._gamma_markers(adata, label_key, n, contrast=method == "gamma_contrast")
        if method not in METHODS:
            raise ConfigError(
                f"marker method {method!r} is not one of {METHODS + tuple(ATTRIBUTION_RANKINGS) + GAMMA_RANKINGS}"
            )
        if int(n) < 1:
            raise ConfigError(f"n={n!r}: ask for at least one marker gene per class")
        labels = _label_column(adata, label_key)
        groups, codes = np.unique(labels, return_inverse=True)
        # group codes in the model's class numbering, so "correct" is one comparison per batch
        known = {c: i for i, c in enumerate(self.classes)}
        model_code = np.array([known.get(g, -1) for g in groups], dtype=np.int64)
        X = self.model_input(adata)
        if correct_only:
            # cells of a class the model never saw get code -1: never correct, so that class gets no entry
            mass_model, n_model = self._attention_mass(X, model_code[codes], len(self.classes), "correct")
            seen = model_code >= 0
            mass = np.zeros((len(groups), self.net.n_genes))
            n_cells = np.zeros(len(groups), dtype=np.int64)
            mass[seen], n_cells[seen] = mass_model[model_code[seen]], n_model[model_code[seen]]
        else:
            mass, n_cells = self._attention_mass(X, codes, len(groups), None)
        present = n_cells > 0
        idx, scores = rank_markers(mass[present], n=n, method=method, top_k=top_k)
        genes = np.asarray(self.manifest.genes, dtype=object)
        result = {str(g): list(genes[row]) for g, row in zip(groups[present], idx)}
        _store(
            adata,
            f"cellzoo_{self.name}_markers",
            method,
            {
                "groups": np.asarray(groups[present], dtype=object),
                "genes": np.asarray(genes[idx], dtype=object),
                "scores": np.asarray(scores, dtype=np.float64),
                "n_cells": n_cells[present],
                "label_key": str(label_key),
                "correct_only": bool(correct_only),
                "n": int(idx.shape[1]),
            },
        )
        return result

    def _gamma_markers(self, adata: anndata.AnnData, label_key: str, n: int, contrast: bool) -> dict[str, list[str]]:
        """Each class's genes by γ = α ⊙ x over all its cells: summed, or its class mean over the mean elsewhere."""
        if int(n) < 1:
            raise ConfigError(f"n={n!r}: ask for at least one marker gene per class")
        labels = _label_column(adata, label_key)
        groups, codes = np.unique(labels, return_inverse=True)
        mass, n_cells = self._attention_mass(self.model_input(adata), codes, len(groups), None, quantity="gamma")
        scores = mass
        if contrast:
            inside = mass / np.maximum(n_cells, 1)[:, None]
            outside = (mass.sum(axis=0) - mass) / np.maximum(n_cells.sum() - n_cells, 1)[:, None]
            scores = inside / (outside + 1e-12)
        idx, _ = rank_markers(scores, n=n, method="attention")
        genes = np.asarray(self.manifest.genes, dtype=object)
        return {str(g): [str(x) for x in genes[row]] for g, row in zip(groups, idx, strict=True)}

    def global_markers(self, adata: anndata.AnnData, n: int = 25) -> list[str]:
        """The ``n`` genes with the most attention summed over all cells of ``adata``.

        Stored in ``adata.uns["cellzoo_scanna_markers"]["global"]``.
        """
        self._check_fitted()
        if int(n) < 1:
            raise ConfigError(f"n={n!r}: ask for at least one gene")
        X = self.model_input(adata)
        mass, _ = self._attention_mass(X, np.zeros(X.shape[0], dtype=np.int64), 1, None)
        idx, scores = rank_markers(mass, n=n, method="attention")
        genes = np.asarray(self.manifest.genes, dtype=object)[idx[0]]
        _store(
            adata,
            f"cellzoo_{self.name}_markers",
            "global",
            {"genes": np.asarray(genes, dtype=object), "scores": scores[0], "n": len(genes)},
        )
        return list(genes)

    # -- persistence (tensors and the training record: TorchAnnotator) ------------------------
    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        super().restore_artifact_state(state)
        if self.contract.state != self.input_state:
            raise ArtifactError(
                f"config.json declares input_state {self.input_state!r} but the input contract says "
                f"{self.contract.state!r}; the artifact is inconsistent"
            )
        self.net = self.build_net(len(self.manifest.genes), len(self.classes)).eval()


def _label_column(adata: anndata.AnnData, label_key: str) -> np.ndarray:
    if label_key not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:20])) or "(none)"
        raise InputError(f"label key {label_key!r} is not a column of adata.obs (columns: {cols})")
    column = adata.obs[label_key]
    if column.isna().any():
        raise InputError(f"adata.obs[{label_key!r}] has {int(column.isna().sum())} missing labels; drop or fill them")
    return column.astype(str).to_numpy()


def _store(adata: anndata.AnnData, key: str, section: str, value: dict[str, Any]) -> None:
    current = adata.uns.get(key)
    current = dict(current) if isinstance(current, Mapping) else {}
    current[section] = value
    adata.uns[key] = current


class ScannaTfidf(Scanna):
    """scANNA whose :meth:`~Scanna.markers` rank by tf-idf of the attention sums (the ``scanna_tfidf`` ranker)."""

    marker_method: ClassVar[str] = "tfidf"


class ScannaIG(Scanna):
    """scANNA ranking markers by integrated gradients against the other classes' mean cell (``scanna_ig``)."""

    marker_method: ClassVar[str] = "ig"
    contract_expected_failures: ClassVar[Mapping[str, str]] = {
        "markers.learns": "on the contract's 60 cells the contrastive baseline finds about half of the markers (p@5 ~0.5)",
    }


class ScannaIGZeros(Scanna):
    """scANNA ranking markers by integrated gradients from the all-zero cell (``scanna_ig_zeros``)."""

    marker_method: ClassVar[str] = "ig_zeros"
    contract_expected_failures: ClassVar[Mapping[str, str]] = {}


class ScannaGradInput(Scanna):
    """scANNA ranking markers by gradient × input (``scanna_grad_input``)."""

    marker_method: ClassVar[str] = "grad_input"
    contract_expected_failures: ClassVar[Mapping[str, str]] = {
        "markers.learns": "on the contract's 60 cells gradient × input finds about half of the markers (p@5 ~0.5)",
    }


class ScannaGamma(Scanna):
    """scANNA ranking markers by the gene scores γ = α ⊙ x summed over each class's cells (``scanna_gamma``)."""

    marker_method: ClassVar[str] = "gamma"
    contract_expected_failures: ClassVar[Mapping[str, str]] = {
        "markers.learns": "γ = α ⊙ x inherits the attention's flatness on the contract's tiny data (p@5 ~0.3)",
    }


class ScannaGammaContrast(Scanna):
    """scANNA ranking markers by γ's mean in the class over its mean elsewhere (``scanna_gamma_contrast``)."""

    marker_method: ClassVar[str] = "gamma_contrast"
    contract_expected_failures: ClassVar[Mapping[str, str]] = {
        "markers.learns": "γ = α ⊙ x inherits the attention's flatness on the contract's tiny data (p@5 ~0.3)",
    }
