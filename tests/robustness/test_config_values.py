"""Config values of the wrong type (``--set epochs=2.5``, ``--set epochs=ten``): refused, naming key, value and type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from test_cli import cli, one_error_line

from cellzoo import ModelSpec
from cellzoo.errors import ConfigError
from cellzoo.registry import make_config


@dataclass(frozen=True)
class Cfg:
    epochs: int = 10
    lr: float = 0.1
    limit: int | None = None
    tile: int = None  # type: ignore[assignment]  # a plugin's loose annotation: its default still passes
    name: str = "x"


SPEC = ModelSpec("typed", task="annotate", builder="cellzoo.controls:Majority", config=Cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 2.5}, r"config key 'epochs' takes an integer \(int\), got 2.5 \(a float that is not a whole"),
        ({"epochs": 2.0}, r"config key 'epochs' takes an integer \(int\), got 2.0 \(a float\)"),
        ({"epochs": "ten"}, r"config key 'epochs' takes an integer \(int\), got 'ten' \(text\)"),
        ({"epochs": True}, r"config key 'epochs' takes an integer \(int\), got True \(a bool\)"),
        ({"epochs": None}, r"config key 'epochs' takes an integer \(int\), got None"),
        ({"lr": "fast"}, r"config key 'lr' takes a number \(float\), got 'fast' \(text\)"),
        ({"lr": [0.1]}, r"config key 'lr' takes a number \(float\), got \[0.1\] \(a list\)"),
        ({"limit": 1.5}, r"config key 'limit' takes an integer \(int\) or null, got 1.5"),
    ],
)
def test_a_numeric_field_refuses_a_value_of_another_type(overrides, message):
    with pytest.raises(ConfigError, match=rf"^invalid configuration for model 'typed': {message}"):
        make_config(SPEC, overrides)


def test_every_wrong_value_is_listed():
    with pytest.raises(ConfigError) as info:
        make_config(SPEC, {"epochs": 2.5, "lr": "fast"})
    assert "'epochs'" in str(info.value) and "'lr'" in str(info.value)


def test_values_of_the_declared_type_are_kept():
    config = make_config(SPEC, {"epochs": np.int64(3), "lr": 1, "limit": None, "tile": None, "name": "y"})
    assert (config.epochs, config.lr, config.limit, config.tile, config.name) == (3, 1, None, None, "y")
    assert make_config(SPEC, {"lr": np.float32(0.5), "limit": 4}).limit == 4


@pytest.mark.parametrize(
    ("setting", "shown"),
    [("seed=2.5", "got 2.5 (a float that is not a whole number)"), ("seed=ten", "got 'ten' (text)")],
)
def test_train_set_names_the_key_the_value_and_the_type(zoo, data, tmp_path, setting, shown):
    out = tmp_path / "m"
    result = cli("train", "majority", "-d", data, "-l", "cell_type", "--set", setting, "-o", out)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "config key 'seed' takes an integer (int)" in line and shown in line
    assert not out.exists()
