"""Loading datasets by name or path, and the content hash that benchmark records cite.

Every dataset loaded here carries ``adata.uns["cellzoo"] = {"dataset", "input_state",
"label_key"}`` (merged into what is already there): the input state lets
:func:`cellzoo.data.contract.prepare_input` trust a declaration instead of guessing.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, InputError, PluginError, UnknownNameError
from ..paths import dataset_argument, looks_like_path
from ..registry import dataset_spec, list_datasets
from ..specs import resolve
from .contract import DETECTED_STATES, declared_state, detect_state

if TYPE_CHECKING:
    import anndata

_HASH_CHUNK_ROWS = 8192


def load_dataset(name_or_path: str | os.PathLike[str], label_key: str | None = None, **params: Any) -> anndata.AnnData:
    """A registered dataset by name (its loader gets ``params``), or an ``.h5ad`` file by path.

    ``NAME:ARGUMENT`` passes ``path=ARGUMENT`` to dataset ``NAME``'s loader (``image-folder:~/DIV2K``).
    """
    argument = dataset_argument(name_or_path)
    if argument:
        name_or_path, params = argument[0], {**params, "path": argument[1]}
    elif looks_like_path(name_or_path):
        return read_h5ad(name_or_path, label_key=label_key, **params)
    name = str(name_or_path)
    try:
        spec = dataset_spec(name)
    except UnknownNameError:
        raise UnknownNameError(
            "dataset",
            name,
            list_datasets(),
            hint=" Run `cellzoo list datasets`, install the plugin that provides it, or pass a path to an .h5ad file.",
        ) from None
    loader = resolve(spec.loader)
    try:
        inspect.signature(loader).bind(**params)
    except TypeError as exc:
        accepted = ", ".join(inspect.signature(loader).parameters) or "none"
        raise ConfigError(
            f"dataset {name!r} does not take parameters {sorted(params)} ({exc}); its loader accepts: {accepted}"
        ) from None
    except ValueError:  # builtins without a signature: let the call itself complain
        pass
    adata = loader(**params)
    if spec.data == "images":
        return checked_images(adata, name)
    import anndata as ad

    if not isinstance(adata, ad.AnnData):
        raise PluginError(
            f"the loader of dataset {name!r} ({spec.loader}) returned a {type(adata).__name__}, not an AnnData"
        )
    declared = None if spec.input_state in (None, "auto") else spec.input_state
    return _record(adata, dataset=name, label_key=label_key or spec.label_key, input_state=declared)


def checked_images(images: Any, dataset: str) -> list[np.ndarray] | dict[str, list[np.ndarray]]:
    """An image set as a list of numpy arrays (H × W or H × W × C, finite), or a :class:`PluginError`.

    A loader with its own fixed split returns ``{"train": [...], "test": [...]}`` (each part checked).
    """
    if isinstance(images, Mapping):
        if set(images) != {"train", "test"}:
            raise PluginError(
                f"the loader of image dataset {dataset!r} returned parts {sorted(map(str, images))}; a fixed split is "
                '{"train": [images], "test": [images]}'
            )
        return {part: checked_images(images[part], f"{dataset}[{part}]") for part in ("train", "test")}
    if isinstance(images, np.ndarray) and images.ndim in (3, 4):
        images = list(images)
    if not isinstance(images, (list, tuple)) or not images:
        raise PluginError(
            f"the loader of image dataset {dataset!r} returned {type(images).__name__}; it must return a non-empty "
            "list of numpy arrays (height × width or height × width × channels)"
        )
    out = []
    for i, image in enumerate(images):
        array = np.asarray(image)
        if array.ndim not in (2, 3) or min(array.shape[:2]) < 1 or array.dtype.kind not in "uif":
            raise PluginError(
                f"image {i} of dataset {dataset!r} has shape {array.shape} and dtype {array.dtype}; expected a "
                "numeric array of height × width or height × width × channels"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise PluginError(f"image {i} of dataset {dataset!r} holds NaN or infinite values")
        out.append(array)
    return out


def get_dataset(name: str, **params: Any) -> anndata.AnnData:
    """Load dataset ``name`` (or a path to an ``.h5ad``) as an AnnData (the facade's ``cellzoo.get_dataset``)."""
    return load_dataset(name, **params)


def read_h5ad(path: str | os.PathLike[str], label_key: str | None = None, backed: bool = False) -> anndata.AnnData:
    """Read a user's ``.h5ad``; check the label column; record the input state it does not declare."""
    import anndata as ad

    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"no such file: {path} (resolved to {path.resolve()}); check the path to the .h5ad file")
    if not path.is_file():
        raise InputError(f"{path} is a directory, not an .h5ad file")
    try:
        adata = ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as exc:  # h5py and anndata raise many types for a bad file
        raise InputError(
            f"could not read {path} as an AnnData .h5ad file ({type(exc).__name__}: {exc}); "
            "is it a file written by anndata or scanpy (not .loom, .h5 or .mtx)?"
        ) from exc
    return _record(adata, dataset=path.stem, label_key=label_key, input_state=None)


def _record(adata: anndata.AnnData, *, dataset: str, label_key: str | None, input_state: str | None) -> anndata.AnnData:
    meta = adata.uns.get("cellzoo", {})
    if not isinstance(meta, Mapping):
        raise InputError(
            f"adata.uns['cellzoo'] is a {type(meta).__name__}; cellzoo keeps its metadata there as a dict. "
            "Rename that entry"
        )
    meta = dict(meta)
    if label_key is None and meta.get("label_key"):
        label_key = str(meta["label_key"])
    if label_key is not None and label_key not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:30])) or "(none)"
        raise InputError(
            f"label key {label_key!r} is not a column of obs in dataset {dataset!r}; columns are: {cols}. "
            "Pass the column holding the cell types with --label-key"
        )
    # a file (or loader) that declares its state is trusted over the dataset spec and detection
    state = declared_state(adata)
    if state is None:
        if input_state is not None and input_state not in DETECTED_STATES:
            raise PluginError(
                f"dataset {dataset!r} declares input_state {input_state!r}; expected one of {DETECTED_STATES}"
            )
        state = input_state or detect_state(adata.X)
    meta.setdefault("dataset", dataset)
    meta["input_state"] = state
    meta["label_key"] = label_key
    adata.uns["cellzoo"] = meta
    return adata


def _row_blocks(X: Any):
    n = X.shape[0]
    if sp.issparse(X) and X.format != "csr":
        X = X.tocsr()
    for start in range(0, n, _HASH_CHUNK_ROWS):
        block = X[start : start + _HASH_CHUNK_ROWS]
        if not sp.issparse(block):
            block = np.asarray(block)
        yield sp.csr_matrix(block, dtype=np.float64)


def images_hash(images: Sequence[np.ndarray], parts: Sequence[str]) -> str:
    """sha256 (hex) over every image's shape, dtype and bytes, and the part (train/test) it belongs to."""
    h = hashlib.sha256()
    h.update(f"cellzoo-images-v1 n={len(images)}\n".encode())
    for image, part in zip(images, parts):
        array = np.ascontiguousarray(image)
        h.update(f"{part} {array.dtype.str} {array.shape}\n".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def dataset_hash(adata: anndata.AnnData, label_key: str | None = None) -> str:
    """sha256 (hex) over the values of ``X``, var_names, obs_names and the label column.

    The same numbers hash the same whether ``X`` is dense or sparse, float32 or float64: each row
    block is hashed in canonical CSR form (sorted indices, no stored zeros, float64). The label
    column is ``label_key``, else ``adata.uns['cellzoo']['label_key']``, else none.
    """
    h = hashlib.sha256()
    h.update(f"cellzoo-dataset-v1 shape={adata.shape[0]}x{adata.shape[1]}\n".encode())
    for block in _row_blocks(adata.X):
        block.sum_duplicates()  # also sorts indices
        block.eliminate_zeros()
        h.update(np.diff(block.indptr).astype("<i8").tobytes())
        h.update(block.indices.astype("<i8").tobytes())
        h.update(block.data.astype("<f8").tobytes())
    h.update(json.dumps([str(v) for v in adata.var_names]).encode())
    h.update(json.dumps([str(o) for o in adata.obs_names]).encode())
    if label_key is None:
        meta = adata.uns.get("cellzoo")
        label_key = meta.get("label_key") if isinstance(meta, Mapping) else None
    if label_key is not None:
        if label_key not in adata.obs.columns:
            raise InputError(f"label key {label_key!r} is not a column of adata.obs; cannot hash the labels")
        labels = adata.obs[label_key].astype(str).tolist()
        h.update(json.dumps({"label_key": str(label_key), "labels": labels}).encode())
    return h.hexdigest()
