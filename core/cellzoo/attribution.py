"""Gene attributions of a torch annotator's prediction: which genes made the network call a cell class k.

The function explained is ``log p(k | x)``, the log-probability the exported module gives the
target class (the log keeps a confident prediction from saturating the gradient). Methods, for a
cell ``x`` (its genes in the model's input state) and its target class:

* ``integrated_gradients`` (Sundararajan et al. 2017): ``(x − b) · mean_α ∇f(b + α(x − b))`` over
  ``steps`` midpoints α of [0, 1]; the attributions sum to ``f(x) − f(b)`` (completeness, up to
  the quadrature error). Baseline ``b``: ``"zeros"`` (no expression), ``"others"`` (the mean of the
  given cells whose target is another class: a class-contrastive baseline, which asks "what
  makes this cell k rather than the other cells?"), or one vector of genes;
* ``grad_input``: ``x · ∇f(x)``;
* ``smoothgrad`` (Smilkov et al. 2017), applied to gradient × input: ``x · mean ∇f(x + ε)`` over
  ``samples`` draws of ``ε ~ N(0, (noise · (max X − min X))²)``.

A model whose network is scale-invariant in its input (ACTINN rescales every cell to the same
total before its log) gets nothing from the zero baseline: every point of the path is the same
cell after rescaling. Use ``"others"`` for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .errors import ConfigError, InputError

METHODS = ("integrated_gradients", "grad_input", "smoothgrad")
BASELINES = ("zeros", "others")


def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)


def target_codes(target: Any, n_cells: int, classes: Sequence[str], predicted: Callable[[], np.ndarray]) -> np.ndarray:
    """Class codes per cell from ``target``: None (the predicted class), one class name, or a name per cell."""
    index = {c: i for i, c in enumerate(classes)}
    if target is None:
        return np.asarray(predicted(), dtype=np.int64)
    names = [target] * n_cells if isinstance(target, str) else [str(t) for t in target]
    if len(names) != n_cells:
        raise InputError(f"target has {len(names)} entries for {n_cells} cells; give one class name, or one per cell")
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise InputError(
            f"target class(es) {', '.join(map(repr, unknown[:5]))} are not among the model's classes "
            f"({', '.join(classes)})"
        )
    return np.fromiter((index[n] for n in names), dtype=np.int64, count=n_cells)


def baselines(X: np.ndarray, codes: np.ndarray, baseline: Any) -> np.ndarray:
    """The baseline of every cell (cells × genes) for integrated gradients."""
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros_like(X)
        if baseline == "others":
            out = np.empty_like(X)
            total = X.sum(axis=0, dtype=np.float64)
            for k in np.unique(codes):
                mine = codes == k
                n_others = len(codes) - int(mine.sum())
                if n_others == 0:
                    raise InputError(
                        "baseline='others' needs cells of another class than the target; every cell has the same target"
                    )
                out[mine] = ((total - X[mine].sum(axis=0, dtype=np.float64)) / n_others).astype(np.float32)
            return out
        raise ConfigError(f"baseline {baseline!r} is not one of {BASELINES} (or one value per gene)")
    vector = np.asarray(baseline, dtype=np.float32).ravel()
    if vector.shape != (X.shape[1],):
        raise ConfigError(f"a baseline vector needs one value per model gene ({X.shape[1]}), not {vector.shape}")
    return np.broadcast_to(vector, X.shape).copy()


def _log_proba(module: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def f(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        out = module(x)
        proba = out[0] if isinstance(out, tuple | list) else out
        return torch.log(proba.gather(1, codes[:, None]).squeeze(1).clamp_min(1e-30))

    return f


def _gradient(f, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x, codes).sum(), x)
    return grad


def attributions(
    module: nn.Module,
    X: Any,
    codes: np.ndarray,
    *,
    method: str = "integrated_gradients",
    baseline: Any = "zeros",
    steps: int = 32,
    samples: int = 16,
    noise: float = 0.15,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Cells × genes attributions of ``log p(codes | x)`` under ``module`` (an eval-mode ``x → proba`` module)."""
    if method not in METHODS:
        raise ConfigError(f"attribution method {method!r} is not one of {METHODS}")
    for name, value in (("steps", steps), ("samples", samples), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name}={value!r} must be a positive integer")
    X = _dense(X)
    codes = np.asarray(codes, dtype=np.int64)
    base = baselines(X, codes, baseline) if method == "integrated_gradients" else None
    sigma = float(noise) * float(X.max() - X.min()) if X.size else 0.0
    generator = torch.Generator().manual_seed(int(seed))
    f = _log_proba(module)
    modes = [(m, m.training) for m in module.modules()]
    module.to(device).eval()
    out = np.empty_like(X)
    try:
        for start in range(0, X.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            x = torch.from_numpy(X[rows]).to(device)
            c = torch.from_numpy(codes[rows]).to(device)
            if method == "integrated_gradients":
                b = torch.from_numpy(base[rows]).to(device)
                total = torch.zeros_like(x)
                for k in range(steps):
                    total += _gradient(f, b + (k + 0.5) / steps * (x - b), c)
                result = (x - b) * total / steps
            elif method == "grad_input":
                result = x * _gradient(f, x, c)
            else:
                total = torch.zeros_like(x)
                for _ in range(samples):
                    eps = torch.randn(x.shape, generator=generator).to(device) * sigma
                    total += _gradient(f, x + eps, c)
                result = x * total / samples
            out[rows] = result.detach().cpu().numpy()
    finally:
        for m, training in modes:  # each submodule as it was (cellzoo.training.restore_training_modes)
            m.training = training
    return out


def class_means(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(group names, groups × genes)``: the mean of ``values``' rows per group."""
    names, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    sums = np.zeros((len(names), values.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, values)
    return names, sums / np.bincount(inverse, minlength=len(names))[:, None]


__all__ = ["BASELINES", "METHODS", "attributions", "baselines", "class_means", "target_codes"]
