"""Skull stripping: a head image (with skull, scalp, fat) -> its brain mask (paper Table 1).

Like segmentation, the pairs of an episode may come from different modalities
(``mixed_modalities``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import TaskSpace, encode_input, encode_output, new_seed, render_image
from neuralizer.tasks.segmentation import P_MIXED_MODALITIES


@dataclass(frozen=True)
class SkullStrippingParams:
    profile: ContrastProfile
    mixed_modalities: bool
    seed: int


class SkullStripping:
    name = "skull_stripping"
    segmentation_like = True
    n_input_channels = 1
    mask_channel = None

    def __init__(self, space: TaskSpace):
        self.space = space

    def sample(self, rng: np.random.Generator) -> SkullStrippingParams:
        return SkullStrippingParams(
            profile=self.space.input_profile(rng),
            mixed_modalities=bool(rng.uniform() < P_MIXED_MODALITIES),
            seed=new_seed(rng),
        )

    def sample_pair(self, params: SkullStrippingParams, rng: np.random.Generator):
        profile = self.space.input_profile(rng) if params.mixed_modalities else params.profile
        return dataclasses.replace(params, profile=profile, seed=new_seed(rng))

    def apply(self, subject: SliceSubject, params: SkullStrippingParams):
        """Returns (3×H×W head image, 1×H×W brain mask)."""
        image = render_image(subject, params.profile, params.seed, head=True)
        return encode_input(image), encode_output(subject.brain_mask)
