"""cellzoo-scdata: single-cell data sets for the cellzoo model zoo.

``pbmc68k_reduced`` (log1p CP10k), ``pbmc68k_reduced_counts`` (approximate raw counts) and
``krumsiek11`` (simulated myeloid differentiation), all shipped inside scanpy and so usable
offline::

    import cellzoo
    adata = cellzoo.get_dataset("pbmc68k_reduced")

The hook module (:mod:`cellzoo_scdata.plugin`) only declares them; scanpy is imported when a
data set is loaded.
"""

__version__ = "0.1.0"
