"""``cellzoo.TrainingConfig``: the training recipe the torch models share, checked in one place, torch-free."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from cellzoo.errors import ConfigError
from cellzoo.trainconfig import TrainingConfig, config_label, device_problem

TRAINING_FIELDS = [
    "seed", "epochs", "batch_size", "lr", "betas", "eps", "weight_decay", "min_steps", "val_fraction",
    "min_val_cells", "patience", "min_delta", "monitor", "device",
]  # fmt: skip


@dataclass(frozen=True)
class NetConfig(TrainingConfig):
    seed: int = 7  # a re-declared default keeps the field's place
    width: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reject(self.integer_problems(("width",)))


def test_the_fields_and_defaults():
    assert [f.name for f in dataclasses.fields(TrainingConfig)] == TRAINING_FIELDS
    assert dataclasses.asdict(TrainingConfig()) == {
        "seed": 0, "epochs": 50, "batch_size": 128, "lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
        "weight_decay": 0.0, "min_steps": 0, "val_fraction": 0.1, "min_val_cells": 256, "patience": 10,
        "min_delta": 0.0, "monitor": "loss", "device": "auto",
    }  # fmt: skip
    assert [f.name for f in dataclasses.fields(NetConfig)] == [*TRAINING_FIELDS, "width"]
    assert NetConfig().seed == 7


def test_values_are_normalised():
    config = TrainingConfig(betas=[0.8, 0.9], epochs=np.int64(3), seed=np.int32(5))
    assert config.betas == (0.8, 0.9) and isinstance(config.betas, tuple)
    assert dataclasses.replace(config, lr=1e-2).betas == (0.8, 0.9)
    TrainingConfig(device="cuda:1")  # only the spelling is checked; availability is decided when training
    TrainingConfig(device=" CPU ")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"epochs": 0}, "epochs=0 must be a positive integer"),
        ({"epochs": 2.0}, "epochs=2.0 must be a positive integer"),
        ({"batch_size": True}, "batch_size=True must be a positive integer"),
        ({"seed": -1}, "seed=-1 must be an integer >= 0"),
        ({"min_steps": -5}, "min_steps=-5 must be an integer >= 0"),
        ({"min_val_cells": -1}, "min_val_cells=-1 must be an integer >= 0"),
        ({"patience": 0}, "use val_fraction=0 to disable early stopping"),
        ({"lr": 0}, "lr=0 must be positive"),
        ({"lr": float("nan")}, "lr=nan must be positive"),
        ({"betas": (0.9,)}, r"betas=\(0.9,\) must be two numbers in \[0, 1\)"),
        ({"betas": (0.9, 1.0)}, "must be two numbers"),
        ({"betas": ("a", "b")}, "must be two numbers"),
        ({"betas": 0.9}, "betas=0.9 must be two numbers"),
        ({"eps": -1e-8}, "eps=-1e-08 must be >= 0"),
        ({"weight_decay": -0.1}, "weight_decay=-0.1 must be >= 0"),
        ({"val_fraction": 1.0}, r"val_fraction=1.0 must be in \[0, 1\)"),
        ({"min_delta": -0.1}, "min_delta=-0.1 must be >= 0"),
        ({"monitor": "f1"}, "monitor='f1' must be one of"),
        ({"device": "gpu"}, "device 'gpu' is not one of auto, cpu, cuda, mps"),
        ({"device": "cpu:0"}, "is not one of"),
        ({"device": 0}, "device=0 must be a string"),
    ],
)
def test_invalid_training_fields_are_refused(bad, message):
    with pytest.raises(ConfigError, match=f"^invalid training configuration: .*{message}"):
        TrainingConfig(**bad)


def test_every_problem_is_listed_and_named_after_the_subclass():
    with pytest.raises(ConfigError, match=r"^invalid net configuration: lr=-1 must be positive") as info:
        NetConfig(lr=-1, monitor="auc")
    assert "monitor='auc'" in str(info.value)
    with pytest.raises(ConfigError, match=r"^invalid net configuration: width=0 must be a positive integer$"):
        NetConfig(width=0)
    assert config_label(NetConfig) == "net" and config_label(TrainingConfig) == "training"
    assert device_problem("cuda:0") is None and device_problem("auto") is None


def test_training_re_exports_it_and_the_module_is_torch_free():
    pytest.importorskip("torch")
    from cellzoo import training

    assert training.TrainingConfig is TrainingConfig
    code = (
        "import sys; from cellzoo.trainconfig import TrainingConfig; TrainingConfig(); "
        "heavy = [m for m in ('torch', 'numpy', 'anndata') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


#: the defaults of the zoo's torch configs: they are hashed into every benchmark record, so a change
#: here re-runs the committed benchmark rows of that model
PLUGIN_DEFAULTS = {
    "cellzoo_actinn:ActinnConfig": {
        "seed": 0, "hidden": (100, 50, 25), "epochs": 50, "batch_size": 128, "lr": 0.0001, "betas": (0.9, 0.999),
        "eps": 1e-08, "weight_decay": 0.005, "lr_decay": 0.95, "decay_every": 1000, "scale_to": 20000.0,
        "gene_percentiles": (1.0, 99.0), "min_steps": 5000, "val_fraction": 0.1, "min_val_cells": 256,
        "patience": 10, "min_delta": 0.0, "monitor": "loss", "device": "auto",
    },
    "cellzoo_scanna:ScannaConfig": {
        "seed": 12345, "epochs": 50, "batch_size": 128, "lr": 0.0001, "betas": (0.9, 0.999), "eps": 1e-08,
        "weight_decay": 0.0, "ffn_width": 128, "masking_fraction": 0.5, "min_steps": 2000, "val_fraction": 0.1,
        "min_val_cells": 256, "patience": 10, "min_delta": 0.0, "monitor": "loss", "n_top_genes": 5000,
        "input_state": "log1p_norm", "device": "auto",
    },
    "cellzoo_nact:NactConfig": {
        "seed": 0, "preprocess": "scale", "n_pcs": 50, "n_neighbors": 15, "resolution": 1.0, "clustering": "auto",
        "epochs": 50, "batch_size": 128, "lr": 0.0001, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0.0,
        "ffn_width": 128, "masking_fraction": 0.5, "min_steps": 2000, "val_fraction": 0.1, "min_val_cells": 256,
        "patience": 10, "min_delta": 0.0, "monitor": "loss", "n_top_genes": 5000, "input_state": "log1p_norm",
        "device": "auto", "n_markers": 25, "marker_method": "attention", "marker_table": None, "min_score": 0.0,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PLUGIN_DEFAULTS))
def test_the_zoo_torch_configs_inherit_it_with_their_defaults(name):
    package, cls_name = name.split(":")
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")
    cls = getattr(importlib.import_module(package), cls_name)
    assert issubclass(cls, TrainingConfig)
    assert dataclasses.asdict(cls()) == PLUGIN_DEFAULTS[name]


def test_nact_reuses_scannas_network_and_recipe():
    if importlib.util.find_spec("cellzoo_nact") is None:
        pytest.skip("cellzoo_nact is not installed")
    from cellzoo_nact import NactConfig
    from cellzoo_scanna import ScannaConfig

    assert issubclass(NactConfig, ScannaConfig)
    inner = NactConfig(seed=3, lr=1e-3, weight_decay=0.01, marker_table="declared").scanna_config()
    assert type(inner) is ScannaConfig
    assert inner == ScannaConfig(seed=3, lr=1e-3, weight_decay=0.01)
    with pytest.raises(ConfigError, match=r"^invalid nact configuration: .*masking_fraction=1\.0"):
        NactConfig(masking_fraction=1.0)
