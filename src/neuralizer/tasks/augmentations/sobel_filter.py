"""SobelFilter: replace an image by its Sobel edge magnitude, rescaled to [0, 1] (SPEC §3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.tasks.augmentations.base import (
    Pair,
    image_channels,
    map_images,
    sample_image_target,
)
from neuralizer.tasks.base import Task


@dataclass(frozen=True)
class SobelFilterParams:
    target: str
    channels: tuple[int, ...]
    mask_channel: int | None


def sobel_magnitude(image: np.ndarray) -> np.ndarray:
    """H×W -> H×W ``hypot(sobel_y, sobel_x)`` divided by its maximum (all zero if flat)."""
    x = np.asarray(image, np.float64)
    mag = np.hypot(ndimage.sobel(x, 0, mode="nearest"), ndimage.sobel(x, 1, mode="nearest"))
    peak = mag.max()
    return (mag / peak if peak > 0 else mag).astype(np.float32)


class SobelFilter:
    name = "sobel_filter"

    def applies_to(self, task: Task) -> bool:
        return True

    def sample(self, task: Task, rng: np.random.Generator) -> SobelFilterParams:
        return SobelFilterParams(
            target=sample_image_target(task, rng),
            channels=image_channels(task),
            mask_channel=task.mask_channel,
        )

    def apply(self, pair: Pair, params: SobelFilterParams) -> Pair:
        return map_images(
            pair, sobel_magnitude, params.target, params.channels, params.mask_channel
        )
