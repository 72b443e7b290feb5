"""Evaluation sets: task instances with their target pairs and their pool of context pairs.

An :class:`Instance` is one task with every episode-level choice fixed (drawn by the episode
sampler's evaluation config: no task augmentation, hold-outs honoured), ``T`` target pairs from
held-out test subjects and a pool of ``P`` pairs of the same task: the context of size L is the
first L pool pairs, and a task-specific U-Net trained on n pairs uses the first n. Every instance
is a pure function of ``(config.seed, task, index)``.

``config.episodes`` says how the pairs are made:

- "evaluation": identity spatial transforms, so every pair shows its subject as synthesised.
- "training": pairs made exactly as training makes them, from test subjects. Training episodes
  differ from evaluation ones in two ways: every pair gets its own spatial augmentation (the
  training sampler's :class:`~neuralizer.tasks.spatial.SpatialConfig`: rotation, scale, shear,
  translation, elastic, left-right flip), and task augmentations are drawn. This kind keeps the
  first and not the second. The subjects' own deformations (anatomy and subject) and the rendering
  (profiles, real images, render noise, bias and resolution, mixed modalities, corruption levels)
  are the same in both kinds already: they come from the same synthesis config and the task's own
  ``sample``/``sample_pair``. Task augmentations are left out because they change what is asked
  (MaskInvert segments the background, MaskContour the outline, SobelFilter and IntensityMapping
  change the image a restoration task must return), so a Dice or PSNR bar for "skull stripping"
  or "denoising" would no longer measure that task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuralizer.data.make import make_source
from neuralizer.data.people import PEOPLE_SPLITS
from neuralizer.data.real import PeopleConfig, PeopleSliceSource
from neuralizer.data.subject import SliceSource, SliceSubject
from neuralizer.evaluate.config import EvalConfig
from neuralizer.tasks.episode import PairRecord, make_pair
from neuralizer.tasks.registry import TASK_NAMES
from neuralizer.tasks.sampler import EpisodeSampler, HoldOut, SamplerConfig
from neuralizer.tasks.spatial import SpatialConfig, sample_spatial

#: label map added to the subjects for ``config.structures``: the tissue classes
#: (``neuralizer.data.render.TISSUE_CLASSES``) inside the brain mask, 0 outside
TISSUE_PROTOCOL = "brain_tissue"
#: structure -> tissue classes: brain mask (everything inside it: ventricles, cortex, white
#: matter, deep grey, hippocampus/amygdala, cerebellum, brainstem, sulcal CSF), white matter
#: (cerebral and cerebellar), grey matter (cortex, deep grey nuclei, hippocampus/amygdala,
#: cerebellar cortex)
STRUCTURES: dict[str, tuple[int, ...]] = {
    "brain_mask": (1, 2, 3, 4, 5, 6, 7, 8, 9),
    "white_matter": (3, 7),
    "grey_matter": (2, 4, 5, 6),
}
_SULCAL_CSF = 9


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
    if config.source.kind == "people":
        return _people_sources(config)
    n_test = config.n_targets + (config.pool_size if config.pool_split == "test" else 0)
    test = make_source(config.source, config.target_split, n_test)
    if config.pool_split == "train":
        return test, make_source(config.source, "train", config.n_train_subjects), 0
    if len(test) <= config.n_targets:  # an imported dataset holds what it holds
        raise ValueError(
            f"the source has {len(test)} test subjects: {config.n_targets} targets leave none "
            "for the context pool; lower n_targets or set pool_split 'train'"
        )
    return test, test, config.n_targets


def _people_sources(config: EvalConfig) -> tuple[SliceSource, SliceSource, int]:
    """Targets from the test people; context pairs from the training and validation people,
    never the target's person, one person per pair for the first 15 pairs."""
    voxel_size_mm, axis = config.source.voxel_size_mm, config.source.axis
    test = make_source(config.source, "test", config.n_targets)
    pool_people = PeopleConfig(
        voxel_size_mm=voxel_size_mm,
        people={"train": PEOPLE_SPLITS["train"] + PEOPLE_SPLITS["val"], "val": (), "test": ()},
    )
    pool = PeopleSliceSource("train", config.pool_size, pool_people, axis=axis)
    return test, pool, 0


def make_sampler(config: EvalConfig, task: str, source: SliceSource) -> EpisodeSampler:
    """The episode sampler's evaluation config restricted to ``task`` (hold-outs: only them)."""
    holdout = HoldOut(**config.holdout)
    base = SamplerConfig(task_weights={task: 1.0}, holdout=holdout, seed=config.seed)
    return EpisodeSampler(source, base.evaluation(holdout=bool(holdout), seed=config.seed))


def pair_spatial(config: EvalConfig) -> SpatialConfig:
    """The per-pair spatial transforms of ``config.episodes``: training's (the default
    :class:`SamplerConfig`'s, which ``neuralizer.train`` uses) or none."""
    training = SamplerConfig().spatial
    if config.episodes == "training":
        return training
    return dataclasses.replace(training, enabled=False)


class TissueLabels:
    """A source whose subjects also carry the :data:`TISSUE_PROTOCOL` label map (added before
    any spatial transform, so it moves with the subject like every other label map)."""

    def __init__(self, source: SliceSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def get(self, index: int, position: float) -> SliceSubject:
        subject = self.source.get(index, position)
        tissue = np.where(subject.tissue > 0, subject.tissue, _SULCAL_CSF)
        labels = np.where(subject.brain_mask, tissue, 0).astype(np.int32)
        return dataclasses.replace(subject, labels={**subject.labels, TISSUE_PROTOCOL: labels})


def modality(params) -> str:
    """Input modality of a pair: the profile name ("t1-real" for a real image; "a->b")."""
    if hasattr(params, "profile_in"):
        return f"{params.profile_in.name}->{params.profile_out.name}"
    name = params.profile.name if hasattr(params, "profile") else "phantom"
    return f"{name}-real" if getattr(params, "real_image", "") else name


def _largest_labels(source: SliceSource, subject: int, position: float, protocol: str, k: int):
    all_labels = source.get(subject, position).labels
    if protocol not in all_labels:
        raise ValueError(
            f"class_protocol {protocol!r} is not in the data; it has {sorted(all_labels)}"
        )
    labels = np.asarray(all_labels[protocol])
    values, counts = np.unique(labels[labels != 0], return_counts=True)
    return [int(v) for v in values[np.argsort(-counts, kind="stable")][:k]]


def _variants(config: EvalConfig, task: str, sampler: EpisodeSampler, anchor):
    """(task params, label name or "") of each instance made from one drawn ``anchor``."""
    p = anchor.target.task_params
    if task != "segmentation" or not (config.per_class or config.structures):
        return [(p, _label_name(sampler, p))]
    out = []
    if config.per_class:
        protocol = config.class_protocol or p.protocol
        top = _largest_labels(
            sampler.source, anchor.target.subject_index, anchor.position, protocol,
            config.per_class,
        )  # fmt: skip
        variants = [dataclasses.replace(p, protocol=protocol, labels=(v,)) for v in top]
        out += [(v, _label_name(sampler, v)) for v in variants]
    for name in config.structures:
        out.append(
            (dataclasses.replace(p, protocol=TISSUE_PROTOCOL, labels=STRUCTURES[name]), name)
        )
    return out


def build_instances(config: EvalConfig, task: str, index: int) -> list[Instance]:
    """Instance ``index`` of ``task`` (segmentation with ``per_class`` or ``structures``: one
    per label and structure, numbered ``index * (per_class + len(structures)) + k``)."""
    target_source, pool_source, first_pool = make_sources(config)
    sampler = make_sampler(config, task, target_source)
    task_obj = sampler.tasks[task]
    rng = np.random.default_rng([config.seed, TASK_NAMES.index(task), index])
    anchor = sampler.sample_record(rng, 1)
    variants = _variants(config, task, sampler, anchor)
    if config.structures and task == "segmentation":
        target_source, pool_source = TissueLabels(target_source), TissueLabels(pool_source)
    spatial = pair_spatial(config)
    shape = sampler.space.image_shape
    stride = config.per_class + len(config.structures) if task == "segmentation" else 0
    n_pool_subjects = len(pool_source) - first_pool
    out = []
    for k, (params, label) in enumerate(variants):
        pair_rng = np.random.default_rng([config.seed, 7, index, k])
        make = (task_obj, params, pair_rng, anchor.position, spatial, shape)
        targets, t_in, t_out = _pairs(*make, range(config.n_targets), target_source)
        pool_subjects = [first_pool + i % n_pool_subjects for i in range(config.pool_size)]
        _, p_in, p_out = _pairs(*make, pool_subjects, pool_source)
        out.append(
            Instance(
                task=task,
                index=index * stride + k if stride else index,
                segmentation_like=task_obj.segmentation_like,
                protocol=getattr(params, "protocol", ""),
                label=label,
                target_in=t_in,
                target_out=t_out,
                pool_in=p_in,
                pool_out=p_out,
                modalities=tuple(modality(r.task_params) for r in targets),
            )  # fmt: skip
        )
    return out


def _pairs(task, params, rng, position, spatial, shape, subjects, source):
    """(pair records, N×3×H×W inputs, N×1×H×W outputs) of ``params``' episode on ``subjects``,
    each pair with its own transform drawn from ``spatial`` (disabled: the identity, and ``rng``
    is not used for it)."""
    records = [
        PairRecord(int(s), task.sample_pair(params, rng), sample_spatial(shape, spatial, rng))
        for s in subjects
    ]
    made = [make_pair(task, source, position, r) for r in records]
    return records, np.stack([m.input for m in made]), np.stack([m.output for m in made])


def _label_name(sampler: EpisodeSampler, params) -> str:
    if not hasattr(params, "labels"):
        return ""
    names = sampler.space.label_names.get(params.protocol, {})
    return "+".join(str(names.get(v, v)) for v in params.labels)
