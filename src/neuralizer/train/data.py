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


def sampler_config(cfg: TrainConfig, *, training: bool = False) -> SamplerConfig:
    """The run's sampler configuration; ``training``: with the training stream's task weights."""
    weights = (training and cfg.train_task_weights) or cfg.task_weights or DEFAULT_TASK_WEIGHTS
    return SamplerConfig(
        batch_size=cfg.batch_size,
        min_context=cfg.min_context,
        max_context=cfg.max_context,
        task_weights=dict(weights),
        holdout=HoldOut(cfg.holdout_tasks, cfg.holdout_modalities, cfg.holdout_protocols),
        seed=cfg.seed,
    )


def build_samplers(cfg: TrainConfig) -> tuple[EpisodeSampler, list[Batch]]:
    """The training sampler and ``cfg.val_batches`` fixed validation batches (no augmentation;
    ``task_weights``, whatever ``train_task_weights`` says)."""
    train_source, val_source = _sources(cfg)
    val_config = sampler_config(cfg).evaluation(seed=cfg.seed + 1)
    val_sampler = EpisodeSampler(val_source, val_config)
    return EpisodeSampler(train_source, sampler_config(cfg, training=True)), [
        val_sampler.batch(i) for i in range(cfg.val_batches)
    ]
