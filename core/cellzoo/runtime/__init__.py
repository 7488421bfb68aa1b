"""Run exported cellzoo models with onnxruntime, numpy and anndata only — no torch.

::

    from cellzoo.runtime import Session, annotate_h5ad, sample_cells

    session = Session("scanna-onnx/model.onnx", device="cuda")   # fails loudly if CUDA did not start
    run = annotate_h5ad(session, "cells.h5ad", "annotated.h5ad")  # streams the file in chunks
    print(run.alignment.summary(), f"{run.cells_per_second:,.0f} cells/s")

    generator = Session("cscgan-onnx/model.onnx")
    cells = sample_cells(generator, 1000, cell_type="B cells", seed=0)  # an AnnData, as Generator.sample

Importing this package never imports torch (``tests/test_runtime.py`` checks ``sys.modules`` in a
fresh interpreter), so it deploys with ``pip install 'cellzoo[runtime]'``. The ONNX metadata
it reads is described in :mod:`cellzoo.runtime.metadata`.
"""

from __future__ import annotations

from ..lazy import lazy_module

_API = {
    "Session": "session",
    "ProviderFallbackWarning": "session",
    "default_threads": "session",
    "ModelInfo": "metadata",
    "model_info": "metadata",
    "annotate_h5ad": "annotate",
    "annotate_adata": "annotate",
    "AnnotationRun": "annotate",
    "result_keys": "annotate",
    "verify_onnx": "verify",
    "sample_cells": "sample",
    "upscale_image": "upscale",
}

__getattr__, __dir__, __all__ = lazy_module(__name__, _API)
