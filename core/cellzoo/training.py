"""Shared torch plumbing for every model family: seeding, devices, batching, early stopping, the
classifier training loop, batched inference, and the base class of torch annotators.

:class:`TorchAnnotator` is the base of a torch ``annotate`` model; its config inherits
:class:`TrainingConfig` (defined in the torch-free :mod:`cellzoo.trainconfig`, re-exported here).

This is the one core module that imports torch at import time; nothing else in the core imports
it, so listing the zoo stays fast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .data.hvg import highly_variable as highly_variable
from .data.splits import validation_split as validation_split
from .errors import CellzooError, ConfigError, InputError, TrainingError
from .model import Annotator, Generator, Upscaler
from .protocols import capability, has_capability
from .seeding import seed_everything as seed_everything
from .trainconfig import DEVICE_KINDS as DEVICE_KINDS
from .trainconfig import MONITORS as MONITORS
from .trainconfig import TrainingConfig as TrainingConfig
from .trainconfig import device_problem


def _available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def select_device(pref: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then CPU; a named device must be available."""
    if isinstance(pref, torch.device):
        pref = str(pref)
    pref = str(pref).strip().lower()
    problem = device_problem(pref)
    if problem is not None:
        raise ConfigError(problem)
    kind, _, ordinal = pref.partition(":")
    available = _available_devices()
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if "mps" in available:
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available() or (ordinal and int(ordinal) >= torch.cuda.device_count()):
            raise ConfigError(
                f"device {pref!r} was requested but is not available (available: {', '.join(available)}); "
                "use --device auto or --device cpu"
                + ("" if torch.backends.cuda.is_built() else ", or install a CUDA build of torch")
            )
        return torch.device(pref)
    if kind == "mps" and "mps" not in available:
        raise ConfigError(
            f"device 'mps' was requested but is not available (available: {', '.join(available)}); "
            "use --device auto or --device cpu"
        )
    return torch.device(kind)


class EarlyStopping:
    """Stop when the monitored value has not improved by ``min_delta`` for ``patience`` steps.

    ``step(value, module)`` returns whether to stop; with a module it keeps a copy of the
    module's weights at the best value, which :meth:`restore` puts back.
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, mode: str = "min"):
        if mode not in ("min", "max"):
            raise ConfigError(f"early-stopping mode must be 'min' or 'max', got {mode!r}")
        if int(patience) < 1:
            raise ConfigError(f"early-stopping patience must be at least 1, got {patience!r}")
        if min_delta < 0:
            raise ConfigError(f"early-stopping min_delta must be >= 0, got {min_delta!r}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = mode
        self.best: float = math.inf if mode == "min" else -math.inf
        self.best_epoch: int = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_steps = 0
        self.steps = 0
        self.stopped = False

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, module: nn.Module | None = None) -> bool:
        value = float(value)
        if self.improved(value):
            self.best, self.best_epoch, self.bad_steps = value, self.steps, 0
            if module is not None:
                self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.bad_steps += 1
        self.steps += 1
        self.stopped = self.bad_steps >= self.patience
        return self.stopped

    def restore(self, module: nn.Module) -> bool:
        """Load the best weights seen into ``module``; False when none were kept."""
        if self.best_state is None:
            return False
        module.load_state_dict(self.best_state)
        return True


def batches(X: Any, batch_size: int, order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Float32 dense row blocks of ``X`` (dense or scipy sparse; sparse is densified per block).

    ``order`` (row indices) picks and orders the rows, e.g. a shuffled permutation.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size!r}")
    if sp.issparse(X) and X.format != "csr":
        X = X.tocsr()
    n = X.shape[0] if order is None else len(order)
    for start in range(0, n, batch_size):
        rows = slice(start, start + batch_size) if order is None else order[start : start + batch_size]
        block = X[rows]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        yield np.ascontiguousarray(block, dtype=np.float32)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the training batches of ``n`` cells (a trailing batch of one cell is folded)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    # a last batch of one cell breaks BatchNorm in training mode; fold it into the one before
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def _default_logits(module: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    out = module(xb)
    return out[0] if isinstance(out, (tuple, list)) else out


@dataclass
class TrainHistory:
    """Per-epoch losses, and which epoch's weights the module holds at the end (0-based)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _progress(enabled: bool, desc: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    )


def _labels(y: Any, n: int, what: str) -> torch.Tensor:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise InputError(f"{what} has shape {y.shape}; expected one integer label per cell ({n})")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{what} must hold integer class codes, got dtype {y.dtype}; encode labels with np.unique")
    return torch.from_numpy(y.astype(np.int64))


def _rng_scope(device: torch.device):
    # dropout draws from the global generator: seed it for this run and put the caller's state back
    if device.type == "cuda":
        return torch.random.fork_rng(devices=[device.index or torch.cuda.current_device()], device_type="cuda")
    return torch.random.fork_rng(devices=[])


def train_classifier(
    module: nn.Module,
    X_train: Any,
    y_train: Any,
    X_val: Any = None,
    y_val: Any = None,
    *,
    epochs: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    scheduler: Any = None,
    scheduler_step: str = "epoch",
    early_stopping: EarlyStopping | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
    logits_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> TrainHistory:
    """Train ``module`` to classify rows of ``X_train`` (dense or sparse) into ``y_train`` codes.

    Batches are shuffled with a generator seeded by ``seed`` (which also seeds dropout for the
    run), densified one at a time and moved to ``device``. With validation data, the loss and
    accuracy are recorded every epoch. ``early_stopping`` watches the validation loss (mode
    ``"min"``) or accuracy (mode ``"max"``) — the training loss when there is no validation data —
    and its best weights are restored at the end. The module is left in eval mode.
    """
    if scheduler_step not in ("epoch", "batch"):
        raise ConfigError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    if int(epochs) < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs!r}")
    if X_train.shape[0] == 0:
        raise InputError("there are no training cells")
    has_val = X_val is not None and y_val is not None
    if early_stopping is not None and early_stopping.mode == "max" and not has_val:
        raise ConfigError("early stopping in mode 'max' watches validation accuracy: pass X_val and y_val")
    device = select_device(device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    logits_fn = logits_fn or _default_logits
    y_tr = _labels(y_train, X_train.shape[0], "y_train")
    y_va = _labels(y_val, X_val.shape[0], "y_val") if has_val else None
    if sp.issparse(X_train) and X_train.format != "csr":
        X_train = X_train.tocsr()

    module.to(device)
    history = TrainHistory()
    generator = torch.Generator().manual_seed(int(seed))
    n = X_train.shape[0]
    bounds = batch_bounds(n, int(batch_size))
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    started = time.perf_counter()

    with _rng_scope(device), _progress(progress, desc) as bar:
        torch.manual_seed(int(seed))
        task = bar.add_task(desc, total=int(epochs) * len(bounds), status="")
        for epoch in range(int(epochs)):
            module.train()
            order = torch.randperm(n, generator=generator).numpy()
            total, seen = 0.0, 0
            for start, stop in bounds:
                rows = order[start:stop]
                xb = dense_rows(X_train, rows).to(device, non_blocking=True)
                yb = y_tr[rows].to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(logits_fn(module, xb), yb)
                if not torch.isfinite(loss):
                    raise CellzooError(
                        f"{desc}: the loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate or "
                        "check the input for extreme values"
                    )
                loss.backward()
                optimizer.step()
                if scheduler is not None and scheduler_step == "batch" and not plateau:
                    scheduler.step()
                total += float(loss.detach()) * len(rows)
                seen += len(rows)
                bar.advance(task)
            history.train_loss.append(total / seen)
            status = f"loss {history.train_loss[-1]:.4f}"
            if has_val:
                val_loss, val_acc = _evaluate(module, X_val, y_va, batch_size, device, loss_fn, logits_fn)
                history.val_loss.append(val_loss)
                history.val_accuracy.append(val_acc)
                status += f" val {val_loss:.4f} acc {val_acc:.3f}"
            bar.update(task, status=f"epoch {epoch + 1}/{epochs} {status}")
            watched = history.val_loss[-1] if has_val else history.train_loss[-1]
            if plateau:
                scheduler.step(watched)
            elif scheduler is not None and scheduler_step == "epoch":
                scheduler.step()
            if early_stopping is not None:
                if early_stopping.mode == "max":
                    watched = history.val_accuracy[-1]
                if early_stopping.step(watched, module):
                    history.stopped_early = True
                    break

    history.best_epoch = history.epochs - 1
    if early_stopping is not None and early_stopping.restore(module):
        history.best_epoch = early_stopping.best_epoch
    module.eval()
    history.seconds = time.perf_counter() - started
    return history


def dense_rows(X: Any, rows: np.ndarray) -> torch.Tensor:
    """Rows ``rows`` of ``X`` (dense or sparse) as a float32 tensor."""
    block = X[rows]
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))


def _evaluate(module, X, y, batch_size, device, loss_fn, logits_fn) -> tuple[float, float]:
    module.eval()
    total, correct = 0.0, 0
    with torch.inference_mode():
        for start, block in zip(range(0, X.shape[0], batch_size), batches(X, batch_size)):
            yb = y[start : start + len(block)].to(device)
            logits = logits_fn(module, torch.from_numpy(block).to(device))
            total += float(loss_fn(logits, yb)) * len(block)
            correct += int((logits.argmax(dim=1) == yb).sum())
    return total / X.shape[0], correct / X.shape[0]


def training_modes(module: nn.Module) -> list[tuple[nn.Module, bool]]:
    """Each submodule of ``module`` with its training flag, for :func:`restore_training_modes`."""
    return [(m, m.training) for m in module.modules()]


def restore_training_modes(modes: list[tuple[nn.Module, bool]]) -> None:
    """Put every submodule back in the mode it had.

    Not ``module.train(was_training)``: that sets every child to the parent's mode, so a fresh
    inference wrapper (a new Module is in training mode) would switch the eval-mode network it
    wraps back to training mode — dropout and BatchNorm statistics live for every later use.
    """
    for m, training in modes:
        m.training = training


def predict_in_batches(
    module: nn.Module,
    X: Any,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    fn: Callable[[nn.Module, torch.Tensor], Any] | None = None,
) -> Any:
    """Run ``fn(module, xb)`` (default ``module(xb)``) over row batches under inference mode.

    Outputs are concatenated on the CPU as numpy: an array, or a tuple / dict of arrays when
    ``fn`` returns one. The module is in eval mode meanwhile; every submodule's previous mode is restored.
    """
    device = select_device(device)
    fn = fn or (lambda m, xb: m(xb))
    modes = training_modes(module)
    module.to(device).eval()
    parts: list[Any] = []
    try:
        with torch.inference_mode():
            for block in batches(X, batch_size):
                parts.append(_to_numpy(fn(module, torch.from_numpy(block).to(device))))
    finally:
        restore_training_modes(modes)
    if not parts:
        raise InputError("there are no cells to predict")
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    return np.concatenate(parts)


def _to_numpy(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, (tuple, list)):
        return tuple(_to_numpy(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_numpy(v) for k, v in out.items()}
    raise CellzooError(f"predict_in_batches: fn returned a {type(out).__name__}; expected tensors")


# -- recipes shared by the torch classifiers -------------------------------------------------


def steps_per_epoch(n_cells: int, batch_size: int) -> int:
    """Optimizer steps in one epoch of ``cellzoo.training.train_classifier`` (a trailing batch of one cell is folded)."""
    steps = math.ceil(n_cells / batch_size)
    return steps - 1 if steps > 1 and n_cells % batch_size == 1 else steps


def training_plan(y: np.ndarray, config: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """``(train_rows, val_rows, epochs)`` for a fit on cells with class codes ``y``.

    Early stopping needs a validation set large enough to be trusted: below ``min_val_cells``
    held-out cells, every cell trains and ``val_rows`` is empty. ``epochs`` is raised so that
    training makes at least ``min_steps`` optimizer steps — small data sets get enough updates,
    large ones keep the configured number of epochs.
    """
    train_rows, val_rows = validation_split(y, config.val_fraction, config.seed)
    if len(val_rows) < config.min_val_cells:
        train_rows, val_rows = np.arange(len(y)), np.zeros(0, dtype=np.int64)
    epochs = max(int(config.epochs), math.ceil(config.min_steps / steps_per_epoch(len(train_rows), config.batch_size)))
    return train_rows, val_rows, epochs


# -- persistence shared by the torch models ------------------------------------------------------


def module_tensors(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """A module's state dict as float32 numpy arrays (what ``ZooModel.state_tensors`` returns)."""
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in module.state_dict().items()}


def load_module_tensors(module: torch.nn.Module, tensors: Any, what: str) -> None:
    """Strictly load arrays written by :func:`module_tensors`; leaves the module in eval mode.

    Missing, unexpected or misshapen tensors raise :class:`~cellzoo.errors.ArtifactError` naming them.
    """
    from .model import check_state_keys

    expected = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    check_state_keys(expected, tensors, what)
    module.load_state_dict(
        {k: torch.as_tensor(np.asarray(tensors[k], dtype=np.float32)) for k in expected}, strict=True
    )
    module.eval()


def training_summary(history: TrainHistory | None, planned_epochs: int | None, validation_cells: int | None) -> dict:
    """What a torch model records about its training in ``config.json`` (empty before training)."""
    if history is None:
        return {}
    return {
        "epochs_planned": planned_epochs,
        "validation_cells": validation_cells,
        "epochs_run": history.epochs,
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
        "seconds": round(history.seconds, 3),
    }


class TorchAnnotator(Annotator):
    """An :class:`~cellzoo.Annotator` whose learned state is one torch module, ``self.net``.

    Its config is a :class:`TrainingConfig` (a subclass adding the architecture's fields). A
    subclass builds ``self.net`` in ``_fit`` and trains it with :meth:`train_net` (which records
    ``history``, ``planned_epochs`` and ``validation_cells``), and builds it again, untrained, in
    ``restore_artifact_state``; ``_predict_proba`` runs it (:func:`predict_in_batches`). Saving the
    module's tensors, loading them strictly and recording the training in ``config.json`` are done
    here. An exportable model also returns the eval-mode module of :meth:`infer` from
    ``export_module()`` (see :mod:`cellzoo.protocols` for every optional capability).
    """

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.net: nn.Module | None = None
        self.history: TrainHistory | None = None
        self.planned_epochs: int | None = None
        self.validation_cells: int | None = None

    @property
    def is_fitted(self) -> bool:
        return super().is_fitted and self.net is not None

    def build_net(self, n_genes: int, n_classes: int) -> nn.Module:
        """The untrained network for ``n_genes`` inputs and ``n_classes`` classes (``_fit``, loading and the memory check)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_net(n_genes, n_classes)")

    def attribute(
        self,
        adata: Any,
        target: Any = None,
        method: str = "integrated_gradients",
        baseline: Any = "zeros",
        steps: int = 32,
        samples: int = 16,
        noise: float = 0.15,
        seed: int = 0,
    ) -> np.ndarray:
        """Cells × the model's genes: how much each gene moved ``log p(target | cell)`` (:mod:`cellzoo.attribution`).

        ``target``: None (each cell's predicted class), one class name, or a name per cell.
        ``method``: ``integrated_gradients`` (``baseline`` ``"zeros"``, ``"others"`` — the mean of
        the cells with another target — or a vector of genes; ``steps`` midpoints), ``grad_input``
        or ``smoothgrad`` (``samples`` draws of noise ``noise`` × the data's range). The columns
        are the model's genes (``self.manifest.genes``), in the model's input state.
        """
        from .attribution import attributions, target_codes

        self._check_fitted()
        if not has_capability(self, "export_module"):
            raise ConfigError(f"model {self.name!r} has no differentiable module (export_module) to attribute")
        X = self.model_input(adata)
        codes = target_codes(target, X.shape[0], self.classes, lambda: self._predict_proba(X).argmax(axis=1))
        try:
            return attributions(
                self.export_module(), X, codes, method=method, baseline=baseline, steps=steps, samples=samples,
                noise=noise, seed=seed, device=select_device(self.config.device),
            )  # fmt: skip
        finally:
            self.net.cpu()

    def attribution_markers(
        self, adata: Any, label_key: str, n: int = 25, method: str = "integrated_gradients", baseline: Any = "others"
    ) -> dict[str, list[str]]:
        """The ``n`` genes of each class with the largest mean attribution over the class's cells.

        Each cell is explained for its own class (``adata.obs[label_key]``); a class the model never
        saw gets no entry. With ``baseline="others"`` the question is what makes the class's cells
        that class rather than the others.
        """
        from .attribution import class_means
        from .data.labels import labels_of

        self._check_fitted()
        if int(n) < 1:
            raise ConfigError(f"n={n!r}: ask for at least one marker gene per class")
        labels = np.asarray(labels_of(adata, label_key)).astype(str)
        seen = np.isin(labels, self.classes)
        if not seen.any():
            raise InputError(f"no cell of adata.obs[{label_key!r}] has a class the model was trained on")
        values = self.attribute(adata[seen], target=labels[seen], method=method, baseline=baseline)
        names, means = class_means(values, labels[seen])
        genes = np.asarray(self.manifest.genes, dtype=object)
        order = np.argsort(-means, axis=1, kind="stable")[:, : int(n)]
        return {str(c): [str(g) for g in genes[row]] for c, row in zip(names, order, strict=True)}

    def gene_selection_hint(self) -> str:
        """How this model's own config selects fewer genes, for the memory check's message ("" when it cannot)."""
        return ""

    def check_resources(self, n_genes: int, n_classes: int) -> None:
        """Refuse, before any weight is allocated, a network whose training would not fit in memory."""
        from .memory import check_training_memory, estimate_training

        estimate = estimate_training(lambda: self.build_net(n_genes, n_classes), self.config.batch_size)
        check_training_memory(
            estimate,
            select_device(self.config.device),
            what=f"training {self.name} on {n_genes:,} genes",
            fix=(
                "train on fewer genes: subset adata to its most variable genes before fitting "
                f"(cellzoo.training.highly_variable){self.gene_selection_hint()}, or use a machine with more memory"
            ),
        )

    def train_net(self, X: Any, y: np.ndarray, desc: str | None = None) -> None:
        """Train ``self.net`` on ``X`` (cells × inputs) and class codes ``y`` with the config's recipe.

        Adam (``lr``, ``betas``, ``eps``, ``weight_decay``) on cross-entropy in batches of
        ``batch_size``; the validation split and epoch floor of :func:`training_plan`; early stopping
        on the validation ``monitor`` (``patience``, ``min_delta``); :meth:`lr_scheduler` if any.
        ``desc`` labels the progress bar (default: the model's name).
        """
        cfg = self.config
        desc = self.name if desc is None else desc
        train_rows, val_rows, epochs = training_plan(y, cfg)
        self.planned_epochs, self.validation_cells = epochs, len(val_rows)
        X_val = y_val = early = None
        if len(val_rows):
            X_val, y_val = X[val_rows], y[val_rows]
            mode = "min" if cfg.monitor == "loss" else "max"
            early = EarlyStopping(patience=cfg.patience, min_delta=cfg.min_delta, mode=mode)
        optimizer = torch.optim.Adam(
            self.net.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
        self.history = train_classifier(
            self.net,
            X[train_rows],
            y[train_rows],
            X_val,
            y_val,
            epochs=epochs,
            batch_size=cfg.batch_size,
            optimizer=optimizer,
            loss_fn=nn.CrossEntropyLoss(),
            scheduler=self.lr_scheduler(optimizer),
            scheduler_step="batch",
            early_stopping=early,
            device=cfg.device,
            seed=cfg.seed,
            desc=desc,
        )
        # a fitted model rests in eval mode: its dropout and BatchNorm statistics are frozen for every later use
        self.net.cpu().eval()

    def prediction_backend(self, outputs: Sequence[str] = ("proba",), solution: np.ndarray | None = None) -> Any:
        """``_predict_proba`` for labels and probabilities; the exported module for more outputs (``attention``)."""
        if tuple(outputs) == ("proba",) or not has_capability(self, "export_module"):
            return super().prediction_backend(outputs, solution)
        self._check_fitted()
        return TorchBackend(self, outputs)

    def lr_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """The learning-rate schedule :meth:`train_net` steps after every mini-batch; None keeps ``lr``."""
        return None

    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return module_tensors(self.net)

    def load_state_tensors(self, tensors: Any) -> None:
        self._check_fitted()
        load_module_tensors(self.net, tensors, self.name)

    def state_names(self) -> list[str]:
        """The keys of :meth:`state_tensors`, without copying the weights."""
        self._check_fitted()
        return list(self.net.state_dict())

    def artifact_state(self) -> dict[str, Any]:
        state = super().artifact_state()
        if self.history is not None:
            state["training"] = training_summary(self.history, self.planned_epochs, self.validation_cells)
        return state


class TorchBackend:
    """The pipeline backend of an exportable torch model asked for more than ``proba``.

    It runs ``export_module()`` — the module the ONNX graph is exported from, so its outputs are
    the graph's — in batches under inference mode; chunks may stay sparse (rows are densified per
    batch).
    """

    dense = False
    row_wise = True
    batch_size = 1024

    def __init__(self, model: Any, outputs: Sequence[str]):
        self.model = model
        self.module = model.export_module().eval()
        names = capability(model, "export_output_names") or getattr(self.module, "output_names", None) or ()
        self.output_names = tuple(names)
        unknown = sorted(set(outputs) - set(self.output_names))
        if unknown:
            raise ConfigError(
                f"model {model.name!r} has no output {', '.join(unknown)}; its outputs are {', '.join(self.output_names)}"
            )

    def run(self, x: Any) -> dict[str, np.ndarray]:
        device = getattr(self.model.config, "device", "cpu")
        out = predict_in_batches(self.module, x, batch_size=self.batch_size, device=device, fn=_outputs_tuple)
        self.module.cpu()
        return dict(zip(self.output_names, out))


def _outputs_tuple(module: nn.Module, xb: torch.Tensor) -> tuple[torch.Tensor, ...]:
    out = module(xb)
    return out if isinstance(out, tuple) else (out,)


def finite_loss(loss: torch.Tensor, what: str, epoch: int, step: int | None = None) -> float:
    """``loss`` as a float; a NaN or infinite loss stops training with a :class:`TrainingError` saying where."""
    value = float(loss.detach())
    if not math.isfinite(value):
        at = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        raise TrainingError(
            f"the {what} became {value} at {at}; training stopped (lower lr, check the input for extreme "
            "values, or train fewer epochs)"
        )
    return value


class LastGood:
    """The weights after the last stretch of training whose losses were all finite.

    The loop calls :meth:`keep` after each finished epoch (or every so many steps); when a loss
    turns NaN, ``raise last_good.restore(exc)`` puts those weights back into the module and raises
    a :class:`TrainingError` that says where they are from (``exc.kept``), so the caller still has
    a usable model (``Generator.fit`` leaves it fitted; ``cellzoo train`` saves it beside ``-o``).
    The copy lives on the CPU, so a GPU run does not hold two sets of weights on the device.
    """

    def __init__(self, module: nn.Module):
        self.module = module
        self.state: dict[str, torch.Tensor] | None = None
        self.where: str | None = None

    def keep(self, where: str) -> None:
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()}
        self.where = where

    def restore(self, exc: TrainingError) -> TrainingError:
        if self.state is None:
            error = TrainingError(f"{exc}. No epoch finished with finite losses, so nothing is kept")
            error.kept = None
            return error
        self.module.load_state_dict(self.state)
        error = TrainingError(
            f"{exc}. The weights after {self.where} (the last with finite losses) are kept: the model samples "
            "with them, and cellzoo.save(model, DIR) saves them"
        )
        error.kept = self.where
        return error


class TorchGenerator(Generator):
    """A :class:`~cellzoo.Generator` whose learned state is ``self.nets``, a ``torch.nn.ModuleDict``.

    A subclass builds ``self.nets`` in ``_fit`` (and again, untrained, in
    ``restore_artifact_state``), names the module that maps latent noise (and class codes, for a
    conditional model) to cells in :meth:`decoder`, and records its training in
    ``self.training_record`` (JSON-able, written to ``config.json``). Decoding, saving, strict
    loading and the export module are done here.
    """

    #: cells per decoder call in :meth:`_decode`
    decode_batch: int = 4096

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.nets: nn.ModuleDict | None = None
        self.training_record: dict[str, Any] | None = None

    @property
    def is_fitted(self) -> bool:
        return super().is_fitted and self.nets is not None

    @property
    def device(self) -> torch.device:
        return select_device(getattr(self.config, "device", "cpu"))

    def decoder(self) -> nn.Module:
        """The module ``(z[, y]) -> cells`` (eval mode): what sampling runs and ONNX exports."""
        raise NotImplementedError

    def export_module(self) -> nn.Module:
        return self.decoder().eval()

    def _decode(self, z: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
        module = self.decoder()
        was_training = module.training
        first = next(module.parameters(), None)
        before = first.device if first is not None else torch.device("cpu")
        device = self.device
        module.to(device).eval()
        parts = []
        try:
            with torch.inference_mode():
                for start in range(0, len(z), self.decode_batch):
                    zb = torch.from_numpy(np.ascontiguousarray(z[start : start + self.decode_batch])).to(device)
                    if codes is None:
                        out = module(zb)
                    else:
                        yb = torch.from_numpy(np.asarray(codes[start : start + self.decode_batch], dtype=np.int64))
                        out = module(zb, yb.to(device))
                    parts.append(out.float().cpu().numpy())
        finally:
            module.train(was_training)
            module.to(before)  # where it was: a hook sampling mid-training leaves the nets on their device
        return np.concatenate(parts) if parts else np.zeros((0, len(self.manifest.genes)), dtype=np.float32)

    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return module_tensors(self.nets)

    def load_state_tensors(self, tensors: Any) -> None:
        self._check_fitted()
        load_module_tensors(self.nets, tensors, self.name)

    def state_names(self) -> list[str]:
        self._check_fitted()
        return list(self.nets.state_dict())

    def artifact_state(self) -> dict[str, Any]:
        state = super().artifact_state()
        if self.training_record is not None:
            state["training"] = self.training_record
        return state


class WeightedLoss:
    """Sum of loss parts weighted by a registered loss weighting (``cellzoo.create_loss_weighting``).

    The training loop calls :meth:`combine` on every step (``Σ w_k · L_k`` with the current
    weights), :meth:`record` with the parts' values as it goes, and :meth:`update` when the
    weights should change (SoftAdapt: once per epoch, from the mean of each part over the epoch,
    the last ``window`` epochs kept). A weighting with learnable parameters (uncertainty
    weighting) exposes ``parameters()`` and ``combine(losses)``; its parameters are then returned
    by :meth:`parameters` for the caller's optimiser and its ``combine`` is used.
    """

    def __init__(self, weighting: Any, n_parts: int, window: int | None = None, initial: Sequence[float] | None = None):
        if n_parts < 1:
            raise ConfigError(f"a weighted loss needs at least one part, got {n_parts}")
        self.weighting = weighting
        self.n_parts = n_parts
        self.window = int(window or getattr(getattr(weighting, "config", None), "window", 0) or 2)
        self.current = [float(w) for w in (initial if initial is not None else [1.0] * n_parts)]
        if len(self.current) != n_parts:
            raise ConfigError(f"{len(self.current)} initial weights given for {n_parts} loss parts")
        self.history: list[list[float]] = [[] for _ in range(n_parts)]
        self._pending: list[list[float]] = [[] for _ in range(n_parts)]
        self.trace: list[list[float]] = [list(self.current)]

    def parameters(self) -> list[torch.nn.Parameter]:
        params = getattr(self.weighting, "parameters", None)
        return list(params()) if callable(params) else []

    def combine(self, losses: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(losses) != self.n_parts:
            raise ConfigError(f"{len(losses)} loss parts given to a weighted loss of {self.n_parts}")
        combine = getattr(self.weighting, "combine", None)
        if callable(combine):
            return combine(losses)
        return sum(w * loss for w, loss in zip(self.current, losses))

    def record(self, values: Sequence[float]) -> None:
        for pending, value in zip(self._pending, values, strict=True):
            pending.append(float(value))

    def update(self) -> list[float]:
        """Close the current period (an epoch): append each part's mean, recompute the weights once enough is seen."""
        for hist, pending in zip(self.history, self._pending):
            if pending:
                hist.append(float(np.mean(pending)))
                pending.clear()
            del hist[: -self.window]
        if all(len(h) >= self.window for h in self.history):
            weights = [float(w) for w in self.weighting.weights([list(h) for h in self.history])]
            if len(weights) != self.n_parts or not all(math.isfinite(w) and w >= 0 for w in weights):
                raise TrainingError(f"loss weighting {type(self.weighting).__name__} returned weights {weights}")
            self.current = weights
        self.trace.append(list(self.current))
        return list(self.current)


class ClampedImages(nn.Module):
    """``inner`` with its output clamped to the [0, 1] range of the images it produces."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.inner(lr).clamp(0.0, 1.0)


class TorchUpscaler(Upscaler):
    """An :class:`~cellzoo.Upscaler` whose learned state is ``self.nets``, one network per scale.

    A subclass builds ``self.nets`` (an ``nn.ModuleDict`` keyed ``"x2"``, ``"x4"``, … or holding
    shared parts) in ``_fit`` and again, untrained, in ``restore_artifact_state``, and names the
    module that maps a low-resolution batch N × 3 × h × w in [0, 1] to N × 3 × (scale·h) ×
    (scale·w) in :meth:`network`. Up-scaling (inference mode, on the configured device),
    saving, strict loading and the export module of each scale are done here.
    """

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.nets: nn.ModuleDict | None = None
        self.training_record: dict[str, Any] | None = None

    @property
    def is_fitted(self) -> bool:
        return super().is_fitted and self.nets is not None

    @property
    def device(self) -> torch.device:
        return select_device(getattr(self.config, "device", "cpu"))

    def network(self, scale: int) -> nn.Module:
        """The module ``lr (N × 3 × h × w) -> sr (N × 3 × scale·h × scale·w)`` of ``scale``."""
        raise NotImplementedError

    def export_module(self, scale: int | None = None) -> nn.Module:
        """The ×``scale`` network with its output clamped to [0, 1], as ``upscale`` returns it."""
        return ClampedImages(self.network(self.scales[0] if scale is None else self.checked_scale(scale))).eval()

    def _upscale(self, x: np.ndarray, scale: int) -> np.ndarray:
        module = self.network(scale)
        was_training = module.training
        first = next(module.parameters(), None)
        before = first.device if first is not None else torch.device("cpu")
        device = self.device
        module.to(device).eval()
        try:
            with torch.inference_mode():
                batch = torch.from_numpy(np.ascontiguousarray(np.transpose(x, (2, 0, 1))[None])).to(device)
                out = module(batch)[0].float().cpu().numpy()
        finally:
            module.train(was_training)
            module.to(before)
        return np.transpose(out, (1, 2, 0))

    def state_tensors(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return module_tensors(self.nets)

    def load_state_tensors(self, tensors: Any) -> None:
        self._check_fitted()
        load_module_tensors(self.nets, tensors, self.name)

    def state_names(self) -> list[str]:
        self._check_fitted()
        return list(self.nets.state_dict())

    def artifact_state(self) -> dict[str, Any]:
        state = super().artifact_state()
        if self.training_record is not None:
            state["training"] = self.training_record
        return state
