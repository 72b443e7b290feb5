"""Episode samplers for a training run: training stream and the fixed validation set."""

from __future__ import annotations

import dataclasses

from neuralizer.data.make import make_source
from neuralizer.data.subject import SliceSource
from neuralizer.tasks.episode import Batch
from neuralizer.tasks.sampler import EpisodeSampler, SamplerConfig
from neuralizer.train.config import TrainConfig


def _sources(cfg: TrainConfig) -> tuple[SliceSource, SliceSource]:
    """(training source, validation source) of the run."""
    return (
        make_source(cfg.source, "train", cfg.n_train_subjects),
        make_source(cfg.source, "val", cfg.n_val_subjects),
    )


def sampler_config(cfg: TrainConfig, *, training: bool = False) -> SamplerConfig:
    """The run's sampler configuration; ``training``: with the training stream's task weights."""
    weights = (training and cfg.train_task_weights) or cfg.sampler.task_weights
    return dataclasses.replace(
        cfg.sampler, task_weights=dict(weights), source_weights=cfg.source.part_weights()
    )


def build_samplers(cfg: TrainConfig) -> tuple[EpisodeSampler, list[Batch]]:
    """The training sampler and ``cfg.val_batches`` fixed validation batches (no augmentation;
    ``sampler.task_weights``, whatever ``train_task_weights`` says)."""
    train_source, val_source = _sources(cfg)
    val_config = sampler_config(cfg).evaluation(seed=cfg.seed + 1)
    val_sampler = EpisodeSampler(val_source, val_config)
    return EpisodeSampler(train_source, sampler_config(cfg, training=True)), [
        val_sampler.batch(i) for i in range(cfg.val_batches)
    ]
