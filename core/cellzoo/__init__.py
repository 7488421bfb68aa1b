"""cellzoo: a plugin-based model zoo for single-cell RNA-seq deep learning.

The public API (everything a plugin or a user needs) is importable from here. Names resolve
lazily, so ``import cellzoo`` stays cheap and imports neither torch nor scanpy.
"""

from __future__ import annotations

import importlib
from typing import Any

from .constants import __version__ as __version__

_API: dict[str, str] = {
    # listing, building, loading
    "list_models": "registry",
    "list_datasets": "registry",
    "list_metrics": "registry",
    "list_tasks": "registry",
    "list_loss_weightings": "registry",
    "create_loss_weighting": "registry",
    "loss_weighting_spec": "registry",
    "create_model": "registry",
    "load": "sources",
    "get_dataset": "data.datasets",
    "get_metric": "registry",
    "model_spec": "registry",
    "dataset_spec": "registry",
    "metric_spec": "registry",
    "task_spec": "registry",
    # artifacts
    "save": "artifacts",
    "load_artifact": "artifacts",
    "verify": "sources",
    # deployment
    "export_onnx": "export",
    # specs and hooks
    "ModelSpec": "specs",
    "DatasetSpec": "specs",
    "MetricSpec": "specs",
    "TaskSpec": "specs",
    "LossWeightingSpec": "specs",
    "LossWeighting": "protocols",
    "hookimpl": "hookspecs",
    # model bases
    "ZooModel": "model",
    "Annotator": "model",
    "Annotation": "model",
    "check_state_keys": "model",
    "TrainingConfig": "trainconfig",
    "TorchAnnotator": "training",
    "Generator": "model",
    "TorchGenerator": "training",
    "Upscaler": "model",
    "TorchUpscaler": "training",
    # data contract
    "InputContract": "data.contract",
    "prepare_input": "data.contract",
    "to_input_state": "data.contract",
    "scale_to_total": "data.contract",
    "detect_state": "data.contract",
    "GeneManifest": "data.genes",
    "align_genes": "data.genes",
    "apply_alignment": "data.genes",
    # images (the upscale family)
    "read_image": "data.images",
    "write_image": "data.images",
    "downsample": "data.images",
    "imresize": "data.images",
    "PatchPairs": "data.images",
    # splits and files
    "SplitRule": "bench.suite",
    "make_splits": "data.splits",
    "atomic_path": "fileio",
    # metrics a plugin may reuse
    "true_markers": "metrics",
    "marker_precision_at_k": "metrics",
    # plugins
    "lazy_module": "lazy",
    "get_plugin_manager": "plugins",
    "use_plugin_manager": "plugins",
    "ZooPluginManager": "plugins",
}

__all__ = sorted([*_API, "errors", "__version__"])


def __getattr__(name: str) -> Any:
    if name in _API:
        module = importlib.import_module(f".{_API[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name == "errors":
        return importlib.import_module(".errors", __name__)
    raise AttributeError(f"module 'cellzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
