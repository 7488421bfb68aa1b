"""The configuration of :class:`cellzoo_example.model.ExampleCentroid` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

METRICS = ("cosine", "euclidean")


@dataclass(frozen=True)
class CentroidConfig:
    #: similarity between a cell and a class centroid
    metric: str = "cosine"
    #: softmax temperature turning similarities into probabilities
    temperature: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature!r}")
