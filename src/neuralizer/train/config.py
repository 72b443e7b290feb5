"""The training configuration: one frozen dataclass, read from JSON, saved with every checkpoint.

It nests the model's architecture (:class:`~neuralizer.model.config.ModelConfig`), where the
subjects come from (:class:`~neuralizer.data.make.SourceConfig`) and how episodes are drawn
(:class:`~neuralizer.tasks.sampler.SamplerConfig`, augmentation included); the rest is the
optimisation. Configs written before the nesting (flat: ``"channels"``, ``"data"``,
``"batch_size"``, ... at the top) still load, to the same config as their nested equivalent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from neuralizer.data.make import FLAT_SOURCE_FIELDS, SourceConfig
from neuralizer.jsonconfig import JsonConfig
from neuralizer.model.config import ModelConfig
from neuralizer.tasks.sampler import SamplerConfig


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """Everything that determines a training run (paper §4.3; SPEC §4).

    - ``model``: the architecture (default here: 32 channels, 4 stages).
    - ``source``: the subjects; ``n_train_subjects`` / ``n_val_subjects`` of each split.
    - ``sampler``: episodes: ``batch_size`` episodes per step, context sizes, ``task_weights``
      (validation's mix, and training's unless ``train_task_weights`` is set), augmentation
      probabilities, spatial augmentation, hold-outs; its ``seed`` is the run's seed. Its
      ``source_weights`` come from ``source.people_fraction``.
    - An "epoch" is ``steps_per_epoch`` optimiser steps between two validations; training stops
      after ``patience`` epochs without a better validation loss, or at ``max_steps``.
    - ``init``: a checkpoint whose weights a new run starts from (fine-tuning; its model config
      must be ``model``). ``fixed_batch``: every step reuses the same batch (overfitting check).
    """

    FLAT = {
        **FLAT_SOURCE_FIELDS,
        "channels": ("model", "channels"),
        "stages": ("model", "stages"),
        "batch_size": ("sampler", "batch_size"),
        "min_context": ("sampler", "min_context"),
        "max_context": ("sampler", "max_context"),
        "task_weights": ("sampler", "task_weights"),
        "seed": ("sampler", "seed"),
        "holdout_tasks": ("sampler", "holdout", "tasks"),
        "holdout_modalities": ("sampler", "holdout", "modalities"),
        "holdout_protocols": ("sampler", "holdout", "protocols"),
    }
    NULL_IS_DEFAULT = ("task_weights",)  # flat files wrote null for the default weights
    WHAT = "training config"

    run_dir: str = "runs/default"
    model: ModelConfig = ModelConfig(channels=32, stages=4)
    source: SourceConfig = SourceConfig()
    n_train_subjects: int = 200
    n_val_subjects: int = 16
    sampler: SamplerConfig = SamplerConfig(batch_size=8, max_context=32)
    micro_batch_size: int = 8
    # At most this many context members (episodes x L) per micro-batch, for speed (0: no limit).
    micro_batch_members: int = 0
    # The forward pass by SPEC §1's exact split algebra (Neuralizer(..., split=True)): the same
    # function and gradient up to float rounding, for speed (docs/performance.md).
    split_algebra: bool = False
    # Task weights of the training stream only (None: sampler.task_weights). Validation keeps
    # sampler.task_weights, so that a run may change its mix on resume and still compare
    # validation losses.
    train_task_weights: dict[str, float] | None = None
    init: str = ""
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
    num_workers: int = 0
    threads: int = 0  # 0: leave torch's default
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, saved as given

    def __post_init__(self) -> None:
        positive = ("micro_batch_size", "max_steps", "steps_per_epoch", "val_batches")
        positive += ("checkpoint_every", "n_train_subjects", "n_val_subjects", "patience")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(
                    f"TrainConfig.{name} must be at least 1, got {getattr(self, name)}"
                )
        for name in ("num_workers", "threads", "micro_batch_members"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"TrainConfig.{name} must be at least 0, got {getattr(self, name)}"
                )
        if self.sampler.batch_size % self.micro_batch_size:
            raise ValueError(
                "TrainConfig.sampler.batch_size must be a multiple of micro_batch_size"
            )
        if self.sampler.seed < 0:
            raise ValueError(
                f"TrainConfig.sampler.seed must be at least 0, got {self.sampler.seed}"
            )
        if self.sampler.evaluate_holdout or self.sampler.source_weights:
            raise ValueError(
                "TrainConfig.sampler: evaluate_holdout is for evaluations, and source_weights "
                "come from source.people_fraction"
            )
        if not 0 < self.lr < math.inf:
            raise ValueError(f"TrainConfig.lr must be positive and finite, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1), got {self.ema_decay}")
        multiple = self.model.size_multiple
        if self.source.kind == "phantom" and self.source.phantom_size % multiple:
            raise ValueError(
                f"TrainConfig.source.phantom_size must be a multiple of {multiple} "
                f"({self.model.stages} stages)"
            )

    @property
    def seed(self) -> int:
        """The run's seed (the sampler's): torch's generator, the episodes, the data loader."""
        return self.sampler.seed
