"""Scans of real people in known poses: the material of the alignment checks.

:func:`person_scan` renders one of the twenty people (:mod:`neuralizer.data.people`, already in
MNI space) as a clean T1-like or T2-like head, with or without skull, at 1 mm;
:func:`moved_scan` carries such a volume through a known rigid motion onto a new grid, as a
scanner would record the head in another pose (in LPI storage order, so orientation handling is
exercised too); :func:`corner_error` compares two MNI-to-scan transforms at the corners of a box
around the brain.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from neuralizer.data.space import Grid, common_grid, resample_to_grid

#: The consistency check's box: 160 mm wide, centred on the MNI brain (mm, RAS).
BOX_MM = 160.0
BOX_CENTRE_MM = (0.0, -18.0, 18.0)


def person_scan(
    number: int, profile: str = "t1", *, head: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image float32 in [0, 1], brain mask bool, affine) of person ``number`` on the 1 mm MNI
    grid: a clean render (:func:`neuralizer.data.render.render_volume`) under ``profile``."""
    from neuralizer.data.people import brain_mask_from_labels, load_person
    from neuralizer.data.render import real_class_map, render_volume, sample_profile

    labels, _ = load_person(number)
    brain = brain_mask_from_labels(labels)
    classes = real_class_map(labels)
    classes[brain & (classes == 0)] = real_class_map(np.array(24))  # sulcal CSF
    chosen = sample_profile(profile, np.random.default_rng([21, seed]))
    image = render_volume(classes, brain, chosen, 1.0, head=head)
    return image, brain, common_grid(1.0).affine


def rotation_matrix(degrees: tuple[float, float, float]) -> np.ndarray:
    """3×3 rotation about x, then y, then z (RAS), by ``degrees``."""
    a, b, c = np.radians(degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid_motion(
    degrees: tuple[float, float, float], shift_mm: tuple[float, float, float]
) -> np.ndarray:
    """4×4 rigid motion (RAS, mm) rotating about the brain's centre, then shifting."""
    centre = np.asarray(BOX_CENTRE_MM)
    motion = np.eye(4)
    motion[:3, :3] = rotation_matrix(degrees)
    motion[:3, 3] = centre - motion[:3, :3] @ centre + np.asarray(shift_mm)
    return motion


def random_motion(rng: np.random.Generator, max_deg: float = 25.0, max_mm: float = 20.0):
    """A rigid motion: angles up to ±``max_deg`` about each axis, shifts up to ±``max_mm``."""
    degrees = rng.uniform(-max_deg, max_deg, 3)
    shift = rng.uniform(-max_mm, max_mm, 3)
    return rigid_motion(tuple(degrees), tuple(shift))


def moved_scan(
    volume: np.ndarray,
    affine: np.ndarray,
    motion: np.ndarray,
    voxel_size_mm: float = 2.0,
    *,
    order: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``volume`` (with its RAS ``affine``) moved by ``motion`` (world to world), recorded on an
    LPI grid of ``voxel_size_mm`` that holds all of it: (data, affine).

    A point at world ``p`` of ``volume`` lies at ``motion @ p`` in the new scan. Images are
    blurred to the new resolution first (``order=1``), as an acquisition at that size would be.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if order == 1 and voxel_size_mm > spacing.min():
        sigma = np.sqrt(np.maximum((voxel_size_mm / spacing) ** 2 - 1, 0)) / 2.355
        volume = ndimage.gaussian_filter(np.asarray(volume, np.float32), sigma)
    shape = np.asarray(volume.shape)
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in shape])).reshape(3, -1)
    world = motion[:3, :3] @ (affine[:3, :3] @ corners + affine[:3, 3:4]) + motion[:3, 3:4]
    lo, hi = world.min(axis=1) - voxel_size_mm, world.max(axis=1) + voxel_size_mm
    new = np.diag([-voxel_size_mm, -voxel_size_mm, -voxel_size_mm, 1.0])  # L, P, I
    new[:3, 3] = hi
    grid = Grid(tuple(int(n) for n in np.ceil((hi - lo) / voxel_size_mm)), new)
    data = resample_to_grid(volume, motion @ affine, grid, order=order)
    return data, new


def corner_error(expected: np.ndarray, found: np.ndarray) -> float:
    """Largest distance (mm) between where two 4×4 MNI-to-scan maps put the 8 corners of the
    :data:`BOX_MM` box around the brain."""
    half = BOX_MM / 2
    corners = np.array(np.meshgrid(*[[-half, half]] * 3)).reshape(3, -1)
    corners = corners + np.asarray(BOX_CENTRE_MM)[:, None]
    a = expected[:3, :3] @ corners + expected[:3, 3:4]
    b = found[:3, :3] @ corners + found[:3, 3:4]
    return float(np.linalg.norm(a - b, axis=0).max())


def aligned_brain_dice(brain: np.ndarray, affine: np.ndarray, to_scan: np.ndarray) -> float:
    """Dice, on the 2 mm MNI grid, of a scan's brain mask carried into MNI space by the 4×4
    MNI-to-scan map ``to_scan``, against the MNI152 brain mask."""
    from neuralizer.data.people import dice, mni_brain_mask

    grid = common_grid(2.0)
    on_scan = Grid(grid.shape, to_scan @ grid.affine)
    moved = resample_to_grid(np.asarray(brain, np.uint8), affine, on_scan, order=0)
    return dice(moved.astype(bool), mni_brain_mask(grid))
