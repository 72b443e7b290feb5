"""The episode sampler: seeding, replay, context rules, DataLoader use and hold-outs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from neuralizer.data.subject import ContrastProfile
from neuralizer.tasks.augmentations import AUGMENTATION_NAMES
from neuralizer.tasks.episode import Batch
from neuralizer.tasks.sampler import (
    DEFAULT_TASK_WEIGHTS,
    EpisodeDataset,
    EpisodeSampler,
    HoldOut,
    SamplerConfig,
    replay,
)

SMALL = SamplerConfig(batch_size=4, max_context=4, seed=7)


def _equal(a: Batch, b: Batch) -> bool:
    fields = ("target_in", "target_out", "context_in", "context_out", "segmentation_like")
    same = all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)
    return same and a.tasks == b.tasks and a.records == b.records


def _profiles(params) -> set[str]:
    return {
        getattr(params, f.name).name
        for f in dataclasses.fields(params)
        if isinstance(getattr(params, f.name), ContrastProfile)
    }


def test_batch_shapes(source):
    batch = EpisodeSampler(source, SMALL).batch(0)
    b, n = 4, batch.context_in.shape[1]
    assert 1 <= n <= 4
    assert batch.target_in.shape == (b, 3, 64, 64) and batch.target_out.shape == (b, 1, 64, 64)
    assert batch.context_in.shape == (b, n, 3, 64, 64)
    assert batch.context_out.shape == (b, n, 1, 64, 64)
    assert batch.target_in.dtype == torch.float32 and batch.segmentation_like.dtype == torch.bool
    assert len(batch.tasks) == len(batch.records) == b


def test_space_finds_real_images(source):
    space = EpisodeSampler(source, SMALL).space
    assert space.real_t1 == ("t1_brain",)
    assert space.real_heads == (("head", "head_brain"),)
    assert space.image_shape == (64, 64)


def test_same_seed_same_batches(source):
    a, b = EpisodeSampler(source, SMALL), EpisodeSampler(source, SMALL)
    assert _equal(a.batch(5), b.batch(5))
    assert _equal(a.batch(5), a.batch(5))
    other = EpisodeSampler(source, dataclasses.replace(SMALL, seed=8))
    assert not _equal(a.batch(5), other.batch(5))
    assert not _equal(a.batch(5), a.batch(6))


def test_replay_reproduces_every_episode(source):
    config = dataclasses.replace(SMALL, augmentation_probabilities={"mask_invert": 0.5})
    sampler = EpisodeSampler(source, config)
    for index in range(3):
        batch = sampler.batch(index)
        for i, record in enumerate(batch.records):
            episode = replay(record, source)
            assert np.array_equal(episode.target_in, batch.target_in[i].numpy())
            assert np.array_equal(episode.target_out, batch.target_out[i].numpy())
            assert np.array_equal(episode.context_in, batch.context_in[i].numpy())
            assert np.array_equal(episode.context_out, batch.context_out[i].numpy())
            assert episode.segmentation_like == bool(batch.segmentation_like[i])


def test_context_rules(source):
    sampler = EpisodeSampler(source, SamplerConfig(batch_size=8, min_context=3, max_context=3))
    sizes = set()
    for index in range(4):
        for record in sampler.batch(index).records:
            others = [c.subject_index for c in record.context]
            assert record.target.subject_index not in others
            assert len(set(others)) == len(others) == 3  # distinct while the split allows
            sizes.add(len(record.context))
    assert sizes == {3}
    # more context than other subjects: drawn with replacement, still never the target
    many = EpisodeSampler(source, SamplerConfig(batch_size=2, min_context=9, max_context=9))
    for record in many.batch(0).records:
        assert record.target.subject_index not in [c.subject_index for c in record.context]


def test_context_size_uniform_per_batch(source):
    config = SamplerConfig(batch_size=1, max_context=3, seed=1)
    sampler = EpisodeSampler(source, config)
    sizes = [sampler.batch(i).context_in.shape[1] for i in range(40)]
    assert set(sizes) == {1, 2, 3}


def test_segmentation_targets_are_not_empty(source):
    config = SamplerConfig(batch_size=8, max_context=1, task_weights={"segmentation": 1.0})
    batch = EpisodeSampler(source, dataclasses.replace(config, augmentation_probabilities={}))
    b = batch.batch(0)
    assert b.segmentation_like.all()
    assert (b.target_out.flatten(1).max(1).values > 0).all()


def test_dataloader_with_workers_matches_direct(source):
    sampler = EpisodeSampler(source, SMALL)
    loader = torch.utils.data.DataLoader(
        EpisodeDataset(sampler, n_batches=3, first_batch=10), batch_size=None, num_workers=2
    )
    for i, batch in enumerate(loader):
        assert _equal(batch, sampler.batch(10 + i))


def test_holdout_task_and_modality_and_protocol(source):
    holdout = HoldOut(tasks=("denoising",), modalities=("flair",), protocols=("quadrants",))
    config = SamplerConfig(batch_size=8, max_context=2, holdout=holdout, seed=3)
    sampler = EpisodeSampler(source, config)
    assert "denoising" not in sampler.tasks
    assert "flair" not in sampler.space.profiles
    assert "quadrants" not in sampler.space.protocols
    tasks = set()
    for index in range(6):
        for record in sampler.batch(index).records:
            tasks.add(record.task)
            for pair in (record.target, *record.context):
                assert "flair" not in _profiles(pair.task_params)
                assert getattr(pair.task_params, "protocol", "phantom") == "phantom"
    assert "denoising" not in tasks and len(tasks) >= 4


def test_holdout_evaluation_config(source):
    holdout = HoldOut(modalities=("flair",))
    train = SamplerConfig(batch_size=8, max_context=2, holdout=holdout)
    evaluation = train.evaluation(holdout=True)
    assert evaluation.augmentation_probabilities == {} and not evaluation.spatial.enabled
    sampler = EpisodeSampler(source, evaluation)
    for record in sampler.batch(0).records:
        assert "flair" in _profiles(record.target.task_params)
        assert all(p.spatial.is_identity for p in (record.target, *record.context))
    protocol_eval = EpisodeSampler(
        source, SamplerConfig(holdout=HoldOut(protocols=("quadrants",))).evaluation(holdout=True)
    )
    assert set(protocol_eval.tasks) == {"segmentation"}
    assert set(protocol_eval.space.protocols) == {"quadrants"}
    task_eval = EpisodeSampler(
        source, SamplerConfig(holdout=HoldOut(tasks=("motion",))).evaluation(holdout=True)
    )
    assert set(task_eval.tasks) == {"motion"}


def test_config_errors(source):
    with pytest.raises(ValueError, match="unknown task"):
        SamplerConfig(task_weights={"segmentaton": 1.0})
    with pytest.raises(ValueError, match="no task left"):
        EpisodeSampler(source, SamplerConfig(holdout=HoldOut(tasks=tuple(DEFAULT_TASK_WEIGHTS))))
    with pytest.raises(ValueError, match="augmentations"):
        SamplerConfig(augmentation_probabilities={"sobel": 1.0})
    with pytest.raises(ValueError, match="context"):
        SamplerConfig(min_context=0)


def test_records_are_json_able(source):
    config = dataclasses.replace(
        SMALL, augmentation_probabilities=dict.fromkeys(AUGMENTATION_NAMES, 1.0)
    )
    for record in EpisodeSampler(source, config).batch(0).records:
        text = json.dumps(dataclasses.asdict(record))
        assert json.loads(text)["task"] == record.task


def test_config_json_round_trip():
    config = SamplerConfig(
        max_context=4, holdout=HoldOut(modalities=("flair",)), position_range=(0.2, 0.8)
    ).evaluation(holdout=True)
    again = SamplerConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
