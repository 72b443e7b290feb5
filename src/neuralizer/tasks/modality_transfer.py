"""Modality transfer: the same subject rendered under contrast A (input) and B (output).

Both profiles are drawn once per episode; the two renders of a pair use independent render seeds
(different scans of one subject). The output is a clean render (no noise, no bias).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralizer.data.render import sample_profile
from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import (
    TaskSpace,
    encode_input,
    encode_output,
    new_seed,
    render_clean,
    source_image,
    with_new_seed,
)


@dataclass(frozen=True)
class ModalityTransferParams:
    profile_in: ContrastProfile
    profile_out: ContrastProfile
    seed: int
    real_image: str = ""  # a real image as input (profile_in "t1" only, see TaskSpace)


class ModalityTransfer:
    name = "modality_transfer"
    segmentation_like = False
    n_input_channels = 1
    mask_channel = None

    def __init__(self, space: TaskSpace):
        self.space = space

    def sample(self, rng: np.random.Generator) -> ModalityTransferParams:
        names = list(self.space.profiles)
        if len(names) < 2:
            raise ValueError("modality transfer needs at least two contrast profiles")
        if self.space.focus_profiles:
            first = str(rng.choice(self.space.focus_profiles))
            pair = [first, str(rng.choice([n for n in names if n != first]))]
            if rng.uniform() < 0.5:
                pair.reverse()
        else:
            pair = [str(n) for n in rng.choice(names, size=2, replace=False)]
        real_image = self.space.real_image_for(pair[0], rng)
        return ModalityTransferParams(
            profile_in=sample_profile(pair[0], rng),
            profile_out=sample_profile(pair[1], rng),
            seed=new_seed(rng),
            real_image=real_image,
        )

    sample_pair = staticmethod(with_new_seed)

    def apply(self, subject: SliceSubject, params: ModalityTransferParams):
        """Returns (3×H×W image under ``profile_in``, 1×H×W clean image under ``profile_out``)."""
        seeds = np.random.default_rng(params.seed).integers(2**31, size=2)
        image_in = source_image(subject, params.profile_in, int(seeds[0]), params.real_image)
        image_out = render_clean(subject, params.profile_out, int(seeds[1]))
        return encode_input(image_in), encode_output(image_out)
