"""Hook specifications: what a cellzoo plugin may contribute.

Hooks only *declare*. They return lists of spec objects and must not import torch or load data
when called, so that listing the zoo stays fast.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("cellzoo")
hookimpl = pluggy.HookimplMarker("cellzoo")


@hookspec
def cellzoo_models():
    """Return a list of :class:`cellzoo.ModelSpec`."""


@hookspec
def cellzoo_datasets():
    """Return a list of :class:`cellzoo.DatasetSpec`."""


@hookspec
def cellzoo_metrics():
    """Return a list of :class:`cellzoo.MetricSpec`."""


@hookspec
def cellzoo_tasks():
    """Return a list of :class:`cellzoo.TaskSpec`."""


@hookspec
def cellzoo_loss_weightings():
    """Return a list of :class:`cellzoo.LossWeightingSpec` (strategies that weight a multi-part loss)."""
