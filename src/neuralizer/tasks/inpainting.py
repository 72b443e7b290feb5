"""Inpainting: an image with regions removed, plus the mask of those regions -> the full image.

Encoding (SPEC §2, issue 5): input channel 0 is ``clean * (1 - mask)``, channel 1 is the 0/1
mask, channel 2 is zero; the output is the clean image. Masks are 1–3 random boxes, or random
smooth blobs (a thresholded smoothed noise field), drawn per pair; the kind is per episode.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import TaskSpace, encode_input, encode_output, new_seed, source_image

KINDS = ("boxes", "blobs")


@dataclass(frozen=True)
class InpaintingParams:
    profile: ContrastProfile
    kind: str
    boxes: tuple[tuple[int, int, int, int], ...]  # (y0, x0, h, w) when kind == "boxes"
    blob_fraction: float  # masked area fraction when kind == "blobs"
    seed: int  # render seed; blobs are drawn from it too
    real_image: str = ""  # a real image of the subject instead of a render (see TaskSpace)


def inpainting_mask(shape: tuple[int, int], params: InpaintingParams) -> np.ndarray:
    """H×W bool mask of the removed region (deterministic from ``params``)."""
    mask = np.zeros(shape, bool)
    if params.kind == "boxes":
        for y0, x0, h, w in params.boxes:
            mask[y0 : y0 + h, x0 : x0 + w] = True
        return mask
    rng = np.random.default_rng([params.seed, 2])
    field = ndimage.gaussian_filter(rng.normal(size=shape), min(shape) / 12, mode="wrap")
    return field >= np.quantile(field, 1.0 - params.blob_fraction)


class Inpainting:
    name = "inpainting"
    segmentation_like = False
    n_input_channels = 2
    mask_channel = 1

    def __init__(self, space: TaskSpace):
        self.space = space

    def _regions(self, params: InpaintingParams, rng: np.random.Generator) -> InpaintingParams:
        h, w = self.space.image_shape
        boxes = []
        for _ in range(int(rng.integers(1, 4)) if params.kind == "boxes" else 0):
            bh = int(rng.integers(max(1, h // 10), max(2, h * 3 // 10) + 1))
            bw = int(rng.integers(max(1, w // 10), max(2, w * 3 // 10) + 1))
            cy = int(rng.integers(int(0.2 * h), int(0.8 * h) + 1))
            cx = int(rng.integers(int(0.2 * w), int(0.8 * w) + 1))
            boxes.append((max(0, cy - bh // 2), max(0, cx - bw // 2), bh, bw))
        return dataclasses.replace(
            params,
            boxes=tuple(boxes),
            blob_fraction=float(rng.uniform(0.05, 0.2)) if params.kind == "blobs" else 0.0,
            seed=new_seed(rng),
        )

    def sample(self, rng: np.random.Generator) -> InpaintingParams:
        profile, real_image = self.space.input_source(rng)
        params = InpaintingParams(
            profile=profile,
            real_image=real_image,
            kind=str(rng.choice(KINDS)),
            boxes=(),
            blob_fraction=0.0,
            seed=0,
        )
        return self._regions(params, rng)

    def sample_pair(self, params: InpaintingParams, rng: np.random.Generator) -> InpaintingParams:
        return self._regions(params, rng)

    def apply(self, subject: SliceSubject, params: InpaintingParams):
        """Returns (3×H×W [masked image, mask, 0], 1×H×W clean image)."""
        clean = source_image(subject, params.profile, params.seed, params.real_image, clean=True)
        mask = inpainting_mask(clean.shape, params)
        return encode_input(clean * ~mask, mask), encode_output(clean)
