"""N-ACT as a cellzoo ``discover`` model: cluster → train scANNA on the clusters → markers → names.

The attention network is scANNA's own model class (:class:`cellzoo_scanna.Scanna`), used as a
component: N-ACT's reference code is the same network under other class names (seed-systems §2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from cellzoo import ZooModel
from cellzoo.errors import ArtifactError, InputError, NotFittedError
from cellzoo_scanna import Scanna

from .config import NactConfig
from .discovery import Discovery, _cluster_order, labels_from_names
from .naming import ClusterName, MarkerTable, name_clusters

if TYPE_CHECKING:
    import anndata
    import pandas as pd

#: the obs column of the private AnnData that scANNA is trained on
CLUSTER_KEY = "cluster"


class Nact(ZooModel):
    """N-ACT (Heydari et al. 2022): unsupervised cell-type identification with neural attention.

    :meth:`fit` clusters the cells (Leiden on a PCA kNN graph), trains scANNA's attention network
    to predict the clusters, ranks each cluster's genes by attention and names each cluster by
    matching those genes against a marker table (:mod:`cellzoo_nact.naming`). :meth:`discover`
    does that and writes the result into the AnnData; :meth:`predict` assigns new cells to the
    learned clusters with the network, so they get the cluster's name.
    """

    task: ClassVar[str] = "discover"
    min_gene_overlap: float = 0.5
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

    def __init__(self, config: NactConfig | None = None):
        super().__init__(config or NactConfig())
        self.scanna: Scanna | None = None  # the attention network, once fitted or restored
        self.clustering: dict[str, Any] = {}
        self.cluster_names: dict[str, ClusterName] = {}
        self.cluster_markers: dict[str, list[str]] = {}
        self.cluster_sizes: dict[str, int] = {}
        self.marker_table: dict[str, Any] = {}
        self.fit_result: Discovery | None = None

    # -- what the zoo reads ---------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self.scanna is not None and self.scanna.is_fitted and bool(self.cluster_names)

    @property
    def classes(self) -> tuple[str, ...] | None:
        """Cluster ids: the classes of the attention network, in its output order."""
        return self.scanna.classes if self.scanna is not None else None

    @property
    def manifest(self):
        return self.scanna.manifest if self.scanna is not None else None

    @property
    def contract(self):
        return self.scanna.contract if self.scanna is not None else None

    @property
    def last_alignment(self):
        return self.scanna.last_alignment if self.scanna is not None else None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"model {self.name!r} is not trained: call .fit(adata) (or .discover(adata)) on the cells to "
                "cluster, or load a trained one with cellzoo.load(name)"
            )

    def _new_scanna(self) -> Scanna:
        return Scanna(self.config.scanna_config())

    def _marker_table(self, adata: anndata.AnnData) -> MarkerTable:
        if self.config.marker_table != "declared":
            return MarkerTable.load(self.config.marker_table)
        from cellzoo import true_markers

        declared = true_markers(adata)
        if not declared:
            raise InputError(
                'marker_table="declared" names cell types with the markers the data declares in uns["cellzoo"]'
                '["markers"], and this AnnData declares none; set it ({cell type: [gene, ...]}) or give a table'
            )
        return MarkerTable.from_mapping(declared, origin='uns["cellzoo"]["markers"]')

    # -- the protocol ---------------------------------------------------------------------------
    def fit(self, adata: anndata.AnnData) -> Nact:
        """Cluster ``adata``, train the attention network on the clusters, find markers and names."""
        from .clustering import cluster_cells

        cfg = self.config
        if adata.n_obs == 0:
            raise InputError("the AnnData has 0 cells; N-ACT needs cells to cluster")
        table = self._marker_table(adata)  # a bad table fails before any training
        clustering = cluster_cells(adata, cfg)
        work = self._training_data(adata, clustering.labels)
        scanna = self._new_scanna()
        scanna.fit(work, CLUSTER_KEY)
        markers = scanna.markers(work, CLUSTER_KEY, n=cfg.n_markers, method=cfg.marker_method, correct_only=True)
        if set(markers) != set(scanna.classes):
            # a cluster the network never gets right has no correctly predicted cell to sum attention
            # over (the reference then drops it); rank its genes over all of its cells instead
            every = scanna.markers(work, CLUSTER_KEY, n=cfg.n_markers, method=cfg.marker_method, correct_only=False)
            markers = {c: markers.get(c, every.get(c, [])) for c in scanna.classes}
        names = name_clusters(markers, table, cfg.min_score)
        ids, sizes = np.unique(clustering.labels, return_counts=True)

        self.scanna = scanna
        self.clustering = clustering.to_json()
        self.cluster_names = names
        self.cluster_markers = {c: list(markers[c]) for c in scanna.classes}
        self.cluster_sizes = {str(c): int(n) for c, n in zip(ids, sizes)}
        self.marker_table = table.to_json()
        self.fit_result = Discovery(
            clusters=np.asarray(clustering.labels, dtype=object),
            labels=labels_from_names(clustering.labels, self.names),
            names=self.names,
            markers=self.cluster_markers,
            scores=self.scores,
            classes=self._ordered_classes(),
            source=f"{clustering.method} clustering",
        )
        return self

    def predict(self, adata: anndata.AnnData) -> Discovery:
        """Assign cells to the learned clusters with the attention network; each gets its cluster's name."""
        self._check_fitted()
        self.scanna.min_gene_overlap = self.min_gene_overlap
        annotation = self.scanna.predict(adata)
        order = np.array([self.classes.index(c) for c in self._ordered_classes()])
        proba = np.asarray(annotation.proba)[:, order]
        classes = self._ordered_classes()
        clusters = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        return Discovery(
            clusters=clusters,
            labels=labels_from_names(clusters, self.names),
            names=self.names,
            markers=self.cluster_markers,
            scores=self.scores,
            classes=classes,
            proba=proba,
            source="network",
        )

    def discover(self, adata: anndata.AnnData) -> anndata.AnnData:
        """:meth:`fit` on ``adata`` and write its clusters, names and markers into it (AnnData in, AnnData out)."""
        self.fit(adata)
        return self.fit_result.write(adata, self.name)

    def annotate(self, adata: anndata.AnnData) -> anndata.AnnData:
        """:meth:`predict` and write the result into ``adata``."""
        return self.predict(adata).write(adata, self.name)

    def explain(self, adata: anndata.AnnData) -> np.ndarray:
        """Attention α per cell over the model's genes (cells × genes), from the trained network."""
        self._check_fitted()
        return self.scanna.explain(adata)

    # -- results --------------------------------------------------------------------------------
    @property
    def names(self) -> dict[str, str]:
        return {c: n.name for c, n in self.cluster_names.items()}

    @property
    def scores(self) -> dict[str, float]:
        return {c: float(n.score) for c, n in self.cluster_names.items()}

    def _ordered_classes(self) -> tuple[str, ...]:
        return tuple(sorted(self.classes, key=_cluster_order))

    def cluster_table(self, n_genes: int = 5) -> pd.DataFrame:
        """One row per cluster: size, name, score, matched markers, runner-up and top attention genes."""
        import pandas as pd

        self._check_fitted()
        rows = []
        for cluster in self._ordered_classes():
            name = self.cluster_names[cluster]
            rows.append(
                {
                    "cluster": cluster,
                    "n_cells": self.cluster_sizes.get(cluster, 0),
                    "name": name.name,
                    "score": round(name.score, 3),
                    "matched": ", ".join(name.matched),
                    "runner_up": name.runner_up or "",
                    "runner_up_score": round(name.runner_up_score, 3),
                    "top_genes": ", ".join(self.cluster_markers.get(cluster, [])[:n_genes]),
                }
            )
        return pd.DataFrame(rows).set_index("cluster")

    def _training_data(self, adata: anndata.AnnData, clusters: np.ndarray) -> anndata.AnnData:
        """A private AnnData with the network's input matrix and the cluster labels (the user's object is not touched)."""
        import anndata as ad
        import pandas as pd

        from cellzoo import InputContract, prepare_input

        X = prepare_input(adata, InputContract(state=self.config.input_state))
        meta = {"input_state": self.config.input_state}
        declared = adata.uns.get("cellzoo")
        if isinstance(declared, Mapping) and declared.get("target_sum") is not None:
            meta["target_sum"] = declared["target_sum"]  # what the user's data declared, still true of X
        return ad.AnnData(
            X=X,
            obs=pd.DataFrame({CLUSTER_KEY: np.asarray(clusters, dtype=str)}, index=adata.obs_names.copy()),
            var=pd.DataFrame(index=adata.var_names.copy()),
            uns={"cellzoo": meta},
        )

    # -- persistence ----------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return self.scanna.state_tensors()

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        if self.scanna is None:
            raise ArtifactError(
                f"{self.name}: load_state_tensors() needs the clusters and genes first; call restore_artifact_state() "
                "with the artifact's config.json state (cellzoo.load does both)"
            )
        self.scanna.load_state_tensors(tensors)

    def artifact_state(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "network": self.scanna.artifact_state(),
            "clusters": {
                c: {"n_cells": self.cluster_sizes.get(c, 0), "markers": self.cluster_markers[c], **n.to_json()}
                for c, n in self.cluster_names.items()
            },
            "clustering": dict(self.clustering),
            "marker_table": dict(self.marker_table),
            "marker_method": self.config.marker_method,
        }

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        try:
            scanna = self._new_scanna()
            scanna.restore_artifact_state(state["network"])
            clusters = state["clusters"]
            names = {
                str(c): ClusterName(
                    str(v["name"]),
                    float(v["score"]),
                    tuple(v.get("matched", ())),
                    v.get("runner_up"),
                    float(v.get("runner_up_score", 0.0)),
                )
                for c, v in clusters.items()
            }
            markers = {str(c): [str(g) for g in v["markers"]] for c, v in clusters.items()}
            sizes = {str(c): int(v.get("n_cells", 0)) for c, v in clusters.items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"config.json lacks the N-ACT state ({exc!r}); the artifact is damaged") from exc
        if set(names) != set(scanna.classes):
            raise ArtifactError(
                f"config.json names clusters {sorted(names)} but the network predicts {list(scanna.classes)}; "
                "the artifact is inconsistent"
            )
        self.scanna = scanna
        self.cluster_names, self.cluster_markers, self.cluster_sizes = names, markers, sizes
        self.clustering = dict(state.get("clustering") or {})
        self.marker_table = dict(state.get("marker_table") or {})

    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        self._check_fitted()
        return self.scanna.golden_inputs(n=n, seed=seed)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_fitted()
        return self.scanna.infer(inputs)

    def export_module(self):
        """The eval-mode network ``x → (proba over clusters, attention)`` (for ONNX export)."""
        self._check_fitted()
        return self.scanna.export_module()
