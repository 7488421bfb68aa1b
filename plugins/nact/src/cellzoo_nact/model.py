"""N-ACT as a cellzoo ``discover`` model: cluster → train scANNA on the clusters → markers → names.

The attention network is scANNA's own model class (:class:`cellzoo_scanna.Scanna`), used as a
component: N-ACT's reference code is the same network under other class names (seed-systems §2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from cellzoo_scanna import Scanna

from .config import NactConfig
from .discoverer import CLUSTER_KEY, ClusterDiscoverer

if TYPE_CHECKING:
    import anndata

__all__ = ["CLUSTER_KEY", "Nact"]


class Nact(ClusterDiscoverer):
    """N-ACT (Heydari et al. 2022): unsupervised cell-type identification with neural attention.

    :meth:`fit` clusters the cells (Leiden on a PCA kNN graph), trains scANNA's attention network
    to predict the clusters, ranks each cluster's genes by attention (or by an attribution of the
    network, ``marker_method``) and names each cluster by matching those genes against a marker
    table (:mod:`cellzoo_nact.naming`). :meth:`discover` does that and writes the result into the
    AnnData; :meth:`predict` assigns new cells to the learned clusters with the network, so they
    get the cluster's name.
    """

    export_output_names: ClassVar[tuple[str, ...]] = ("proba", "attention")
    export_output_meanings: ClassVar[dict[str, str]] = {
        "proba": "softmax probability of each N-ACT cluster (labels = cluster ids; names in the model's config.json)",
        "attention": "gene attention α per cell (rows sum to 1), columns = the model's genes",
    }
    # the golden set is the network's, so are its tolerances
    golden_atol: ClassVar[float] = Scanna.golden_atol
    golden_rtol: ClassVar[float] = Scanna.golden_rtol
    #: a quick recipe for the contract suite's tiny data (30 genes: no input masking, which would hide
    #: half of the 5 marker genes of a class)
    contract_test_config: ClassVar[Mapping[str, Any]] = {
        "epochs": 5,
        "batch_size": 32,
        "lr": 1e-3,
        "masking_fraction": 0.0,
    }
    predict_source: ClassVar[str] = "network"

    def __init__(self, config: NactConfig | None = None):
        super().__init__(config or NactConfig())

    @property
    def scanna(self) -> Scanna | None:
        """The attention network, once fitted or restored."""
        return self.assigner

    @property
    def assigner_input_state(self) -> str:
        return self.config.input_state

    def new_assigner(self) -> Scanna:
        return Scanna(self.config.scanna_config())

    def rank_markers(self, assigner: Scanna, work: anndata.AnnData) -> dict[str, list[str]]:
        cfg = self.config
        markers = assigner.markers(work, CLUSTER_KEY, n=cfg.n_markers, method=cfg.marker_method, correct_only=True)
        if set(markers) != set(assigner.classes):
            # a cluster the network never gets right has no correctly predicted cell to sum attention
            # over (the reference then drops it); rank its genes over all of its cells instead
            every = assigner.markers(work, CLUSTER_KEY, n=cfg.n_markers, method=cfg.marker_method, correct_only=False)
            markers = {c: markers.get(c, every.get(c, [])) for c in assigner.classes}
        return markers

    def explain(self, adata: anndata.AnnData) -> np.ndarray:
        """Attention α per cell over the model's genes (cells × genes), from the trained network."""
        self._check_fitted()
        return self.scanna.explain(adata)

    def extra_artifact_state(self) -> dict[str, Any]:
        return {"marker_method": self.config.marker_method}

    def export_module(self):
        """The eval-mode network ``x → (proba over clusters, attention)`` (for ONNX export)."""
        self._check_fitted()
        return self.scanna.export_module()
