"""The training configuration: one frozen dataclass, read from JSON, saved with every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (paper §4.3; SPEC §4).

    An "epoch" is ``steps_per_epoch`` optimiser steps between two validations; training stops
    after ``patience`` epochs without a better validation loss, or at ``max_steps``.
    ``data``: "synth" (the embedded anatomy, synthesised subjects) or "phantom" (geometric
    phantoms, for tests). ``fixed_batch``: every step reuses the same batch (overfitting check).
    """

    run_dir: str = "runs/default"
    # model
    channels: int = 32
    stages: int = 4
    # data
    data: str = "synth"
    voxel_size_mm: float = 2.0
    axis: str = "coronal"
    n_train_subjects: int = 200
    n_val_subjects: int = 16
    phantom_size: int = 32
    # episodes
    batch_size: int = 8
    micro_batch_size: int = 8
    min_context: int = 1
    max_context: int = 32
    task_weights: dict[str, float] | None = None
    holdout_tasks: tuple[str, ...] = ()
    holdout_modalities: tuple[str, ...] = ()
    holdout_protocols: tuple[str, ...] = ()
    # optimisation
    lr: float = 1e-4
    max_steps: int = 100_000
    steps_per_epoch: int = 500
    val_batches: int = 16
    patience: int = 25
    checkpoint_every: int = 100
    fixed_batch: bool = False
    seed: int = 0
    num_workers: int = 0
    threads: int = 0  # 0: leave torch's default
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, saved as given

    def __post_init__(self) -> None:
        positive = ("channels", "stages", "batch_size", "micro_batch_size", "min_context")
        positive += ("max_steps", "steps_per_epoch", "val_batches", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(
                    f"TrainConfig.{name} must be at least 1, got {getattr(self, name)}"
                )
        if self.max_context < self.min_context:
            raise ValueError("TrainConfig.max_context must be at least min_context")
        if self.batch_size % self.micro_batch_size:
            raise ValueError("TrainConfig.batch_size must be a multiple of micro_batch_size")
        if self.data not in ("synth", "phantom"):
            raise ValueError(f"TrainConfig.data must be 'synth' or 'phantom', got {self.data!r}")
        if self.lr <= 0 or self.patience < 1:
            raise ValueError("TrainConfig.lr must be positive and patience at least 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown training config field(s) {unknown}; known: {sorted(known)}")
        tuples = {k: tuple(v) for k, v in values.items() if k.startswith("holdout_")}
        return cls(**{**values, **tuples})

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of TrainConfig fields")
        return cls.from_dict(values)
