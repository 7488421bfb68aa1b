"""The memory check made before training (cellzoo.memory): an estimate without allocation, a clear refusal."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from cellzoo.errors import ResourceError
from cellzoo.memory import (
    BYTES_PER_PARAMETER,
    available_bytes,
    check_training_memory,
    estimate_training,
)


def test_the_estimate_counts_parameters_and_one_batch_of_activations():
    estimate = estimate_training(lambda: nn.Sequential(nn.Linear(10, 5), nn.LayerNorm(5), nn.Linear(5, 3)), 64)
    assert estimate.parameters == 55 + 10 + 18
    assert estimate.parameter_bytes == BYTES_PER_PARAMETER * 83
    assert estimate.activation_bytes == 2 * 4 * 64 * (5 + 5 + 3)
    assert estimate.total_bytes == estimate.parameter_bytes + estimate.activation_bytes


def test_a_huge_network_is_estimated_without_allocating_it():
    start = time.perf_counter()
    # 30,000 × 30,000 three times: 2.7 G parameters, 10.8 GB of float32 if it were built
    estimate = estimate_training(lambda: nn.Sequential(*[nn.Linear(30_000, 30_000) for _ in range(3)]), 128)
    assert time.perf_counter() - start < 5
    assert estimate.parameters == 3 * (30_000 * 30_000 + 30_000)
    assert estimate.total_bytes > 40e9


def test_too_large_is_refused_with_the_numbers_and_the_fix():
    estimate = estimate_training(lambda: nn.Linear(1000, 1000), 128)
    cpu = torch.device("cpu")
    check_training_memory(estimate, cpu, what="training x", fix="do less", available=10 * estimate.total_bytes)
    with pytest.raises(ResourceError) as err:
        check_training_memory(estimate, cpu, what="training x on 1,000 genes", fix="do less", available=10**6)
    message = str(err.value)
    assert message.startswith("training x on 1,000 genes needs about 17.0 MB (1,001,000 parameters")
    assert "more than the 0.8 MB this run may use (80% of the 1.0 MB cpu memory available); do less" in message


def test_the_cpu_reports_what_it_has():
    free = available_bytes(torch.device("cpu"))
    assert free is None or free > 10**7
