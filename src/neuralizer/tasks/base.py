"""What every task family shares: the task protocol, the task space and encoding helpers.

A task family turns one :class:`~neuralizer.data.SliceSubject` into one (input, output) pair:

- ``sample(rng) -> params``: every random choice of one pair, as a frozen dataclass.
- ``sample_pair(params, rng) -> params``: keep the episode-level choices of ``params`` (the label,
  the contrast profile, the acceleration, ...) and redraw only what differs between the pairs of
  one episode (noise realisation, motion, mask position, render seed).
- ``apply(subject, params) -> (input, output)``: deterministic; input is 3×H×W float32 with unused
  channels zero (SPEC §2), output is 1×H×W float32.

So an episode is ``p0 = sample(rng)`` for the target and ``sample_pair(p0, rng)`` for each context
pair, and it can be replayed from the recorded params alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from neuralizer.data.render import (
    PROFILE_NAMES,
    apply_render,
    sample_profile,
    sample_render_params,
)
from neuralizer.data.subject import ContrastProfile, SliceSubject

N_INPUT_CHANNELS = 3
#: probability that a "t1" input is a real image of the subject rather than a render
P_REAL = 0.3


@dataclass(frozen=True)
class TaskSpace:
    """What the tasks may draw from (after any hold-out).

    - ``profiles``: contrast profile names that may be rendered (see ``PROFILE_NAMES``).
    - ``focus_profiles``: if not empty, every episode involves one of these profiles (evaluation
      of a held-out modality): it is the input profile, or one side of a modality transfer.
    - ``protocols``: segmentation protocol -> label values that may be segmented.
    - ``label_names``: protocol -> {label value: name} (used to group left/right twins).
    - ``image_shape``: H, W of every slice (k-space line sets and inpainting masks depend on it).
    - ``real_t1``: names of real T1-weighted brain images in ``SliceSubject.images`` (SPEC §6:
      real images are used directly as well); with probability ``P_REAL`` a "t1" input is one of
      them instead of a render. ``real_heads``: (image, brain mask) name pairs of real head
      images (``images``, ``masks``) for skull stripping.
    """

    profiles: tuple[str, ...] = PROFILE_NAMES
    focus_profiles: tuple[str, ...] = ()
    protocols: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    label_names: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    image_shape: tuple[int, int] = (64, 64)
    real_t1: tuple[str, ...] = ()
    real_heads: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        unknown = [p for p in self.profiles if p not in PROFILE_NAMES]
        if unknown or not self.profiles:
            raise ValueError(f"profiles {self.profiles} must be some of {PROFILE_NAMES}")
        if not set(self.focus_profiles) <= set(self.profiles):
            raise ValueError(f"focus_profiles {self.focus_profiles} not all in {self.profiles}")

    def input_profile_name(self, rng: np.random.Generator) -> str:
        """A profile name for an input image (one of the focus profiles if set)."""
        return str(rng.choice(self.focus_profiles or self.profiles))

    def input_profile(self, rng: np.random.Generator) -> ContrastProfile:
        return sample_profile(self.input_profile_name(rng), rng)

    def real_image_for(self, profile_name: str, rng: np.random.Generator) -> str:
        """A real T1 image name for a "t1" input with probability ``P_REAL``, else ""."""
        if profile_name == "t1" and self.real_t1 and rng.uniform() < P_REAL:
            return str(rng.choice(self.real_t1))
        return ""

    def input_source(self, rng: np.random.Generator) -> tuple[ContrastProfile, str]:
        """(profile, real image name or "") of an input image: see ``real_t1``."""
        profile = self.input_profile(rng)
        return profile, self.real_image_for(profile.name, rng)

    def head_source(self, rng: np.random.Generator) -> tuple[ContrastProfile, str, str]:
        """(profile, real head image name or "", its brain mask name or "") for skull stripping."""
        profile = self.input_profile(rng)
        if profile.name == "t1" and self.real_heads and rng.uniform() < P_REAL:
            image, mask = self.real_heads[int(rng.integers(len(self.real_heads)))]
            return profile, image, mask
        return profile, "", ""


class Task(Protocol):
    """A task family (see the module docstring)."""

    name: str
    segmentation_like: bool
    #: input channels carrying data (the rest are zero padding)
    n_input_channels: int
    #: index of an input channel holding a mask rather than an image, if any
    mask_channel: int | None

    def sample(self, rng: np.random.Generator) -> Any: ...

    def sample_pair(self, params: Any, rng: np.random.Generator) -> Any: ...

    def apply(self, subject: SliceSubject, params: Any) -> tuple[np.ndarray, np.ndarray]: ...


def new_seed(rng: np.random.Generator) -> int:
    """A fresh 31-bit seed for a per-pair generator (recorded so that pairs replay exactly)."""
    return int(rng.integers(2**31))


def with_new_seed(params: Any, rng: np.random.Generator) -> Any:
    """``params`` with a redrawn ``seed`` field (the default ``sample_pair``)."""
    return dataclasses.replace(params, seed=new_seed(rng))


def render_image(
    subject: SliceSubject, profile: ContrastProfile, seed: int, *, head: bool = False
) -> np.ndarray:
    """A realistic render (texture, blur, resolution, bias, noise): H×W float32 in [0, 1]."""
    params = sample_render_params(np.random.default_rng(seed))
    return apply_render(subject, profile, params, head=head)


def render_clean(
    subject: SliceSubject, profile: ContrastProfile, seed: int, *, head: bool = False
) -> np.ndarray:
    """A clean render for image-restoration targets: no noise, no bias, full resolution."""
    params = sample_render_params(np.random.default_rng(seed))
    params = dataclasses.replace(
        params,
        noise_sd=0.0,
        resolution_mm=(0.0, 0.0),
        bias_coarse=np.zeros_like(params.bias_coarse),
    )
    return apply_render(subject, profile, params, head=head)


def source_image(
    subject: SliceSubject,
    profile: ContrastProfile,
    seed: int,
    real: str = "",
    *,
    clean: bool = False,
    head: bool = False,
) -> np.ndarray:
    """The H×W image a task starts from: the subject's real image ``real`` if given (clipped to
    [0, 1]), else a render under ``profile`` (``clean``: no noise, bias or low resolution)."""
    if real:
        if real not in subject.images:
            raise KeyError(
                f"subject {subject.subject_id} has no real image {real!r} "
                f"(it has {sorted(subject.images)})"
            )
        return np.clip(np.asarray(subject.images[real], np.float32), 0.0, 1.0)
    render = render_clean if clean else render_image
    return render(subject, profile, seed, head=head)


def encode_input(*channels: np.ndarray) -> np.ndarray:
    """Stack up to 3 H×W images into a 3×H×W float32 input, zero padding unused channels."""
    if not 1 <= len(channels) <= N_INPUT_CHANNELS:
        raise ValueError(f"an input has 1 to {N_INPUT_CHANNELS} channels, got {len(channels)}")
    h, w = channels[0].shape
    out = np.zeros((N_INPUT_CHANNELS, h, w), np.float32)
    for i, c in enumerate(channels):
        out[i] = c
    return out


def encode_output(image: np.ndarray) -> np.ndarray:
    """An H×W output as 1×H×W float32."""
    return np.asarray(image, np.float32)[None]
