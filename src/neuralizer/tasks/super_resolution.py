"""Super-resolution: an image acquired at 2–4× coarser spacing along random axes -> the clean image.

``degrade_resolution`` defines the corruption exactly: along every axis in ``axes`` the image is
(optionally Gaussian-blurred, then) averaged over blocks of ``factor`` pixels — the acquisition of
a thicker voxel — and brought back to the original grid, by replicating each block value
("nearest") or by linear interpolation between block centres ("linear", edges held constant).
An axis whose length is not a multiple of ``factor`` is padded by edge replication first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import (
    TaskSpace,
    encode_input,
    encode_output,
    new_seed,
    source_image,
    with_new_seed,
)

INTERPOLATIONS = ("nearest", "linear")


@dataclass(frozen=True)
class SuperResolutionParams:
    profile: ContrastProfile
    factor: int
    axes: tuple[int, ...]
    blur_sigma: float
    interpolation: str
    seed: int
    real_image: str = ""  # a real image of the subject instead of a render (see TaskSpace)


def block_average(image: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Mean over consecutive blocks of ``factor`` pixels along ``axis`` (edge-padded)."""
    x = np.moveaxis(image, axis, 0)
    n = x.shape[0]
    pad = -n % factor
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)], axis=0)
    coarse = x.reshape(-1, factor, *x.shape[1:]).mean(axis=1)
    return np.moveaxis(coarse, 0, axis)


def upsample(coarse: np.ndarray, factor: int, axis: int, n: int, interpolation: str) -> np.ndarray:
    """Back to ``n`` pixels along ``axis``: replicate blocks, or interpolate between centres."""
    c = np.moveaxis(coarse, axis, 0)
    if interpolation == "nearest":
        fine = np.repeat(c, factor, axis=0)[:n]
    elif interpolation == "linear":
        # Block j covers fine pixels [j f, (j+1) f); its centre is at j f + (f - 1) / 2.
        pos = (np.arange(n) - (factor - 1) / 2) / factor
        pos = np.clip(pos, 0, c.shape[0] - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, c.shape[0] - 1)
        w = (pos - lo).reshape(-1, *([1] * (c.ndim - 1)))
        fine = (1 - w) * c[lo] + w * c[hi]
    else:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    return np.moveaxis(fine, 0, axis)


def degrade_resolution(
    image: np.ndarray, factor: int, axes: tuple[int, ...], blur_sigma: float, interpolation: str
) -> np.ndarray:
    """H×W image -> H×W image with ``factor``× coarser spacing along ``axes`` (see module doc)."""
    out = np.asarray(image, np.float64)
    if blur_sigma > 0:
        sigma = [blur_sigma if a in axes else 0.0 for a in range(out.ndim)]
        out = ndimage.gaussian_filter(out, sigma, mode="nearest")
    for axis in axes:
        n = out.shape[axis]
        out = upsample(block_average(out, factor, axis), factor, axis, n, interpolation)
    return out.astype(np.float32)


class SuperResolution:
    name = "super_resolution"
    segmentation_like = False
    n_input_channels = 1
    mask_channel = None

    def __init__(self, space: TaskSpace):
        self.space = space

    def sample(self, rng: np.random.Generator) -> SuperResolutionParams:
        profile, real_image = self.space.input_source(rng)
        axes = ((0,), (1,), (0, 1))[int(rng.integers(3))]
        return SuperResolutionParams(
            profile=profile,
            real_image=real_image,
            factor=int(rng.integers(2, 5)),
            axes=axes,
            blur_sigma=float(rng.uniform(0.0, 1.0)),
            interpolation=str(rng.choice(INTERPOLATIONS)),
            seed=new_seed(rng),
        )

    sample_pair = staticmethod(with_new_seed)

    def apply(self, subject: SliceSubject, params: SuperResolutionParams):
        """Returns (3×H×W low-resolution image, 1×H×W clean image)."""
        clean = source_image(subject, params.profile, params.seed, params.real_image, clean=True)
        low = degrade_resolution(
            clean, params.factor, params.axes, params.blur_sigma, params.interpolation
        )
        return encode_input(low), encode_output(clean)
