"""Episode samplers for a training run: training stream and the fixed validation set."""

from __future__ import annotations

from neuralizer.tasks.episode import Batch
from neuralizer.tasks.sampler import DEFAULT_TASK_WEIGHTS, EpisodeSampler, HoldOut, SamplerConfig
from neuralizer.train.config import TrainConfig


def _sources(cfg: TrainConfig):
    if cfg.data == "phantom":
        from neuralizer.tasks.phantom import PhantomSource

        return (
            PhantomSource(cfg.n_train_subjects, cfg.phantom_size),
            PhantomSource(cfg.n_val_subjects, cfg.phantom_size, first_seed=10_000_000),
        )
    from neuralizer.data import SynthConfig, SynthSliceSource

    synth = SynthConfig(voxel_size_mm=cfg.voxel_size_mm)
    return (
        SynthSliceSource("train", cfg.n_train_subjects, synth, axis=cfg.axis),
        SynthSliceSource("val", cfg.n_val_subjects, synth, axis=cfg.axis),
    )


def sampler_config(cfg: TrainConfig) -> SamplerConfig:
    return SamplerConfig(
        batch_size=cfg.batch_size,
        min_context=cfg.min_context,
        max_context=cfg.max_context,
        task_weights=dict(cfg.task_weights or DEFAULT_TASK_WEIGHTS),
        holdout=HoldOut(cfg.holdout_tasks, cfg.holdout_modalities, cfg.holdout_protocols),
        seed=cfg.seed,
    )


def build_samplers(cfg: TrainConfig) -> tuple[EpisodeSampler, list[Batch]]:
    """The training sampler and ``cfg.val_batches`` fixed validation batches (no augmentation)."""
    train_source, val_source = _sources(cfg)
    config = sampler_config(cfg)
    val_sampler = EpisodeSampler(val_source, config.evaluation(seed=cfg.seed + 1))
    return EpisodeSampler(train_source, config), [
        val_sampler.batch(i) for i in range(cfg.val_batches)
    ]
