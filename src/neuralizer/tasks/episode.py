"""Episodes (one target pair plus L context pairs of one task) and batches of them.

Shapes: an :class:`Episode` holds numpy arrays ``target_in`` 3×H×W, ``target_out`` 1×H×W,
``context_in`` L×3×H×W, ``context_out`` L×1×H×W; a :class:`Batch` holds torch tensors with a
leading B. Every episode carries the :class:`EpisodeRecord` it was built from, so it can be
rebuilt exactly with :func:`build_episode` (replay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neuralizer.data.subject import SliceSource
from neuralizer.tasks.augmentations import AugmentationRecord, Pair, apply_task_augmentations
from neuralizer.tasks.base import Task, TaskSpace
from neuralizer.tasks.registry import make_task
from neuralizer.tasks.spatial import SpatialParams, transform_subject


@dataclass(frozen=True)
class PairRecord:
    """How one pair was made: which subject, the task's params, the pair's spatial transform."""

    subject_index: int
    task_params: Any
    spatial: SpatialParams


@dataclass(frozen=True)
class EpisodeRecord:
    """Everything random about one episode; with the source it rebuilds the episode exactly."""

    task: str
    position: float  # relative slice position shared by the target and all context pairs
    target: PairRecord
    context: tuple[PairRecord, ...]
    augmentations: tuple[AugmentationRecord, ...]


@dataclass(frozen=True)
class Episode:
    target_in: np.ndarray  # 3×H×W float32
    target_out: np.ndarray  # 1×H×W float32
    context_in: np.ndarray  # L×3×H×W float32
    context_out: np.ndarray  # L×1×H×W float32
    task: str
    segmentation_like: bool
    record: EpisodeRecord

    @property
    def n_context(self) -> int:
        return self.context_in.shape[0]


@dataclass(frozen=True)
class Batch:
    target_in: torch.Tensor  # B×3×H×W
    target_out: torch.Tensor  # B×1×H×W
    context_in: torch.Tensor  # B×L×3×H×W
    context_out: torch.Tensor  # B×L×1×H×W
    tasks: tuple[str, ...]
    segmentation_like: torch.Tensor  # B bool
    records: tuple[EpisodeRecord, ...]

    def to(self, device: torch.device | str) -> Batch:
        """The tensors moved to ``device`` (names and records unchanged)."""
        move = {k: getattr(self, k).to(device) for k in _TENSOR_FIELDS}
        return Batch(**move, tasks=self.tasks, records=self.records)


_TENSOR_FIELDS = ("target_in", "target_out", "context_in", "context_out", "segmentation_like")


def collate(episodes: list[Episode]) -> Batch:
    """Stack B episodes with the same L into a :class:`Batch`."""
    sizes = {e.n_context for e in episodes}
    if len(sizes) != 1:
        raise ValueError(f"episodes of one batch must share the context size L, got {sizes}")

    def stack(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(e, name) for e in episodes]))

    return Batch(
        target_in=stack("target_in"),
        target_out=stack("target_out"),
        context_in=stack("context_in"),
        context_out=stack("context_out"),
        tasks=tuple(e.task for e in episodes),
        segmentation_like=torch.tensor([e.segmentation_like for e in episodes]),
        records=tuple(e.record for e in episodes),
    )


def make_pair(task: Task, source: SliceSource, position: float, record: PairRecord) -> Pair:
    """One pair before task augmentations (input 3×H×W, output 1×H×W)."""
    subject = transform_subject(source.get(record.subject_index, position), record.spatial)
    x, y = task.apply(subject, record.task_params)
    return Pair(x, y, subject, seed=int(record.task_params.seed))


def build_episode(record: EpisodeRecord, source: SliceSource, task: Task | None = None) -> Episode:
    """Build (or replay) the episode described by ``record`` from ``source``."""
    if task is None:
        task = make_task(record.task, TaskSpace())  # apply() needs only the recorded params
    pairs = []
    for pr in (record.target, *record.context):
        pair = make_pair(task, source, record.position, pr)
        pairs.append(apply_task_augmentations(pair, record.augmentations))
    target, context = pairs[0], pairs[1:]
    return Episode(
        target_in=target.input,
        target_out=target.output,
        context_in=np.stack([p.input for p in context]),
        context_out=np.stack([p.output for p in context]),
        task=record.task,
        segmentation_like=task.segmentation_like,
        record=record,
    )
