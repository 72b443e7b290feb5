"""The episode sampler: task weights, L ~ U{min..max} per batch, B episodes per batch, hold-outs.

Every batch is a pure function of ``(config.seed, batch index)``: the same seed gives the same
batches whatever the number of DataLoader workers, and each episode carries its record for replay.

Context pairs come from other subjects than the target (distinct while the split has enough
subjects, then drawn with replacement), at the same relative slice position, with the task's
episode-level choices kept (``Task.sample_pair``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch.utils.data

from neuralizer.data.render import PROFILE_NAMES
from neuralizer.data.subject import SliceSource
from neuralizer.jsonconfig import build
from neuralizer.tasks.augmentations import AUGMENTATION_NAMES, sample_task_augmentations
from neuralizer.tasks.base import Task, TaskSpace
from neuralizer.tasks.episode import (
    Batch,
    Episode,
    EpisodeRecord,
    PairRecord,
    build_episode,
    collate,
    make_pair,
)
from neuralizer.tasks.registry import TASK_NAMES, make_task
from neuralizer.tasks.spatial import SpatialConfig, sample_spatial

#: Relative task sampling weights. The paper under-samples quickly learned tasks (its supplement I,
#: not available here); ours: segmentation, the most varied task (every label of every protocol),
#: is drawn most; skull stripping (one fixed mask) least.
DEFAULT_TASK_WEIGHTS: dict[str, float] = {
    "segmentation": 3.0,
    "modality_transfer": 1.5,
    "super_resolution": 1.0,
    "skull_stripping": 0.5,
    "motion": 1.0,
    "reconstruction": 1.0,
    "denoising": 1.0,
    "inpainting": 1.0,
}
#: Probability that each (applicable) task augmentation is drawn for an episode.
DEFAULT_AUGMENTATION_PROBABILITY = 0.15


@dataclass(frozen=True)
class HoldOut:
    """What a Neuralizer-unseen model never trains on (paper §4.2, §4.7).

    ``tasks``: task names; ``modalities``: contrast profile names; ``protocols``: segmentation
    protocols.
    """

    tasks: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tasks or self.modalities or self.protocols)


@dataclass(frozen=True)
class SamplerConfig:
    """Episode sampler settings (saved with a training run).

    ``evaluate_holdout``: instead of training episodes *without* the held-out items, draw
    evaluation episodes made *only of* them (held-out tasks; episodes whose input, or one side of
    a modality transfer, is a held-out modality; segmentation of held-out protocols).
    """

    batch_size: int = 8
    min_context: int = 1
    max_context: int = 32
    task_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TASK_WEIGHTS))
    augmentation_probabilities: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(AUGMENTATION_NAMES, DEFAULT_AUGMENTATION_PROBABILITY)
    )
    spatial: SpatialConfig = SpatialConfig()
    holdout: HoldOut = HoldOut()
    evaluate_holdout: bool = False
    position_range: tuple[float, float] = (0.1, 0.9)
    seed: int = 0
    # A segmentation-like target whose mask covers less than min_mask_fraction of the slice is
    # redrawn (label, subject, position) up to max_retries times: atlases have 50–200 labels and
    # most are absent or tiny at any one slice.
    min_mask_fraction: float = 0.002
    max_retries: int = 20
    # Relative weight of each part of a mixed source (neuralizer.data.mixed), e.g.
    # {"mni152": 0.5, "people": 0.5}: the kind of subject an episode is drawn from. Parts not
    # named weigh 1; a single source ignores it.
    source_weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.min_context <= self.max_context:
            raise ValueError(
                "need 1 <= min_context <= max_context, got "
                f"min_context={self.min_context}, max_context={self.max_context}"
            )
        if self.batch_size < 1 or self.seed < 0 or self.max_retries < 1:
            raise ValueError(
                f"need batch_size >= 1, seed >= 0 and max_retries >= 1, got {self.batch_size}, "
                f"{self.seed} and {self.max_retries}"
            )
        probabilities = list(self.task_weights.values())
        probabilities += list(self.augmentation_probabilities.values())
        if any(not (p >= 0) for p in probabilities):
            raise ValueError("task weights and augmentation probabilities must be >= 0")
        unknown = set(self.task_weights) - set(TASK_NAMES)
        unknown |= set(self.holdout.tasks) - set(TASK_NAMES)
        if unknown:
            raise ValueError(f"unknown task names {sorted(unknown)}; choose from {TASK_NAMES}")
        unknown_aug = set(self.augmentation_probabilities) - set(AUGMENTATION_NAMES)
        if unknown_aug:
            raise ValueError(
                f"unknown task augmentations {sorted(unknown_aug)}; use {AUGMENTATION_NAMES}"
            )
        if any(not (w >= 0) for w in self.source_weights.values()):
            raise ValueError(f"source_weights must be >= 0, got {dict(self.source_weights)}")
        bad = set(self.holdout.modalities) - set(PROFILE_NAMES)
        if bad:
            raise ValueError(f"unknown modalities {sorted(bad)}; choose from {PROFILE_NAMES}")

    def to_dict(self) -> dict:
        """JSON-able dict (saved with a checkpoint); inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> SamplerConfig:
        """Rebuild a config from :meth:`to_dict` output (also after a JSON round trip); fields
        not given keep their defaults, and every value's type is checked."""
        return build(cls, dict(data))

    def evaluation(self, *, holdout: bool = False, seed: int | None = None) -> SamplerConfig:
        """The matching evaluation config: no augmentation; only held-out items if ``holdout``."""
        return dataclasses.replace(
            self,
            augmentation_probabilities={},
            spatial=dataclasses.replace(self.spatial, enabled=False),
            evaluate_holdout=holdout,
            seed=self.seed + 1 if seed is None else seed,
        )


def source_protocols(source: SliceSource) -> tuple[dict, dict]:
    """(protocol -> label values, protocol -> names) as seen on subject 0 at mid position."""
    probe = source.get(0, 0.5)
    protocols, names = {}, {}
    for protocol, labels in probe.labels.items():
        known = probe.label_names.get(protocol) or {}
        values = sorted(known) if known else sorted(int(v) for v in np.unique(labels) if v != 0)
        protocols[protocol] = tuple(int(v) for v in values if v != 0)
        names[protocol] = dict(known)
    return protocols, names


def task_space_and_weights(
    config: SamplerConfig, source: SliceSource
) -> tuple[TaskSpace, dict[str, float]]:
    """Apply the hold-out (training: without; ``evaluate_holdout``: only) to tasks and space."""
    h = config.holdout
    protocols, names = source_protocols(source)
    weights = {k: float(v) for k, v in config.task_weights.items() if v > 0}
    if not config.evaluate_holdout:
        weights = {k: v for k, v in weights.items() if k not in h.tasks}
        profiles = tuple(p for p in PROFILE_NAMES if p not in h.modalities)
        protocols = {k: v for k, v in protocols.items() if k not in h.protocols}
        focus: tuple[str, ...] = ()
    else:
        if not h:
            raise ValueError("evaluate_holdout needs a hold-out (tasks, modalities or protocols)")
        if h.tasks:
            weights = {k: weights.get(k, 1.0) for k in h.tasks}
        if h.protocols:
            weights = {k: v for k, v in weights.items() if k == "segmentation"}
            protocols = {k: v for k, v in protocols.items() if k in h.protocols}
        profiles, focus = PROFILE_NAMES, tuple(h.modalities)
    if not protocols or not any(protocols.values()):
        weights.pop("segmentation", None)
    if not weights:
        raise ValueError(f"no task left to sample after the hold-out {h}")
    probe = source.get(0, 0.5)
    space = TaskSpace(
        profiles=profiles,
        focus_profiles=focus,
        protocols=protocols,
        label_names=names,
        image_shape=probe.shape,
        real_t1=tuple(sorted(n for n in probe.images if n.startswith("t1"))),
        real_heads=tuple(
            sorted((n, f"{n}_brain") for n in probe.images if f"{n}_brain" in probe.masks)
        ),
    )
    return space, weights


@dataclass(frozen=True)
class Domain:
    """One kind of subject an episode may come from: a source's subjects ``offset`` to
    ``offset + size - 1``, with its own task space (protocols differ between kinds)."""

    name: str
    offset: int
    size: int
    space: TaskSpace
    tasks: Mapping[str, Task]
    task_probabilities: Mapping[str, float]
    excluded: Mapping[str, frozenset[int]]

    def candidates(self, task: str) -> np.ndarray:
        """Subject indices a ``task`` episode may draw from (global, sorted)."""
        indices = np.arange(self.offset, self.offset + self.size)
        drop = self.excluded.get(task)
        return np.setdiff1d(indices, sorted(drop)) if drop else indices


def _domain(name: str, offset: int, source: SliceSource, config: SamplerConfig) -> Domain:
    space, weights = task_space_and_weights(config, source)
    own = getattr(source, "excluded", None)
    excluded = {t: frozenset(offset + i for i in own(t)) for t in weights} if own else {}
    # A task whose exclusions leave fewer than 2 subjects cannot make an episode here.
    weights = {t: v for t, v in weights.items() if len(source) - len(excluded.get(t, ())) >= 2}
    if not weights:
        raise ValueError(f"no task of part {name!r} has 2 subjects to draw from")
    w = np.array(list(weights.values()))
    return Domain(
        name=name,
        offset=offset,
        size=len(source),
        space=space,
        tasks={t: make_task(t, space) for t in weights},
        task_probabilities=dict(zip(weights, w / w.sum(), strict=True)),
        excluded=excluded,
    )


def make_domains(source: SliceSource, config: SamplerConfig) -> list[Domain]:
    """One domain per part of a mixed source (parts left without a task after the hold-out
    are dropped), or one for a plain source."""
    parts = getattr(source, "parts", None)
    if parts is None:
        return [_domain("source", 0, source, config)]
    domains, errors = [], []
    for name, part in parts.items():
        if config.source_weights.get(name, 1.0) <= 0:
            continue
        try:
            domains.append(_domain(name, source.offsets[name], part, config))
        except ValueError as error:  # e.g. a held-out protocol only one kind of subject has
            errors.append(f"{name}: {error}")
    if not domains:
        raise ValueError("no part of the mixed source can be sampled: " + "; ".join(errors))
    return domains


class EpisodeSampler:
    """Draws batches of episodes from a :class:`SliceSource` (see the module doc).

    ``sampler.batch(i)`` -> :class:`Batch` (B×…, one L for the whole batch);
    ``sampler.episode(rng, n_context)`` -> one :class:`Episode`. A mixed source
    (:class:`~neuralizer.data.mixed.MixedSliceSource`) gives one :class:`Domain` per part:
    each episode first draws its part (``config.source_weights``), then its task and subjects.
    """

    def __init__(self, source: SliceSource, config: SamplerConfig | None = None):
        self.source = source
        self.config = config or SamplerConfig()
        if len(source) < 2:
            raise ValueError("the episode sampler needs a split with at least 2 subjects")
        self.domains = make_domains(source, self.config)
        for domain in self.domains:
            if domain.size < 2:
                raise ValueError(f"part {domain.name!r} needs at least 2 subjects")
        w = np.array([self.config.source_weights.get(d.name, 1.0) for d in self.domains])
        self.domain_probabilities = w / w.sum()
        first = self.domains[0]
        self.space, self.tasks = first.space, dict(first.tasks)
        self.task_probabilities = dict(first.task_probabilities)

    def _draw_domain(self, rng: np.random.Generator) -> Domain:
        if len(self.domains) == 1:  # no draw: a plain source keeps its random stream
            return self.domains[0]
        return self.domains[int(rng.choice(len(self.domains), p=self.domain_probabilities))]

    def batch(self, index: int) -> Batch:
        """Batch ``index``: a pure function of ``(config.seed, index)``."""
        rng = np.random.default_rng([self.config.seed, index])
        cfg = self.config
        n_context = int(rng.integers(cfg.min_context, cfg.max_context + 1))
        return collate([self.episode(rng, n_context) for _ in range(cfg.batch_size)])

    def sample_record(self, rng: np.random.Generator, n_context: int) -> EpisodeRecord:
        """Draw every random choice of one episode (no image of the context is made)."""
        cfg = self.config
        domain = self._draw_domain(rng)
        names = list(domain.task_probabilities)
        name = str(rng.choice(names, p=list(domain.task_probabilities.values())))
        task = domain.tasks[name]
        candidates = domain.candidates(name)
        n = len(candidates)
        for _ in range(cfg.max_retries):
            position = float(rng.uniform(*cfg.position_range))
            target = PairRecord(
                subject_index=int(candidates[rng.integers(n)]),
                task_params=task.sample(rng),
                spatial=sample_spatial(self.space.image_shape, cfg.spatial, rng),
            )
            if not task.segmentation_like:
                break
            mask = make_pair(task, self.source, position, target).output
            if mask.mean() >= cfg.min_mask_fraction and mask.max() > 0:
                break
        others = np.setdiff1d(candidates, [target.subject_index])
        indices = rng.choice(others, size=n_context, replace=n_context > len(others))
        context = tuple(
            PairRecord(
                subject_index=int(i),
                task_params=task.sample_pair(target.task_params, rng),
                spatial=sample_spatial(self.space.image_shape, cfg.spatial, rng),
            )
            for i in indices
        )
        augmentations = sample_task_augmentations(task, cfg.augmentation_probabilities, rng)
        return EpisodeRecord(name, position, target, context, augmentations)

    def episode(self, rng: np.random.Generator, n_context: int) -> Episode:
        record = self.sample_record(rng, n_context)
        index = record.target.subject_index
        domain = next(d for d in self.domains if d.offset <= index < d.offset + d.size)
        return build_episode(record, self.source, domain.tasks[record.task])


def replay(record: EpisodeRecord, source: SliceSource) -> Episode:
    """Rebuild an episode exactly from its record (and the same source)."""
    return build_episode(record, source)


class EpisodeDataset(torch.utils.data.Dataset):
    """Batches ``first_batch .. first_batch + n_batches - 1`` of a sampler, as a map-style dataset.

    Each item is a whole :class:`Batch`; use ``DataLoader(dataset, batch_size=None,
    num_workers=k)``. Pass ``first_batch = epoch * n_batches`` for fresh batches every epoch.
    """

    def __init__(self, sampler: EpisodeSampler, n_batches: int, first_batch: int = 0):
        self.sampler = sampler
        self.n_batches = n_batches
        self.first_batch = first_batch

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, index: int) -> Batch:
        if not 0 <= index < self.n_batches:
            raise IndexError(index)
        return self.sampler.batch(self.first_batch + index)
