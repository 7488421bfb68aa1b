"""The plugin through cellzoo's registry and cellzoo.training.WeightedLoss."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import cellzoo
import cellzoo_softadapt.plugin
from cellzoo.errors import ConfigError, TrainingError
from cellzoo.protocols import LossWeighting
from cellzoo.testing import zoo_pm  # noqa: F401  (zoo_pm is a fixture)

NAMES = ["equal", "fixed", "softadapt", "softadapt_loss_weighted", "softadapt_normalised", "uncertainty"]


@pytest.fixture(autouse=True)
def _only_this_plugin(zoo_pm):  # noqa: F811
    zoo_pm.register(cellzoo_softadapt.plugin, name="softadapt", distribution="cellzoo-softadapt")


def test_listed_with_specs():
    assert cellzoo.list_loss_weightings() == NAMES
    assert cellzoo.list_loss_weightings("softadapt*") == [
        "softadapt",
        "softadapt_loss_weighted",
        "softadapt_normalised",
    ]
    for name in NAMES:
        spec = cellzoo.loss_weighting_spec(name)
        assert spec.name == name and spec.summary and spec.license == "MIT"
        if spec.config is not None:
            assert spec.config.__dataclass_params__.frozen
    assert "1912.12355" in cellzoo.loss_weighting_spec("softadapt").citation
    assert "Kendall" in cellzoo.loss_weighting_spec("uncertainty").citation


def test_the_plugin_is_installed_as_an_entry_point():
    from importlib.metadata import entry_points

    assert any(ep.value == "cellzoo_softadapt.plugin" for ep in entry_points(group="cellzoo"))


def test_create_with_overrides_and_defaults():
    w = cellzoo.create_loss_weighting("softadapt", beta=0.2)
    assert w.config.beta == 0.2 and w.config.window == 5 and w.config.stencil_order == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.config.beta = 1.0
    assert cellzoo.create_loss_weighting("softadapt_normalised").config.signed_sum is False
    assert cellzoo.create_loss_weighting("equal").weights([[1.0], [2.0], [3.0]]) == [1.0, 1.0, 1.0]
    assert cellzoo.create_loss_weighting("fixed", weights=[1, 0.5]).weights([[1], [2]]) == [1.0, 0.5]
    for name in NAMES:
        assert isinstance(cellzoo.create_loss_weighting(name), LossWeighting)


def test_unknown_key_and_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match=r"'betta' \(did you mean 'beta'\?\)"):
        cellzoo.create_loss_weighting("softadapt", betta=0.2)
    with pytest.raises(ConfigError, match=r"1\.\.2"):
        cellzoo.create_loss_weighting("softadapt_loss_weighted", window=3, order=3)
    with pytest.raises(ConfigError, match="takes no configuration"):
        cellzoo.create_loss_weighting("equal", beta=1.0)
    with pytest.raises(ConfigError, match=">= 0"):
        cellzoo.create_loss_weighting("fixed", weights=(1.0, -1.0))
    with pytest.raises(ConfigError, match="2 weights"):
        cellzoo.create_loss_weighting("fixed").weights([[1.0], [1.0], [1.0]])


def _run_epochs(weighted, epochs):
    """Synthetic epochs: part 0 falls fast (10 → 0.1), part 1 rises slowly; four steps per epoch."""
    for epoch in range(epochs):
        for step in range(4):
            t = epoch + step / 4
            weighted.record([10.0 * np.exp(-t), 1.0 + 0.2 * t])
        weighted.update()


def test_weighted_loss_with_softadapt_changes_weights_after_a_window():
    from cellzoo.training import WeightedLoss

    weighting = cellzoo.create_loss_weighting("softadapt", beta=1.0, window=3)
    weighted = WeightedLoss(weighting, n_parts=2)
    assert weighted.window == 3  # read from the config
    _run_epochs(weighted, 2)
    assert weighted.current == [1.0, 1.0]  # not enough epochs yet
    _run_epochs(weighted, 1)
    assert weighted.history[0] and len(weighted.history[0]) == 3
    w = weighted.current
    assert w != [1.0, 1.0] and w[1] > w[0] and sum(w) == pytest.approx(1.0, abs=1e-7)
    np.testing.assert_allclose(w, weighting.weights(weighted.history))
    # as part 0 flattens, its slope → 0 and the weights move towards each other, part 1 still ahead
    _run_epochs(weighted, 6)
    later = weighted.current
    assert later[1] > later[0] and later[0] > w[0]
    assert len(weighted.trace) == 10
    torch = pytest.importorskip("torch")
    total = weighted.combine([torch.tensor(2.0), torch.tensor(3.0)])
    assert float(total) == pytest.approx(2 * later[0] + 3 * later[1])


def test_weighted_loss_with_the_fixed_weighting_uses_its_weights_from_the_first_step():
    torch = pytest.importorskip("torch")
    from cellzoo.training import WeightedLoss

    weighted = WeightedLoss(cellzoo.create_loss_weighting("fixed", weights=(1.0, 0.1)), n_parts=2)
    assert float(weighted.combine([torch.tensor(1.0), torch.tensor(10.0)])) == pytest.approx(2.0)
    _run_epochs(weighted, 3)
    assert weighted.current == [1.0, 0.1]


def test_weighted_loss_rejects_negative_means_of_the_loss_weighted_variant():
    from cellzoo.errors import InputError
    from cellzoo.training import WeightedLoss

    weighted = WeightedLoss(cellzoo.create_loss_weighting("softadapt_loss_weighted", window=2), n_parts=2)
    weighted.record([-1.0, 1.0])
    weighted.update()
    weighted.record([-2.0, 1.0])
    with pytest.raises((InputError, TrainingError)):
        weighted.update()
