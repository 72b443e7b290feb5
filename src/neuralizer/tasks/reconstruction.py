"""Undersampled reconstruction: zero-filled Cartesian undersampling -> the clean image.

Definition (exact): with ``K = kspace(clean)`` and ``M`` the line mask of ``params.lines`` along
``params.axis`` (the fully sampled centre included), the undersampled k-space is ``K * M``
(:func:`undersampled_kspace`) and the model input is its zero-filled magnitude
``|image_from_kspace(K * M)|`` (not clipped). The number of sampled lines is
``round(n / acceleration)``, at least the centre.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import TaskSpace, encode_input, encode_output, new_seed, source_image
from neuralizer.tasks.kspace import centre_lines, image_from_kspace, kspace, line_mask


@dataclass(frozen=True)
class ReconstructionParams:
    profile: ContrastProfile
    axis: int
    acceleration: float
    centre_fraction: float
    lines: tuple[int, ...]  # sampled lines (unshifted indices), centre included
    seed: int
    real_image: str = ""  # a real image of the subject instead of a render (see TaskSpace)


def sample_lines(
    n: int, acceleration: float, centre_fraction: float, rng: np.random.Generator
) -> tuple[int, ...]:
    """Random line set: the ``centre_fraction`` central lines plus uniformly chosen others."""
    centre = centre_lines(n, max(2, int(round(n * centre_fraction))))
    total = max(len(centre), int(round(n / acceleration)))
    others = np.setdiff1d(np.arange(n), centre)
    extra = rng.choice(others, size=total - len(centre), replace=False)
    return tuple(int(v) for v in np.sort(np.concatenate([centre, extra])))


def undersampled_kspace(image: np.ndarray, axis: int, lines) -> np.ndarray:
    """H×W image -> its k-space with every line not in ``lines`` set to zero (complex H×W)."""
    return kspace(image) * line_mask(image.shape, axis, lines)


class UndersampledReconstruction:
    name = "reconstruction"
    segmentation_like = False
    n_input_channels = 1
    mask_channel = None

    def __init__(self, space: TaskSpace):
        self.space = space

    def sample(self, rng: np.random.Generator) -> ReconstructionParams:
        profile, real_image = self.space.input_source(rng)
        acceleration = float(rng.uniform(2.0, 8.0))
        centre_fraction = float(rng.uniform(0.04, 0.12))
        axis = int(rng.integers(2))
        n = self.space.image_shape[axis]
        return ReconstructionParams(
            profile=profile,
            real_image=real_image,
            axis=axis,
            acceleration=acceleration,
            centre_fraction=centre_fraction,
            lines=sample_lines(n, acceleration, centre_fraction, rng),
            seed=new_seed(rng),
        )

    def sample_pair(self, params: ReconstructionParams, rng: np.random.Generator):
        n = self.space.image_shape[params.axis]
        lines = sample_lines(n, params.acceleration, params.centre_fraction, rng)
        return dataclasses.replace(params, lines=lines, seed=new_seed(rng))

    def apply(self, subject: SliceSubject, params: ReconstructionParams):
        """Returns (3×H×W zero-filled magnitude, 1×H×W clean image)."""
        clean = source_image(subject, params.profile, params.seed, params.real_image, clean=True)
        k = undersampled_kspace(clean, params.axis, params.lines)
        zero_filled = np.abs(image_from_kspace(k))
        return encode_input(zero_filled), encode_output(clean)
