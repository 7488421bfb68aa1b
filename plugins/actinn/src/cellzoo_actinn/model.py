"""ACTINN as a cellzoo ``annotate`` model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from cellzoo.errors import ArtifactError
from cellzoo.training import TorchAnnotator

from .config import ActinnConfig
from .network import ActinnExport, ActinnInference, ActinnNet
from .preprocessing import gene_filter, scaled_log2

PREDICT_BATCH = 4096


class Actinn(TorchAnnotator):
    """ACTINN (Ma & Pellegrini 2020): scale to 20,000 → log2(x+1) → gene filter → 100-50-25 MLP.

    Consumes log1p-normalised expression (raw counts are converted by the input contract):
    ACTINN's per-cell rescaling makes the original normalisation constant irrelevant.
    """

    input_state = "log1p_norm"
    min_gene_overlap = 0.5
    #: config overrides that let the project's contract suite train on its 60-cell data in seconds
    contract_test_config: ClassVar[Mapping[str, Any]] = {"epochs": 20, "min_steps": 0, "batch_size": 16, "lr": 1e-3}
    golden_atol = 1e-5
    golden_rtol = 1e-3

    def __init__(self, config: ActinnConfig | None = None):
        super().__init__(config or ActinnConfig())
        #: the manifest genes that pass the training-set filter, in manifest order
        self.kept_genes: tuple[str, ...] | None = None

    @property
    def is_fitted(self) -> bool:
        return super().is_fitted and self.kept_genes is not None

    def _kept_index(self) -> torch.Tensor:
        position = {g: i for i, g in enumerate(self.manifest.genes)}
        return torch.as_tensor([position[g] for g in self.kept_genes], dtype=torch.int64)

    def export_module(self) -> torch.nn.Module:
        """The eval-mode module ``x → proba`` (preprocessing in the graph) that :meth:`infer` runs."""
        self._check_fitted()
        return ActinnExport(self.net, self._kept_index(), len(self.manifest.genes), self.config.scale_to).cpu().eval()

    def build_net(self, n_genes: int, n_classes: int) -> ActinnNet:
        return ActinnNet(n_genes, n_classes, self.config.hidden)

    # -- training -----------------------------------------------------------------------------
    def _fit(self, X, y: np.ndarray) -> None:
        from cellzoo.training import seed_everything

        cfg = self.config
        seed_everything(cfg.seed)
        features = scaled_log2(X, cfg.scale_to)
        # the filter sees only the cells given to fit (the reference also used the test cells)
        mask = gene_filter(features, cfg.gene_percentiles)
        self.kept_genes = tuple(np.asarray(self.manifest.genes, dtype=object)[mask])
        features = features[:, np.flatnonzero(mask)]
        self.net = self.build_net(int(mask.sum()), len(self.classes))

        self.train_net(features, y, desc="actinn")

    def lr_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.StepLR:
        # ×lr_decay every decay_every mini-batches, as the reference stepped its scheduler per iteration
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.config.decay_every, gamma=self.config.lr_decay)

    # -- inference ----------------------------------------------------------------------------
    def _predict_proba(self, X, **kwargs) -> np.ndarray:
        from cellzoo.training import predict_in_batches

        module = ActinnInference(self.net, self._kept_index(), self.config.scale_to)
        try:
            return predict_in_batches(module, X, batch_size=PREDICT_BATCH, device=self.config.device)
        finally:
            self.net.cpu()

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_fitted()
        with torch.inference_mode():
            proba = self.export_module()(torch.as_tensor(np.asarray(inputs["x"], dtype=np.float32)))
        return {"proba": proba.numpy()}

    # -- persistence (tensors and the training record: TorchAnnotator) ------------------------
    def artifact_state(self) -> dict[str, Any]:
        return {**super().artifact_state(), "kept_genes": list(self.kept_genes)}

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        super().restore_artifact_state(state)
        kept = state.get("kept_genes")
        if not isinstance(kept, list) or not kept or not all(isinstance(g, str) for g in kept):
            raise ArtifactError(
                "config.json lacks ACTINN's 'kept_genes' list (the gene filter); the artifact is damaged"
            )
        unknown = sorted(set(kept) - set(self.manifest.genes))
        if unknown:
            raise ArtifactError(
                f"ACTINN's kept_genes name {len(unknown)} genes that are not in the gene manifest (e.g. {unknown[:5]}); "
                "the artifact is damaged"
            )
        self.kept_genes = tuple(kept)
        self.net = self.build_net(len(kept), len(self.classes)).eval()


class ActinnIG(Actinn):
    """ACTINN as a marker ranker (``actinn_ig``): integrated gradients against the other classes' mean cell.

    ACTINN rescales every cell to the same total, so the path from the all-zero cell is one cell
    after rescaling and explains nothing; the class-contrastive baseline is the one that works.
    """

    def markers(self, adata, label_key: str, n: int = 25) -> dict[str, list[str]]:
        return self.attribution_markers(adata, label_key, n, method="integrated_gradients", baseline="others")
