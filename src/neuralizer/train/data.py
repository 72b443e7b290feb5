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
    from neuralizer.data.mixed import MixedSliceSource
    from neuralizer.data.real import PeopleConfig, PeopleSliceSource

    synth = SynthConfig(voxel_size_mm=cfg.voxel_size_mm)
    people = PeopleConfig(voxel_size_mm=cfg.voxel_size_mm)
    sources = []
    for split, n in (("train", cfg.n_train_subjects), ("val", cfg.n_val_subjects)):
        parts = {}
        if cfg.people_fraction < 1:
            parts["mni152"] = SynthSliceSource(split, n, synth, axis=cfg.axis)
        if cfg.people_fraction > 0:
            parts["people"] = PeopleSliceSource(split, n, people, axis=cfg.axis)
        sources.append(next(iter(parts.values())) if len(parts) == 1 else MixedSliceSource(parts))
    return tuple(sources)


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
        source_weights={"mni152": 1 - cfg.people_fraction, "people": cfg.people_fraction},
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
