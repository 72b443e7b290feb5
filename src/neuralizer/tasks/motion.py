"""Motion correction: rigid head motion between k-space segments -> the motion-free image.

Definition (exact): the phase-encode lines along ``params.axis`` are split into ``n_segments``
segments (:func:`segment_of_lines`: contiguous blocks in k-space order, or interleaved). Segment 0
is acquired from the clean image; segment ``s >= 1`` from ``rigid_transform(clean, angles[s-1],
shifts[s-1])``. :func:`motion_kspace` assembles that k-space; the model input is its magnitude
``|image_from_kspace(motion_kspace(...))|`` (not clipped).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import TaskSpace, encode_input, encode_output, new_seed, source_image
from neuralizer.tasks.kspace import image_from_kspace, kspace, shifted_position

ORDERINGS = ("sequential", "interleaved")


@dataclass(frozen=True)
class MotionParams:
    profile: ContrastProfile
    axis: int
    n_segments: int
    ordering: str
    max_angle_deg: float
    max_shift_px: float
    angles_deg: tuple[float, ...]  # one per moved segment (segments 1..n-1)
    shifts_px: tuple[tuple[float, float], ...]  # (dy, dx) per moved segment
    seed: int
    real_image: str = ""  # a real image of the subject instead of a render (see TaskSpace)


def segment_of_lines(n: int, n_segments: int, ordering: str) -> np.ndarray:
    """Segment index (0..n_segments-1) of each of ``n`` lines (unshifted line indices)."""
    pos = shifted_position(n)  # k-space order, most negative frequency first
    if ordering == "sequential":
        return pos * n_segments // n
    if ordering == "interleaved":
        return pos % n_segments
    raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")


def rigid_transform(image: np.ndarray, angle_deg: float, shift_px: tuple[float, float]):
    """Rotate H×W ``image`` by ``angle_deg`` about its centre, then shift by (dy, dx) pixels.

    Bilinear interpolation, zero outside the field of view. Returns H×W float64.
    """
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = (np.array(image.shape) - 1) / 2
    # output o comes from input i = R^-1 (o - centre - shift) + centre
    inv = rot.T
    offset = centre - inv @ (centre + np.asarray(shift_px, float))
    return ndimage.affine_transform(
        np.asarray(image, np.float64), inv, offset=offset, order=1, mode="constant", cval=0.0
    )


def motion_kspace(clean: np.ndarray, params: MotionParams) -> np.ndarray:
    """H×W complex k-space of the motion-corrupted acquisition of ``clean`` (see module doc)."""
    n = clean.shape[params.axis]
    segment = segment_of_lines(n, params.n_segments, params.ordering)
    out = kspace(clean)
    for s in range(1, params.n_segments):
        moved = kspace(rigid_transform(clean, params.angles_deg[s - 1], params.shifts_px[s - 1]))
        sel = np.flatnonzero(segment == s)
        idx = (sel, slice(None)) if params.axis == 0 else (slice(None), sel)
        out[idx] = moved[idx]
    return out


class MotionCorrection:
    name = "motion"
    segmentation_like = False
    n_input_channels = 1
    mask_channel = None

    def __init__(self, space: TaskSpace):
        self.space = space

    def _motion(self, params: MotionParams, rng: np.random.Generator) -> MotionParams:
        m = params.n_segments - 1
        angles = rng.uniform(-params.max_angle_deg, params.max_angle_deg, m)
        shifts = rng.uniform(-params.max_shift_px, params.max_shift_px, (m, 2))
        return dataclasses.replace(
            params,
            angles_deg=tuple(float(v) for v in angles),
            shifts_px=tuple((float(y), float(x)) for y, x in shifts),
            seed=new_seed(rng),
        )

    def sample(self, rng: np.random.Generator) -> MotionParams:
        profile, real_image = self.space.input_source(rng)
        scale = min(self.space.image_shape) / 64
        params = MotionParams(
            profile=profile,
            real_image=real_image,
            axis=int(rng.integers(2)),
            n_segments=int(rng.integers(2, 5)),
            ordering=str(rng.choice(ORDERINGS)),
            max_angle_deg=float(rng.uniform(2.0, 10.0)),
            max_shift_px=float(rng.uniform(1.0, 4.0) * scale),
            angles_deg=(),
            shifts_px=(),
            seed=0,
        )
        return self._motion(params, rng)

    def sample_pair(self, params: MotionParams, rng: np.random.Generator) -> MotionParams:
        return self._motion(params, rng)

    def apply(self, subject: SliceSubject, params: MotionParams):
        """Returns (3×H×W motion-corrupted magnitude image, 1×H×W clean image)."""
        clean = source_image(subject, params.profile, params.seed, params.real_image, clean=True)
        corrupted = np.abs(image_from_kspace(motion_kspace(clean, params)))
        return encode_input(corrupted), encode_output(clean)
