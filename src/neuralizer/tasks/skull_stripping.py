"""Skull stripping: a head image (with skull, scalp, fat) -> its brain mask (paper Table 1).

The head is a render of the subject's tissue classes with the extra-cerebral layers, or (for a
"t1" profile, see ``TaskSpace.real_heads``) the subject's real head image with its own brain mask.

Like segmentation, the pairs of an episode may come from different modalities
(``mixed_modalities``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import TaskSpace, encode_input, encode_output, new_seed, source_image
from neuralizer.tasks.segmentation import P_MIXED_MODALITIES


@dataclass(frozen=True)
class SkullStrippingParams:
    profile: ContrastProfile
    mixed_modalities: bool
    seed: int
    real_image: str = ""  # a real head image of the subject instead of a render (see TaskSpace)
    real_mask: str = ""  # the brain mask of that real head image


class SkullStripping:
    name = "skull_stripping"
    segmentation_like = True
    n_input_channels = 1
    mask_channel = None

    def __init__(self, space: TaskSpace):
        self.space = space

    def sample(self, rng: np.random.Generator) -> SkullStrippingParams:
        profile, real_image, real_mask = self.space.head_source(rng)
        return SkullStrippingParams(
            profile=profile,
            mixed_modalities=bool(rng.uniform() < P_MIXED_MODALITIES),
            seed=new_seed(rng),
            real_image=real_image,
            real_mask=real_mask,
        )

    def sample_pair(self, params: SkullStrippingParams, rng: np.random.Generator):
        if params.mixed_modalities:
            profile, image, mask = self.space.head_source(rng)
            params = dataclasses.replace(params, profile=profile, real_image=image, real_mask=mask)
        return dataclasses.replace(params, seed=new_seed(rng))

    def apply(self, subject: SliceSubject, params: SkullStrippingParams):
        """Returns (3×H×W head image, 1×H×W brain mask)."""
        image = source_image(subject, params.profile, params.seed, params.real_image, head=True)
        mask = subject.masks[params.real_mask] if params.real_mask else subject.brain_mask
        return encode_input(image), encode_output(mask)
