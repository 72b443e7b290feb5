"""Binary segmentation: one label, or a group of labels, of a segmentation protocol (paper Table 1).

Input: an image rendered from the subject's tissue classes (never from the protocol being
segmented). Output: ``isin(subject.labels[protocol], labels)`` as 0/1. Episode-level: the protocol
and label group; the contrast profile is shared by all pairs unless ``mixed_modalities`` is set,
in which case each pair draws its own profile (context from other modalities, as in the paper).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import TaskSpace, encode_input, encode_output, new_seed, source_image
from neuralizer.tasks.spatial import side_free

#: probability that an episode segments a group of labels rather than a single one
P_GROUP = 0.25
#: probability that the context pairs come from other modalities than the target
P_MIXED_MODALITIES = 0.3


@dataclass(frozen=True)
class SegmentationParams:
    protocol: str
    labels: tuple[int, ...]
    profile: ContrastProfile
    mixed_modalities: bool
    seed: int
    real_image: str = ""  # a real image of the subject instead of a render (see TaskSpace)


class BinarySegmentation:
    name = "segmentation"
    segmentation_like = True
    n_input_channels = 1
    mask_channel = None

    def __init__(self, space: TaskSpace):
        self.space = space

    def _label_group(self, protocol: str, rng: np.random.Generator) -> tuple[int, ...]:
        labels = self.space.protocols[protocol]
        first = int(rng.choice(labels))
        if rng.uniform() >= P_GROUP or len(labels) < 2:
            return (first,)
        names = self.space.label_names.get(protocol, {})
        key = side_free(names.get(first, ""))
        twins = [v for v in labels if v != first and key and side_free(names.get(v, "")) == key]
        if twins:  # left and right of the same structure
            return tuple(sorted({first, *twins}))
        others = [v for v in labels if v != first]
        extra = rng.choice(others, size=min(len(others), int(rng.integers(1, 3))), replace=False)
        return tuple(sorted({first, *(int(v) for v in extra)}))

    def sample(self, rng: np.random.Generator) -> SegmentationParams:
        protocols = sorted(p for p, v in self.space.protocols.items() if v)
        if not protocols:
            raise ValueError("binary segmentation needs at least one protocol with labels")
        protocol = str(rng.choice(protocols))
        labels = self._label_group(protocol, rng)
        profile, real_image = self.space.input_source(rng)
        return SegmentationParams(
            protocol=protocol,
            labels=labels,
            profile=profile,
            mixed_modalities=bool(rng.uniform() < P_MIXED_MODALITIES),
            seed=new_seed(rng),
            real_image=real_image,
        )

    def sample_pair(self, params: SegmentationParams, rng: np.random.Generator):
        if params.mixed_modalities:
            profile, real_image = self.space.input_source(rng)
            params = dataclasses.replace(params, profile=profile, real_image=real_image)
        return dataclasses.replace(params, seed=new_seed(rng))

    def apply(self, subject: SliceSubject, params: SegmentationParams):
        """Returns (3×H×W rendered image, 1×H×W 0/1 mask of ``params.labels``)."""
        mask = np.isin(subject.labels[params.protocol], params.labels)
        image = source_image(subject, params.profile, params.seed, params.real_image)
        return encode_input(image), encode_output(mask)
