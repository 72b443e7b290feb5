"""The training configuration: one frozen dataclass, read from JSON, saved with every checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from neuralizer.model.network import ModelConfig


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
    # Fraction of episodes drawn from the twenty real people (neuralizer.data.real), the rest
    # from the MNI-based virtual subjects; each kind has n_train_subjects / n_val_subjects.
    # 0: MNI only (the shipped model); 1: people only.
    people_fraction: float = 0.0
    phantom_size: int = 32
    # episodes
    batch_size: int = 8
    micro_batch_size: int = 8
    # At most this many context members (episodes x L) per micro-batch, for speed (0: no limit).
    micro_batch_members: int = 0
    min_context: int = 1
    max_context: int = 32
    task_weights: dict[str, float] | None = None
    # Task weights of the training stream only (None: task_weights). Validation keeps
    # task_weights, so that a run may change its mix on resume and still compare validation losses.
    train_task_weights: dict[str, float] | None = None
    holdout_tasks: tuple[str, ...] = ()
    holdout_modalities: tuple[str, ...] = ()
    holdout_protocols: tuple[str, ...] = ()
    # optimisation
    lr: float = 1e-4
    # Exponential moving average of the weights (0: off). With it on, validation, "best" and
    # "latest" use the averaged weights; the optimiser still steps the raw ones.
    ema_decay: float = 0.0
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
        self._check_types()
        positive = ("channels", "stages", "batch_size", "micro_batch_size", "min_context")
        positive += ("max_steps", "steps_per_epoch", "val_batches", "checkpoint_every")
        positive += ("phantom_size", "n_train_subjects", "n_val_subjects")
        for name in ("seed", "num_workers", "threads", "micro_batch_members"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"TrainConfig.{name} must be at least 0, got {getattr(self, name)}"
                )
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
        if not 0 < self.lr < math.inf or self.patience < 1 or not 0 < self.voxel_size_mm < 100:
            raise ValueError(
                "TrainConfig.lr must be positive and finite, voxel_size_mm in (0, 100) mm and "
                "patience at least 1"
            )
        if not 0 <= self.people_fraction <= 1:
            raise ValueError(
                f"TrainConfig.people_fraction must be in [0, 1], got {self.people_fraction}"
            )
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1), got {self.ema_decay}")
        multiple = ModelConfig(channels=self.channels, stages=self.stages).size_multiple
        if self.data == "phantom" and self.phantom_size % multiple:
            raise ValueError(
                f"TrainConfig.phantom_size must be a multiple of {multiple} ({self.stages} stages)"
            )

    def _check_types(self) -> None:
        """JSON gives any type: refuse wrong ones here, with the field's name."""
        for f in fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if kind.startswith("tuple"):
                ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
            elif kind.startswith("dict[str, float]"):
                ok = value is None or (
                    isinstance(value, dict)
                    and all(isinstance(k, str) and _is_number(v) for k, v in value.items())
                )
            elif kind.startswith("dict"):
                ok = isinstance(value, dict)
            else:
                ok = {
                    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                    "float": _is_number,
                    "str": lambda v: isinstance(v, str),
                    "bool": lambda v: isinstance(v, bool),
                }[kind](value)
            if not ok:
                raise ValueError(f"TrainConfig.{f.name} must be of type {kind}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown training config field(s) {unknown}; known: {sorted(known)}")
        tuples = {
            k: tuple(v) if isinstance(v, list | tuple) else v
            for k, v in values.items()
            if k.startswith("holdout_")
        }
        return cls(**{**values, **tuples})

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        try:
            values = json.loads(path.read_text())
        except (json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of TrainConfig fields")
        return cls.from_dict(values)
