"""Evaluation sets: task instances with their target pairs and their pool of context pairs.

An :class:`Instance` is one task with every episode-level choice fixed (drawn by the episode
sampler's evaluation config: no augmentation, identity spatial transforms, hold-outs honoured),
``T`` target pairs from held-out test subjects and a pool of ``P`` pairs of the same task: the
context of size L is the first L pool pairs, and a task-specific U-Net trained on n pairs uses
the first n. Every instance is a pure function of ``(config.seed, task, index)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuralizer.data.subject import SliceSource
from neuralizer.evaluate.config import EvalConfig
from neuralizer.tasks.episode import PairRecord, make_pair
from neuralizer.tasks.registry import TASK_NAMES
from neuralizer.tasks.sampler import EpisodeSampler, HoldOut, SamplerConfig
from neuralizer.tasks.spatial import sample_spatial


@dataclass(frozen=True)
class Instance:
    """One task instance. Arrays: ``target_in`` T×3×H×W, ``target_out`` T×1×H×W, ``pool_in``
    P×3×H×W, ``pool_out`` P×1×H×W (float32). ``modalities``: the T targets' input modalities."""

    task: str
    index: int
    segmentation_like: bool
    protocol: str
    label: str
    target_in: np.ndarray
    target_out: np.ndarray
    pool_in: np.ndarray
    pool_out: np.ndarray
    modalities: tuple[str, ...]


def make_sources(config: EvalConfig) -> tuple[SliceSource, SliceSource, int]:
    """(target source, pool source, first pool subject index) of ``config``."""
    if config.data == "phantom":
        from neuralizer.tasks.phantom import PhantomSource

        test = PhantomSource(config.n_targets + config.pool_size, config.phantom_size, 10**7)
        if config.pool_split == "train":
            return test, PhantomSource(config.n_train_subjects, config.phantom_size), 0
        return test, test, config.n_targets
    from neuralizer.data import SynthConfig, SynthSliceSource

    kwargs = {"protocols": config.protocols} if config.protocols else {}
    synth = SynthConfig(voxel_size_mm=config.voxel_size_mm, **kwargs)
    n_test = config.n_targets + (config.pool_size if config.pool_split == "test" else 0)
    test = SynthSliceSource("test", n_test, synth, axis=config.axis, evaluation=True)
    if config.pool_split == "train":
        train = SynthSliceSource("train", config.n_train_subjects, synth, axis=config.axis)
        return test, train, 0
    return test, test, config.n_targets


def make_sampler(config: EvalConfig, task: str, source: SliceSource) -> EpisodeSampler:
    """The episode sampler's evaluation config restricted to ``task`` (hold-outs: only them)."""
    holdout = HoldOut(**config.holdout)
    base = SamplerConfig(task_weights={task: 1.0}, holdout=holdout, seed=config.seed)
    return EpisodeSampler(source, base.evaluation(holdout=bool(holdout), seed=config.seed))


def modality(params) -> str:
    """Input modality of a pair: the profile name ("t1-real" for a real image; "a->b")."""
    if hasattr(params, "profile_in"):
        return f"{params.profile_in.name}->{params.profile_out.name}"
    name = params.profile.name if hasattr(params, "profile") else "phantom"
    return f"{name}-real" if getattr(params, "real_image", "") else name


def _largest_labels(source: SliceSource, subject: int, position: float, protocol: str, k: int):
    labels = np.asarray(source.get(subject, position).labels[protocol])
    values, counts = np.unique(labels[labels != 0], return_counts=True)
    return [int(v) for v in values[np.argsort(-counts, kind="stable")][:k]]


def build_instances(config: EvalConfig, task: str, index: int) -> list[Instance]:
    """Instance ``index`` of ``task`` (``per_class``: one per largest label, else one)."""
    target_source, pool_source, first_pool = make_sources(config)
    sampler = make_sampler(config, task, target_source)
    task_obj = sampler.tasks[task]
    rng = np.random.default_rng([config.seed, TASK_NAMES.index(task), index])
    anchor = sampler.sample_record(rng, 1)
    variants = [anchor.target.task_params]
    if config.per_class:
        p = anchor.target.task_params
        top = _largest_labels(
            target_source, anchor.target.subject_index, anchor.position, p.protocol,
            config.per_class,
        )  # fmt: skip
        variants = [dataclasses.replace(p, labels=(v,)) for v in top]
    # evaluation config: spatial augmentation disabled, so this is the identity
    identity = sample_spatial(target_source.get(0, 0.5).shape, sampler.config.spatial, rng)
    n_pool_subjects = len(pool_source) - first_pool
    out = []
    for k, params in enumerate(variants):
        pair_rng = np.random.default_rng([config.seed, 7, index, k])

        made = _pairs(task_obj, params, pair_rng, range(config.n_targets), target_source,
                      anchor.position, identity)  # fmt: skip
        targets, t_in, t_out = made
        pool_subjects = [first_pool + i % n_pool_subjects for i in range(config.pool_size)]
        _, p_in, p_out = _pairs(task_obj, params, pair_rng, pool_subjects, pool_source,
                                anchor.position, identity)  # fmt: skip
        out.append(
            Instance(
                task=task,
                index=index if not config.per_class else index * config.per_class + k,
                segmentation_like=task_obj.segmentation_like,
                protocol=getattr(params, "protocol", ""),
                label=_label_name(sampler, params),
                target_in=t_in,
                target_out=t_out,
                pool_in=p_in,
                pool_out=p_out,
                modalities=tuple(modality(r.task_params) for r in targets),
            )  # fmt: skip
        )
    return out


def _pairs(task, params, rng, subjects, source, position, spatial):
    """(pair records, N×3×H×W inputs, N×1×H×W outputs) of ``params``' episode on ``subjects``."""
    records = [PairRecord(int(s), task.sample_pair(params, rng), spatial) for s in subjects]
    made = [make_pair(task, source, position, r) for r in records]
    return records, np.stack([m.input for m in made]), np.stack([m.output for m in made])


def _label_name(sampler: EpisodeSampler, params) -> str:
    if not hasattr(params, "labels"):
        return ""
    names = sampler.space.label_names.get(params.protocol, {})
    return "+".join(str(names.get(v, v)) for v in params.labels)
