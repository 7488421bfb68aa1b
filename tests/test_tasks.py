"""A task owns its data kind and its dispatch: train (the CLI), build and the harness all use it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from cellzoo import DatasetSpec, ModelSpec, TaskSpec, ZooModel, hookimpl
from cellzoo.cli.models import fit_model
from cellzoo.data.datasets import load_dataset
from cellzoo.errors import InputError, PluginError
from cellzoo.registry import create_model, task_spec
from cellzoo.tasks import MARKERS, SUPERVISED, UNSUPERVISED, Dispatch, dispatch_of
from cellzoo.testing import tiny_annotate_adata


class CountingDispatch(Dispatch):
    """A task whose models learn from the number of cells only (no labels), scored on a sum."""

    takes_labels = False
    allows_unseen = True

    def fit(self, model, data, label_key):
        return model.learn(len(data))

    def output(self, model, data, *, label_key=None, solution=None):
        return model.total


@dataclass(frozen=True)
class Cfg:
    seed: int = 0


class Counter(ZooModel):
    def __init__(self, config=None):
        super().__init__(config or Cfg())
        self.total = None

    @property
    def is_fitted(self):
        return self.total is not None

    def learn(self, n):
        self.total = n
        return self


def tiles(n: int = 3):
    return [np.full((4, 5), float(i), dtype=np.float32) for i in range(n)]


class Plugin:
    @hookimpl
    def cellzoo_tasks(self):
        return [TaskSpec("counting", protocol=("learn",), metrics=(), scoring="count", data="images",
                         dispatch=CountingDispatch())]  # fmt: skip

    @hookimpl
    def cellzoo_models(self):
        return [ModelSpec("counter", task="counting", builder=Counter, config=Cfg)]

    @hookimpl
    def cellzoo_datasets(self):
        return [
            DatasetSpec("tiles", tasks=("counting",), loader=tiles, data="images"),
            DatasetSpec("not_images", tasks=("counting",), loader=lambda: "a string", data="images"),
        ]


@pytest.fixture
def counting(zoo_pm):
    zoo_pm.register(Plugin(), name="counting")
    return zoo_pm


def test_a_task_names_its_own_dispatch_and_every_caller_uses_it(counting):
    model = create_model("counter")
    images = load_dataset("tiles", n=4)
    fit_model(model, images, label_key=None)  # what `cellzoo train` calls
    assert model.total == 4
    assert dispatch_of(task_spec("counting")).output(model, images) == 4


def test_builtin_scorings_have_builtin_dispatches(zoo_pm):
    assert dispatch_of(task_spec("annotate")) is SUPERVISED
    assert dispatch_of(task_spec("markers")) is MARKERS
    assert not UNSUPERVISED.takes_labels and UNSUPERVISED.allows_unseen


def test_supervised_fit_without_a_label_column_says_which_columns_exist(zoo_pm):
    model = create_model("majority")
    adata = tiny_annotate_adata(n_cells=30, n_genes=10)
    with pytest.raises(InputError, match="--label-key"):
        SUPERVISED.fit(model, adata, None)
    SUPERVISED.fit(model, adata, "cell_type")
    assert model.is_fitted


def test_image_datasets_load_as_lists_of_arrays_and_bad_ones_are_refused(counting):
    images = load_dataset("tiles")
    assert len(images) == 3 and images[2].shape == (4, 5)
    with pytest.raises(PluginError, match="list of numpy arrays"):
        load_dataset("not_images")


def test_task_and_dataset_specs_check_their_data_kind():
    with pytest.raises(ValueError, match="data 'pixels'"):
        TaskSpec("t", protocol=(), metrics=(), data="pixels")
    with pytest.raises(ValueError, match="names its own dispatch"):
        TaskSpec("t", protocol=(), metrics=(), scoring="count")
    with pytest.raises(ValueError, match="data 'frames'"):
        DatasetSpec("d", tasks=("t",), loader=tiles, data="frames")
