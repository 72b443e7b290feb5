"""MaskDilation: a mask output is dilated (radius > 0) or eroded (radius < 0) by a disk (SPEC §3).

Dilation radius 1–3, erosion radius 1. The disk of radius r holds the offsets (dy, dx) with
dy² + dx² <= r². Segmentation-like only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.tasks.augmentations.base import Pair
from neuralizer.tasks.base import Task

MAX_RADIUS = 3
#: erosion is gentler: thin parcels (cortex at 2 mm) vanish under a radius-2 erosion
MAX_EROSION_RADIUS = 1


@dataclass(frozen=True)
class MaskDilationParams:
    radius: int  # nonzero; negative erodes


def disk(radius: int) -> np.ndarray:
    """(2r+1)×(2r+1) bool disk structuring element."""
    r = abs(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return yy**2 + xx**2 <= r**2


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """H×W bool: ``mask`` (> 0.5) dilated by ``disk(radius)``, or eroded if ``radius < 0``."""
    m = np.asarray(mask) > 0.5
    if radius > 0:
        return ndimage.binary_dilation(m, disk(radius))
    if radius < 0:
        return ndimage.binary_erosion(m, disk(radius), border_value=0)
    return m


class MaskDilation:
    name = "mask_dilation"

    def applies_to(self, task: Task) -> bool:
        return task.segmentation_like

    def sample(self, task: Task, rng: np.random.Generator) -> MaskDilationParams:
        if rng.uniform() < 0.5:
            return MaskDilationParams(radius=int(rng.integers(1, MAX_RADIUS + 1)))
        return MaskDilationParams(radius=-int(rng.integers(1, MAX_EROSION_RADIUS + 1)))

    def apply(self, pair: Pair, params: MaskDilationParams) -> Pair:
        return pair.with_output(dilate(pair.output[0], params.radius)[None])
