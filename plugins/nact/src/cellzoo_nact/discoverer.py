"""What N-ACT and its classical baseline share: cluster → rank each cluster's genes → name it → assign.

A :class:`ClusterDiscoverer` clusters the cells (:mod:`cellzoo_nact.clustering`), trains an
*assigner* (an annotate model of the zoo) to predict those clusters, ranks each cluster's genes
and names the cluster from a marker table (:mod:`cellzoo_nact.naming`). Subclasses say which
assigner and which ranking: N-ACT's is scANNA's attention network and its attention (or
attribution) markers, the baseline's a nearest-centroid assigner and Wilcoxon markers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from cellzoo import ZooModel
from cellzoo.errors import ArtifactError, InputError, NotFittedError

from .discovery import Discovery, _cluster_order, labels_from_names
from .naming import ClusterName, MarkerTable, name_clusters

if TYPE_CHECKING:
    import anndata
    import pandas as pd

#: the obs column of the private AnnData that the assigner is trained on
CLUSTER_KEY = "cluster"


class ClusterDiscoverer(ZooModel):
    """Base of the ``discover`` models that name clusters by their marker genes.

    Subclasses implement :meth:`new_assigner` (an unfitted annotate model of the zoo with
    ``fit(adata, label_key)``, ``predict``, and persistence) and :meth:`rank_markers` (each
    cluster's genes, best first); :attr:`assigner_input_state` is the state of the matrix the
    assigner is trained on.
    """

    task: ClassVar[str] = "discover"
    min_gene_overlap: float = 0.5

    def __init__(self, config: Any):
        super().__init__(config)
        self.assigner: Any = None  # the fitted or restored annotate model that assigns cells to clusters
        self.clustering: dict[str, Any] = {}
        self.cluster_names: dict[str, ClusterName] = {}
        self.cluster_markers: dict[str, list[str]] = {}
        self.cluster_sizes: dict[str, int] = {}
        self.marker_table: dict[str, Any] = {}
        self.fit_result: Discovery | None = None

    # -- for subclasses -------------------------------------------------------------------------
    @property
    def assigner_input_state(self) -> str:
        raise NotImplementedError

    def new_assigner(self) -> Any:
        raise NotImplementedError

    def rank_markers(self, assigner: Any, work: anndata.AnnData) -> dict[str, list[str]]:
        """Cluster id → its ``n_markers`` genes, best first, for every cluster of ``assigner.classes``."""
        raise NotImplementedError

    # -- what the zoo reads ---------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self.assigner is not None and self.assigner.is_fitted and bool(self.cluster_names)

    @property
    def classes(self) -> tuple[str, ...] | None:
        """Cluster ids: the classes of the assigner, in its output order."""
        return self.assigner.classes if self.assigner is not None else None

    @property
    def manifest(self):
        return self.assigner.manifest if self.assigner is not None else None

    @property
    def contract(self):
        return self.assigner.contract if self.assigner is not None else None

    @property
    def last_alignment(self):
        return self.assigner.last_alignment if self.assigner is not None else None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"model {self.name!r} is not trained: call .fit(adata) (or .discover(adata)) on the cells to "
                "cluster, or load a trained one with cellzoo.load(name)"
            )

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
    def fit(self, adata: anndata.AnnData) -> ClusterDiscoverer:
        """Cluster ``adata``, train the assigner on the clusters, find each cluster's markers and name."""
        from .clustering import cluster_cells

        cfg = self.config
        if adata.n_obs == 0:
            raise InputError(f"the AnnData has 0 cells; {self.name} needs cells to cluster")
        table = self._marker_table(adata)  # a bad table fails before any training
        clustering = cluster_cells(adata, cfg)
        work = self._training_data(adata, clustering.labels)
        assigner = self.new_assigner()
        assigner.fit(work, CLUSTER_KEY)
        markers = self.rank_markers(assigner, work)
        names = name_clusters(markers, table, cfg.min_score)
        ids, sizes = np.unique(clustering.labels, return_counts=True)

        self.assigner = assigner
        self.clustering = clustering.to_json()
        self.cluster_names = names
        self.cluster_markers = {c: list(markers[c]) for c in assigner.classes}
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
        """Assign cells to the learned clusters with the assigner; each gets its cluster's name."""
        self._check_fitted()
        self.assigner.min_gene_overlap = self.min_gene_overlap
        annotation = self.assigner.predict(adata)
        classes = self._ordered_classes()
        order = np.array([self.classes.index(c) for c in classes])
        proba = np.asarray(annotation.proba)[:, order]
        clusters = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        return Discovery(
            clusters=clusters,
            labels=labels_from_names(clusters, self.names),
            names=self.names,
            markers=self.cluster_markers,
            scores=self.scores,
            classes=classes,
            proba=proba,
            source=self.predict_source,
        )

    #: how :meth:`predict` assigned the cells (``Discovery.source``)
    predict_source: ClassVar[str] = "assigner"

    def discover(self, adata: anndata.AnnData) -> anndata.AnnData:
        """:meth:`fit` on ``adata`` and write its clusters, names and markers into it (AnnData in, AnnData out)."""
        self.fit(adata)
        return self.fit_result.write(adata, self.name)

    def annotate(self, adata: anndata.AnnData) -> anndata.AnnData:
        """:meth:`predict` and write the result into ``adata``."""
        return self.predict(adata).write(adata, self.name)

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
        """One row per cluster: size, name, score, matched markers, runner-up and top marker genes."""
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
        """A private AnnData with the assigner's input matrix and the cluster labels (the user's object is not touched)."""
        import anndata as ad
        import pandas as pd

        from cellzoo import InputContract, prepare_input

        state = self.assigner_input_state
        X = prepare_input(adata, InputContract(state=state))
        meta = {"input_state": state}
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
        return self.assigner.state_tensors()

    def load_state_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        if self.assigner is None:
            raise ArtifactError(
                f"{self.name}: load_state_tensors() needs the clusters and genes first; call restore_artifact_state() "
                "with the artifact's config.json state (cellzoo.load does both)"
            )
        self.assigner.load_state_tensors(tensors)

    def artifact_state(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            # "network": the key N-ACT's artifacts have always used for their assigner
            "network": self.assigner.artifact_state(),
            "clusters": {
                c: {"n_cells": self.cluster_sizes.get(c, 0), "markers": self.cluster_markers[c], **n.to_json()}
                for c, n in self.cluster_names.items()
            },
            "clustering": dict(self.clustering),
            "marker_table": dict(self.marker_table),
            **self.extra_artifact_state(),
        }

    def extra_artifact_state(self) -> dict[str, Any]:
        """What a subclass adds to :meth:`artifact_state`."""
        return {}

    def restore_artifact_state(self, state: Mapping[str, Any]) -> None:
        try:
            assigner = self.new_assigner()
            assigner.restore_artifact_state(state["network"])
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
            raise ArtifactError(f"config.json lacks the {self.name} state ({exc!r}); the artifact is damaged") from exc
        if set(names) != set(assigner.classes):
            raise ArtifactError(
                f"config.json names clusters {sorted(names)} but the assigner predicts {list(assigner.classes)}; "
                "the artifact is inconsistent"
            )
        self.assigner = assigner
        self.cluster_names, self.cluster_markers, self.cluster_sizes = names, markers, sizes
        self.clustering = dict(state.get("clustering") or {})
        self.marker_table = dict(state.get("marker_table") or {})

    def golden_inputs(self, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        self._check_fitted()
        return self.assigner.golden_inputs(n=n, seed=seed)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_fitted()
        return self.assigner.infer(inputs)
