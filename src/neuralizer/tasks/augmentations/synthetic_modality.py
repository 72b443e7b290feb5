"""SyntheticModality: replace the input image by a synthetic contrast of the subject's tissues.

A random intensity per tissue class (background 0), Gaussian blur, Gaussian noise, clipped to
[0, 1] (SPEC §3). Intensities, blur and noise level are drawn per episode; the noise realisation
per pair (from the pair's seed). Only for tasks whose input is a plain render of the subject:
segmentation, skull stripping (whole head) and modality transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.data.render import N_TISSUES
from neuralizer.data.subject import SliceSubject
from neuralizer.tasks.augmentations.base import Pair
from neuralizer.tasks.base import Task

APPLICABLE = ("segmentation", "skull_stripping", "modality_transfer")


@dataclass(frozen=True)
class SyntheticModalityParams:
    intensities: tuple[float, ...]  # one per tissue class, class 0 (background) = 0
    blur_sigma: float
    noise_std: float
    head: bool  # render the whole head (skull stripping) or only the brain


def synthetic_image(
    subject: SliceSubject, params: SyntheticModalityParams, rng: np.random.Generator
) -> np.ndarray:
    """H×W float32 in [0, 1]: the subject's tissue classes mapped through ``params``."""
    lut = np.asarray(params.intensities, np.float64)
    labels = np.clip(np.asarray(subject.tissue), 0, len(lut) - 1)
    if not params.head:
        labels = np.where(subject.brain_mask, labels, 0)
    image = lut[labels]
    if params.blur_sigma > 0:
        image = ndimage.gaussian_filter(image, params.blur_sigma, mode="nearest")
    if params.noise_std > 0:
        image = image + rng.normal(0.0, params.noise_std, image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


class SyntheticModality:
    name = "synthetic_modality"

    def applies_to(self, task: Task) -> bool:
        return task.name in APPLICABLE

    def sample(self, task: Task, rng: np.random.Generator) -> SyntheticModalityParams:
        values = rng.uniform(0.0, 1.0, N_TISSUES)
        values[0] = 0.0
        return SyntheticModalityParams(
            intensities=tuple(float(v) for v in values),
            blur_sigma=float(rng.uniform(0.0, 1.5)),
            noise_std=float(rng.uniform(0.0, 0.05)),
            head=task.name == "skull_stripping",
        )

    def apply(self, pair: Pair, params: SyntheticModalityParams) -> Pair:
        image = synthetic_image(pair.subject, params, np.random.default_rng([pair.seed, 3]))
        x = pair.input.copy()
        x[0] = image
        return pair.with_input(x)
