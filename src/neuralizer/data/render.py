"""Render an MR-like image from a tissue-level label map (the SynthSeg recipe, SPEC §6).

A :class:`~neuralizer.data.subject.ContrastProfile` fixes the mean intensity of every tissue class
(one "modality", shared by every pair of an episode); :func:`render` then adds what differs from
scan to scan: within-tissue texture, partial-volume blur, a random acquisition resolution, a smooth
multiplicative bias field, noise, percentile rescaling and gamma. Images are never rendered from the
parcellation being segmented, only from the coarse ``TISSUE_CLASSES``.

Sample/apply split: :func:`sample_render_params` draws every random choice of one render,
:func:`apply_render` is the deterministic twin, and :func:`render` is the two in sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.data.subject import ContrastProfile, SliceSubject

TISSUE_CLASSES: dict[int, str] = {
    0: "background",
    1: "ventricular CSF",
    2: "cortex (cerebral grey matter)",
    3: "cerebral white matter",
    4: "deep grey nuclei (thalamus, caudate, putamen, pallidum, accumbens)",
    5: "hippocampus and amygdala",
    6: "cerebellar cortex",
    7: "cerebellar white matter",
    8: "brainstem",
    9: "extra-cerebral CSF",
    10: "skull",
    11: "scalp",
    12: "fat",
}
#: Classes inside the brain mask (the rest of a head lies outside it).
BRAIN_CLASSES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
N_TISSUES = len(TISSUE_CLASSES)

PROFILE_NAMES: tuple[str, ...] = ("t1", "t2", "pd", "flair", "synthetic")

# Mean intensity per tissue class, in TISSUE_CLASSES order (bg, vCSF, GM, WM, deep, hippo, cbGM,
# cbWM, brainstem, eCSF, skull, scalp, fat). Rough relative values of 3T scans.
_PROFILE_TABLE: dict[str, tuple[float, ...]] = {
    "t1": (0.0, 0.15, 0.50, 0.85, 0.64, 0.52, 0.55, 0.80, 0.74, 0.12, 0.08, 0.55, 0.95),
    "t2": (0.0, 0.95, 0.58, 0.36, 0.45, 0.60, 0.56, 0.36, 0.42, 0.95, 0.05, 0.40, 0.62),
    "pd": (0.0, 0.82, 0.72, 0.56, 0.66, 0.72, 0.70, 0.56, 0.60, 0.82, 0.10, 0.62, 0.76),
    "flair": (0.0, 0.06, 0.62, 0.45, 0.56, 0.66, 0.60, 0.45, 0.50, 0.05, 0.05, 0.50, 0.72),
}
_PROFILE_JITTER_SD = 0.04

# Real anatomy (the twenty people of neuralizer.data.people) is rendered from *render classes*
# grouped the way SynthSeg's generation classes group the aseg labels: structures of similar real
# intensity share a tissue class, and each structure gets its own small jitter per episode, so
# some segmentation boundaries are weak in intensity, as in real scans. A structure's mean is a
# blend of two tissue classes of the profile: (structure, aseg labels, class a, class b, weight
# of b), e.g. thalamus halfway between deep grey and white matter, caudate near cortex. The
# blends put every named profile's structures in the order SynthSeg's T1 priors give.
_REAL_STRUCTURES: tuple[tuple[str, tuple[int, ...], int, int, float], ...] = (
    ("cerebral white matter", (2, 41, 85), 3, 3, 0.0),
    ("cerebral cortex", (3, 42), 2, 2, 0.0),
    ("lateral ventricles", (4, 43), 1, 1, 0.0),
    ("inferior lateral ventricles", (5, 44), 1, 1, 0.0),
    ("3rd, 4th and 5th ventricles", (14, 15, 72), 1, 1, 0.0),
    ("cerebellar white matter", (7, 46), 7, 7, 0.0),
    ("cerebellar cortex", (8, 47), 6, 6, 0.0),
    ("thalamus", (10, 49), 4, 3, 0.5),
    ("caudate", (11, 50), 2, 4, 0.25),
    ("putamen", (12, 51), 2, 4, 0.5),
    ("pallidum", (13, 52), 4, 3, 0.7),
    ("brainstem", (16,), 8, 8, 0.0),
    ("hippocampus", (17, 53), 5, 5, 0.0),
    ("amygdala", (18, 54), 5, 5, 0.0),
    ("CSF", (24,), 9, 9, 0.0),
    ("lesion", (25, 57), 2, 3, 0.5),
    ("accumbens", (26, 58), 2, 4, 0.25),
    ("ventral DC", (28, 60), 8, 3, 0.4),
    ("vessel", (30, 62), 2, 1, 0.3),
)
#: SynthSeg's T1 prior means (0-255, white matter 160) of the unnamed head-tissue labels (its
#: ``prior_means_t1.npy``, Apache-2.0): they give a T1-like order; other profiles draw them.
_HEAD_T1_PRIOR: dict[int, float] = {
    136: 60, 137: 60, 163: 60, 164: 60, 502: 126, 506: 18, 507: 94, 508: 117, 509: 70,
    511: 114, 512: 68, 514: 48, 515: 30, 516: 94, 530: 144,
}  # fmt: skip
_T1_WHITE_MATTER_PRIOR = 160.0
_STRUCTURE_JITTER_SD = 0.02
_HEAD_T1_JITTER_SD = 0.04
#: Render class ids: tissue classes first, then one per real structure, then one per head label.
REAL_STRUCTURE_CLASSES: dict[str, int] = {
    name: N_TISSUES + i for i, (name, *_) in enumerate(_REAL_STRUCTURES)
}
HEAD_TISSUE_CLASSES: dict[int, int] = {
    label: N_TISSUES + len(_REAL_STRUCTURES) + i for i, label in enumerate(_HEAD_T1_PRIOR)
}
N_RENDER_CLASSES = N_TISSUES + len(_REAL_STRUCTURES) + len(_HEAD_T1_PRIOR)


def real_class_map(labels: np.ndarray) -> np.ndarray:
    """Render classes (int16) of a FreeSurfer-labelled head (real anatomy); 0 = background."""
    lut = np.zeros(max(_HEAD_T1_PRIOR) + 1, np.int16)
    for name, aseg, *_ in _REAL_STRUCTURES:
        lut[list(aseg)] = REAL_STRUCTURE_CLASSES[name]
    for label, cls in HEAD_TISSUE_CLASSES.items():
        lut[label] = cls
    return lut[np.clip(labels, 0, lut.size - 1)]


def head_tissue_class(label: int) -> int:
    """The tissue class (skull 10, scalp 11, fat 12) of an unnamed head label, by its T1 prior:
    dark tissue reads as bone, bright as fat, the rest as scalp and muscle."""
    prior = _HEAD_T1_PRIOR[label]
    return 10 if prior < 50 else 12 if prior > 135 else 11


def _real_values(name: str, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Means of the real-anatomy render classes, given the tissue-class means ``base``."""
    structures = [(1 - w) * base[a] + w * base[b] for _, _, a, b, w in _REAL_STRUCTURES]
    structures = np.asarray(structures) + rng.normal(0.0, _STRUCTURE_JITTER_SD, len(structures))
    n_head = len(_HEAD_T1_PRIOR)
    if name == "t1":
        prior = np.asarray(list(_HEAD_T1_PRIOR.values())) / _T1_WHITE_MATTER_PRIOR
        head = prior * _PROFILE_TABLE["t1"][3] + rng.normal(0.0, _HEAD_T1_JITTER_SD, n_head)
    elif name == "synthetic":
        head = rng.uniform(0.0, 1.0, n_head)
    else:  # the profile's own non-brain range: its skull, scalp and fat means
        extra = _PROFILE_TABLE[name][10:13]
        head = rng.uniform(min(extra), max(extra), n_head)
    return np.concatenate([structures, head])


def t1_like_values() -> np.ndarray:
    """Mean intensity per render class of the T1 profile without jitter (registration)."""
    base = np.asarray(_PROFILE_TABLE["t1"])
    prior = np.asarray(list(_HEAD_T1_PRIOR.values())) / _T1_WHITE_MATTER_PRIOR
    structures = [(1 - w) * base[a] + w * base[b] for _, _, a, b, w in _REAL_STRUCTURES]
    return np.concatenate([base, structures, prior * base[3]])


def sample_profile(name: str, rng: np.random.Generator) -> ContrastProfile:
    """Draw a contrast profile: the named table plus Gaussian jitter, or random for "synthetic".

    Background stays 0 for the named profiles; every intensity lies in [0, 1]. The profile
    covers every render class: the tissue classes and the real-anatomy classes.
    """
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown contrast profile {name!r}; choose one of {PROFILE_NAMES}")
    if name == "synthetic":
        values = rng.uniform(0.0, 1.0, N_TISSUES)
        values[0] = rng.uniform(0.0, 0.1)
    else:
        values = np.asarray(_PROFILE_TABLE[name]) + rng.normal(0.0, _PROFILE_JITTER_SD, N_TISSUES)
        values[0] = 0.0
    # Drawn from a spawned generator: ``rng``'s own stream is the same as before real anatomy.
    values = np.concatenate([values, _real_values(name, values, rng.spawn(1)[0])])
    values = np.clip(values, 0.0, 1.0)
    return ContrastProfile(name=name, intensities={k: float(v) for k, v in enumerate(values)})


@dataclass(frozen=True)
class RenderParams:
    """Every random choice of one render (see :func:`sample_render_params`).

    Lengths and sigmas are in millimetres; ``bias_coarse`` is a small grid of log-bias values
    upsampled to the image; ``texture_seed`` seeds within-tissue texture and noise.
    """

    texture_sd: float
    pv_sigma_mm: float
    resolution_mm: tuple[float, float]  # acquisition spacing along (H, W); 0 = native
    bias_coarse: np.ndarray  # 4×4 or 5×5, float64
    noise_sd: float
    gamma: float
    percentiles: tuple[float, float]
    texture_seed: int


def sample_render_params(rng: np.random.Generator) -> RenderParams:
    """Draw the scan-specific randomness of one render (resolution, bias, gamma, noise, ...)."""
    if rng.uniform() < 0.5:
        # Thick slices/low in-plane resolution: one axis often much coarser than the other.
        resolution = (float(rng.uniform(1.0, 4.0)), float(rng.uniform(1.0, 4.0)))
    else:
        resolution = (0.0, 0.0)
    grid = int(rng.integers(3, 6))
    bias_sd = rng.uniform(0.0, 0.3)
    return RenderParams(
        texture_sd=float(rng.uniform(0.0, 0.05)),
        pv_sigma_mm=float(rng.uniform(0.3, 1.0)),
        resolution_mm=resolution,
        bias_coarse=rng.normal(0.0, bias_sd, (grid, grid)),
        noise_sd=float(rng.uniform(0.0, 0.04)),
        gamma=float(np.exp(rng.normal(0.0, 0.2))),
        percentiles=(float(rng.uniform(0.0, 1.0)), float(rng.uniform(99.0, 100.0))),
        texture_seed=int(rng.integers(2**31)),
    )


def _resample_resolution(
    image: np.ndarray, resolution_mm: tuple[float, float], voxel_size_mm: float
) -> np.ndarray:
    """Simulate acquisition at a coarser spacing: anisotropic blur, downsample, upsample back."""
    factors = [max(r / voxel_size_mm, 1.0) for r in resolution_mm]
    if max(factors) <= 1.0:
        return image
    # FWHM of the slice profile equals the spacing: sigma = spacing / 2.355.
    blurred = ndimage.gaussian_filter(image, [f / 2.355 for f in factors], mode="nearest")
    small_shape = [max(int(round(n / f)), 2) for n, f in zip(image.shape, factors, strict=True)]
    small = ndimage.zoom(
        blurred, [s / n for s, n in zip(small_shape, image.shape, strict=True)], order=1
    )
    back = ndimage.zoom(
        small, [n / s for n, s in zip(image.shape, small.shape, strict=True)], order=1
    )
    out = np.zeros_like(image)
    h, w = min(back.shape[0], image.shape[0]), min(back.shape[1], image.shape[1])
    out[:h, :w] = back[:h, :w]
    return out


def _bias_field(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Smooth positive multiplicative field (H×W) from a coarse grid of log values."""
    zoom = [n / c for n, c in zip(shape, coarse.shape, strict=True)]
    log_field = ndimage.zoom(coarse, zoom, order=3, mode="nearest", grid_mode=True)
    return np.exp(log_field[: shape[0], : shape[1]])


def _mean_image(
    classes: np.ndarray, brain: np.ndarray, profile: ContrastProfile, *, head: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(render classes, float64 image of their mean intensities), zero outside the brain
    unless ``head``; any number of dimensions."""
    lut = [profile.intensities.get(k, 0.0) for k in range(N_RENDER_CLASSES)]
    lut = np.asarray(lut, dtype=np.float64)
    labels = np.clip(np.asarray(classes), 0, N_RENDER_CLASSES - 1)
    if not head:
        labels = np.where(brain, labels, 0)  # a skull-stripped scan: nothing bleeds in from outside
    return labels, lut[labels]


def render_volume(
    classes: np.ndarray,
    brain_mask: np.ndarray,
    profile: ContrastProfile,
    voxel_size_mm: float,
    *,
    head: bool = False,
    pv_sigma_mm: float = 0.6,
) -> np.ndarray:
    """A clean 3D image (float32 in [0, 1]) of render classes under ``profile``: the mean
    intensities of :func:`apply_render` with its partial-volume blur, and no texture, bias,
    noise or resolution change (examples for presets and the demo)."""
    brain = np.asarray(brain_mask, dtype=bool)
    _, image = _mean_image(classes, brain, profile, head=head)
    image = ndimage.gaussian_filter(image, pv_sigma_mm / voxel_size_mm, mode="nearest")
    if not head:
        image = image * brain
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def apply_render(
    subject: SliceSubject,
    profile: ContrastProfile,
    params: RenderParams,
    *,
    head: bool = False,
) -> np.ndarray:
    """Deterministic twin of :func:`render`: H×W float32 in [0, 1] from given parameters."""
    classes = subject.tissue if subject.render_classes is None else subject.render_classes
    brain = np.asarray(subject.brain_mask, dtype=bool)
    voxel_size_mm = float(subject.voxel_size_mm)
    labels, image = _mean_image(classes, brain, profile, head=head)
    tex_rng = np.random.default_rng(params.texture_seed)
    if params.texture_sd > 0:
        texture = ndimage.gaussian_filter(tex_rng.normal(0.0, 1.0, image.shape), 0.7)
        image = image + params.texture_sd * texture / max(texture.std(), 1e-8) * (labels > 0)
    image = ndimage.gaussian_filter(image, params.pv_sigma_mm / voxel_size_mm, mode="nearest")
    image = _resample_resolution(image, params.resolution_mm, voxel_size_mm)
    image = image * _bias_field(params.bias_coarse, image.shape)
    if params.noise_sd > 0:
        # Rician magnitude noise, as in magnitude MR images.
        n1, n2 = tex_rng.normal(0.0, params.noise_sd, (2, *image.shape))
        image = np.sqrt((image + n1) ** 2 + n2**2)
    region = brain if not head else np.ones_like(brain)
    values = image[region] if region.any() else image.ravel()
    lo, hi = np.percentile(values, params.percentiles)
    image = np.clip((image - lo) / max(hi - lo, 1e-6), 0.0, 1.0) ** params.gamma
    if not head:
        image = image * brain
    return image.astype(np.float32)


def render(
    subject: SliceSubject,
    profile: ContrastProfile,
    rng: np.random.Generator,
    *,
    head: bool = False,
) -> np.ndarray:
    """Render one image of ``subject`` under ``profile``.

    Args:
        subject: its ``tissue`` (H×W int, ``TISSUE_CLASSES``), or its ``render_classes`` where
            it has them (real anatomy), and ``brain_mask`` (H×W bool).
        profile: per-tissue mean intensities, from :func:`sample_profile` (one per episode).
        rng: draws texture, partial-volume blur, resolution, bias field, noise, gamma, percentiles.
        head: if False, a skull-stripped image (zero outside the brain mask); if True, the whole
            head including the extra-cerebral layers (CSF, skull, scalp, fat).

    Returns:
        H×W float32 image in [0, 1].
    """
    return apply_render(subject, profile, sample_render_params(rng), head=head)
