"""The eight task augmentations of paper Table 2 (definitions in SPEC §3).

``TASK_AUGMENTATIONS`` lists them in the order they are applied: contrast changes first, then mask
changes, then channel changes (DuplicateChannels before PermuteChannels, so "unused" channels are
still the padded ones).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuralizer.tasks.augmentations.base import Pair, TaskAugmentation
from neuralizer.tasks.augmentations.duplicate_channels import DuplicateChannels
from neuralizer.tasks.augmentations.intensity_mapping import IntensityMapping
from neuralizer.tasks.augmentations.mask_contour import MaskContour
from neuralizer.tasks.augmentations.mask_dilation import MaskDilation
from neuralizer.tasks.augmentations.mask_invert import MaskInvert
from neuralizer.tasks.augmentations.permute_channels import PermuteChannels
from neuralizer.tasks.augmentations.sobel_filter import SobelFilter
from neuralizer.tasks.augmentations.synthetic_modality import SyntheticModality
from neuralizer.tasks.base import Task

TASK_AUGMENTATIONS: dict[str, TaskAugmentation] = {
    a.name: a
    for a in (
        SyntheticModality(),
        IntensityMapping(),
        SobelFilter(),
        MaskDilation(),
        MaskContour(),
        MaskInvert(),
        DuplicateChannels(),
        PermuteChannels(),
    )
}
AUGMENTATION_NAMES: tuple[str, ...] = tuple(TASK_AUGMENTATIONS)

#: a recorded augmentation: (name, params)
AugmentationRecord = tuple[str, Any]


def sample_task_augmentations(
    task: Task, probabilities: dict[str, float], rng: np.random.Generator
) -> tuple[AugmentationRecord, ...]:
    """Draw the task augmentations of one episode: each applicable one with its probability."""
    chosen = []
    for name, aug in TASK_AUGMENTATIONS.items():
        if aug.applies_to(task) and rng.uniform() < probabilities.get(name, 0.0):
            chosen.append((name, aug.sample(task, rng)))
    return tuple(chosen)


def apply_task_augmentations(pair: Pair, records: tuple[AugmentationRecord, ...]) -> Pair:
    """Apply recorded augmentations, in order, to one pair (the same for every pair)."""
    for name, params in records:
        pair = TASK_AUGMENTATIONS[name].apply(pair, params)
    return pair


__all__ = [
    "AUGMENTATION_NAMES",
    "TASK_AUGMENTATIONS",
    "AugmentationRecord",
    "Pair",
    "apply_task_augmentations",
    "sample_task_augmentations",
]
