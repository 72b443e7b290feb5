"""MaskInvert: a mask output becomes ``1 - mask`` (SPEC §3). Segmentation-like tasks only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralizer.tasks.augmentations.base import Pair
from neuralizer.tasks.base import Task


@dataclass(frozen=True)
class MaskInvertParams:
    """No free parameters."""


class MaskInvert:
    name = "mask_invert"

    def applies_to(self, task: Task) -> bool:
        return task.segmentation_like

    def sample(self, task: Task, rng: np.random.Generator) -> MaskInvertParams:
        return MaskInvertParams()

    def apply(self, pair: Pair, params: MaskInvertParams) -> Pair:
        return pair.with_output(1.0 - pair.output)
