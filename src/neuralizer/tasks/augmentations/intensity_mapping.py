"""IntensityMapping: a random smooth lookup curve applied to images (SPEC §3).

The curve passes through ``knots_y`` at ``linspace(0, 1, len(knots_y))`` and is interpolated by a
shape-preserving cubic (PCHIP): monotonic when the knots are, smooth and non-monotonic otherwise.
Images are clipped to [0, 1] before mapping; the curve's values lie in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from neuralizer.tasks.augmentations.base import (
    Pair,
    image_channels,
    map_images,
    sample_image_target,
)
from neuralizer.tasks.base import Task


@dataclass(frozen=True)
class IntensityMappingParams:
    knots_y: tuple[float, ...]
    monotonic: bool
    target: str
    channels: tuple[int, ...]
    mask_channel: int | None


def lookup(image: np.ndarray, knots_y) -> np.ndarray:
    """The curve through ``knots_y`` applied to ``image`` (clipped to [0, 1])."""
    knots_x = np.linspace(0.0, 1.0, len(knots_y))
    curve = PchipInterpolator(knots_x, np.asarray(knots_y, np.float64))
    return np.clip(curve(np.clip(image, 0.0, 1.0)), 0.0, 1.0).astype(np.float32)


class IntensityMapping:
    name = "intensity_mapping"

    def applies_to(self, task: Task) -> bool:
        return True

    def sample(self, task: Task, rng: np.random.Generator) -> IntensityMappingParams:
        n = int(rng.integers(4, 8))
        monotonic = bool(rng.uniform() < 0.5)
        if monotonic:
            steps = rng.uniform(0.0, 1.0, n - 1)
            knots = np.concatenate([[0.0], np.cumsum(steps) / steps.sum()])
            if rng.uniform() < 0.5:
                knots = knots[::-1]
        else:
            knots = rng.uniform(0.0, 1.0, n)
        return IntensityMappingParams(
            knots_y=tuple(float(v) for v in knots),
            monotonic=monotonic,
            target=sample_image_target(task, rng),
            channels=image_channels(task),
            mask_channel=task.mask_channel,
        )

    def apply(self, pair: Pair, params: IntensityMappingParams) -> Pair:
        fn = lambda im: lookup(im, params.knots_y)  # noqa: E731
        return map_images(pair, fn, params.target, params.channels, params.mask_channel)
