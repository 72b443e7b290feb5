"""MaskContour: a mask output becomes its one-pixel boundary (SPEC §3).

Boundary = mask pixels with at least one 4-neighbour outside the mask (outside the image counts as
outside), i.e. ``mask & ~erode(mask)`` with the 3×3 cross. Segmentation-like tasks only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.tasks.augmentations.base import Pair
from neuralizer.tasks.base import Task


@dataclass(frozen=True)
class MaskContourParams:
    """No free parameters."""


def contour(mask: np.ndarray) -> np.ndarray:
    """H×W bool: the inner one-pixel boundary of H×W ``mask`` (> 0.5)."""
    m = np.asarray(mask) > 0.5
    return m & ~ndimage.binary_erosion(m, ndimage.generate_binary_structure(2, 1), border_value=0)


class MaskContour:
    name = "mask_contour"

    def applies_to(self, task: Task) -> bool:
        return task.segmentation_like

    def sample(self, task: Task, rng: np.random.Generator) -> MaskContourParams:
        return MaskContourParams()

    def apply(self, pair: Pair, params: MaskContourParams) -> Pair:
        return pair.with_output(contour(pair.output[0])[None])
