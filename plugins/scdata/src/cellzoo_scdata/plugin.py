"""cellzoo hooks of the scdata plugin: declarations only.

Importing this module and calling its hooks imports neither scanpy, anndata nor torch: loaders
are lazy ``"module:function"`` strings resolved when a data set is loaded.
"""

from __future__ import annotations

from cellzoo import DatasetSpec, hookimpl

ZHENG_2017 = (
    "Zheng GXY, Terry JM, Belgrader P, et al. Massively parallel digital transcriptional profiling of "
    "single cells. Nature Communications 8:14049 (2017). doi:10.1038/ncomms14049; reduced subset from "
    "Wolf FA, Angerer P, Theis FJ. SCANPY: large-scale single-cell gene expression data analysis. "
    "Genome Biology 19:15 (2018). doi:10.1186/s13059-017-1382-0"
)
KRUMSIEK_2011 = (
    "Krumsiek J, Marr C, Schroeder T, Theis FJ. Hierarchical differentiation of myeloid progenitors is "
    "encoded in the transcription factor network. PLoS ONE 6(8):e22649 (2011). "
    "doi:10.1371/journal.pone.0022649; simulated data as shipped with scanpy (Wolf et al. 2018)"
)
ZAPPIA_2017 = (
    "Zappia L, Phipson B, Oshlack A. Splatter: simulation of single-cell RNA sequencing data. "
    "Genome Biology 18:174 (2017). doi:10.1186/s13059-017-1305-0"
)
_PBMC_LICENSE = "10x Genomics public dataset (terms at 10xgenomics.com); file bundled in scanpy (BSD-3-Clause)"
_LOADERS = "cellzoo_scdata.bundled:"


@hookimpl
def cellzoo_datasets():
    return [
        DatasetSpec(
            name="pbmc68k_reduced",
            tasks=("annotate", "discover", "markers"),
            loader=_LOADERS + "pbmc68k_reduced",
            label_key="bulk_labels",
            input_state="log1p_norm",
            summary=(
                "700 PBMCs × 765 genes (Zheng 2017, scanpy's reduced copy; ships with scanpy, offline). .X = "
                "scanpy's raw.X: log1p of counts normalised to 10,000 per cell (measured) before subsetting "
                "to 765 genes, 3 decimals. Labels: bulk_labels (10 types); also louvain."
            ),
            n_obs=700,
            n_vars=765,
            citation=ZHENG_2017,
            license=_PBMC_LICENSE,
        ),
        DatasetSpec(
            name="pbmc68k_reduced_counts",
            tasks=("annotate", "discover", "markers", "generate"),
            loader=_LOADERS + "pbmc68k_reduced_counts",
            label_key="bulk_labels",
            input_state="counts",
            summary=(
                "pbmc68k_reduced with approximate raw counts: expm1(raw.X) divided per cell by its smallest "
                "non-zero value, rounded (every cell within 0.12 of integers). For models that need counts."
            ),
            n_obs=700,
            n_vars=765,
            citation=ZHENG_2017,
            license=_PBMC_LICENSE,
        ),
        DatasetSpec(
            name="krumsiek11",
            tasks=("annotate",),
            loader=_LOADERS + "krumsiek11",
            label_key="cell_type",
            input_state="scaled",
            summary=(
                "Simulated myeloid differentiation, 640 cells × 11 transcription factors (ships with scanpy). "
                "Continuous levels in about [0, 1] with small noise (min -0.016): not counts, not log1p."
            ),
            n_obs=640,
            n_vars=11,
            citation=KRUMSIEK_2011,
            license="BSD-3-Clause (scanpy)",
        ),
        DatasetSpec(
            name="splat",
            tasks=("annotate", "discover", "markers", "generate"),
            loader="cellzoo_scdata.splat:splat",
            label_key="group",
            input_state="counts",
            summary=(
                "Splat-model simulation (Zappia 2017): gamma-Poisson counts, per-group DE factors, log-normal "
                "library sizes, optional dropout; any size, seeded. Ground-truth markers in uns['splat']['markers']. "
                "Params: n_cells, n_genes, n_groups, de_prob, de_fac_loc, de_fac_scale, lib_loc, lib_scale, "
                "dropout, dropout_mid, dropout_shape, seed, group_probs, chunk_size."
            ),
            n_obs=2000,
            n_vars=1000,
            citation=ZAPPIA_2017,
            license="MIT (simulated data)",
        ),
    ]
