"""Virtual subjects in 3D: random affine + smooth elastic deformation (the SynthSeg recipe).

One spatial transform moves every label map, mask, tissue map and real image of an anatomy together
(labels and masks by nearest neighbour, images trilinearly), so they stay aligned. Following the
TorchIO pattern, :func:`sample_deformation` draws the parameters from a generator and
:func:`warp` applies them deterministically; :meth:`Deformation.map_points` says where any output
point was taken from, which the geometry tests use.

Extra-cerebral layers (CSF, skull, scalp, fat) are derived around the warped brain mask by
:func:`add_extracerebral_layers`, with smoothly varying random thicknesses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neuralizer.data.space import Grid


def _upsample_matrix(n_coarse: int, n_fine: int) -> np.ndarray:
    """n_fine×n_coarse matrix of 1D cubic-spline upsampling (``ndimage.zoom``, order 3)."""
    eye = np.eye(n_coarse)
    columns = [
        ndimage.zoom(e, n_fine / n_coarse, order=3, mode="nearest", grid_mode=True)[:n_fine]
        for e in eye
    ]
    return np.stack(columns, axis=1)


def smooth_upsample(coarse: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Cubic-spline upsampling of a small grid to ``shape``, one axis at a time.

    Equals ``ndimage.zoom(coarse, order=3, mode="nearest", grid_mode=True)`` (the spline is
    separable) at a fraction of its cost, since the coarse grid has only a few nodes per axis.
    """
    out = coarse.astype(np.float64)
    for axis, n_fine in enumerate(shape):
        matrix = _upsample_matrix(coarse.shape[axis], n_fine)
        out = np.moveaxis(np.tensordot(matrix, np.moveaxis(out, axis, 0), axes=1), 0, axis)
    return out


@dataclass(frozen=True)
class Deformation:
    """Output world point p (mm) is taken from input point ``matrix @ (p - center) + center +
    translation + elastic(p)``.

    ``elastic_coarse`` is a 3×gx×gy×gz grid of displacements (mm), upsampled smoothly to the grid.
    """

    matrix: np.ndarray  # 3×3
    translation: np.ndarray  # 3, mm
    elastic_coarse: np.ndarray  # 3×gx×gy×gz, mm
    center: np.ndarray  # 3, mm (world centre of rotation/scaling)

    def elastic_field(self, grid: Grid) -> np.ndarray:
        """Dense displacement (3×X×Y×Z, mm) on ``grid``, cubic upsampling of the coarse grid."""
        return np.stack([smooth_upsample(c, grid.shape) for c in self.elastic_coarse])

    def source_points(self, grid: Grid) -> np.ndarray:
        """World coordinates (3×X×Y×Z, mm) in the input that every output voxel samples."""
        index = np.indices(grid.shape, dtype=np.float64).reshape(3, -1)
        world = grid.affine[:3, :3] @ index + grid.affine[:3, 3:4]
        moved = (
            self.matrix @ (world - self.center[:, None]) + (self.center + self.translation)[:, None]
        )
        return moved.reshape(3, *grid.shape) + self.elastic_field(grid)

    def map_points(self, points: np.ndarray, grid: Grid) -> np.ndarray:
        """Input world points (N×3) sampled by output world points ``points`` (N×3)."""
        field = self.elastic_field(grid)
        index = (np.linalg.inv(grid.affine) @ np.c_[points, np.ones(len(points))].T)[:3]
        elastic = np.stack(
            [ndimage.map_coordinates(f, index, order=1, mode="nearest") for f in field]
        )
        moved = (
            self.matrix @ (points.T - self.center[:, None])
            + (self.center + self.translation)[:, None]
        )
        return (moved + elastic).T


@dataclass(frozen=True)
class DeformationConfig:
    """Ranges of a random deformation (degrees, fractions, mm)."""

    rotation_deg: float = 10.0
    scaling: float = 0.1
    shear: float = 0.05
    translation_mm: float = 8.0
    elastic_mm: float = 3.0  # maximum s.d. of the coarse displacements
    elastic_grid: tuple[int, int, int] = (5, 6, 5)


def _rotation(angles_rad: np.ndarray) -> np.ndarray:
    cx, cy, cz = np.cos(angles_rad)
    sx, sy, sz = np.sin(angles_rad)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def sample_deformation(
    config: DeformationConfig, rng: np.random.Generator, center: np.ndarray | None = None
) -> Deformation:
    """Draw a random affine (rotation, scaling, shear, translation) and a smooth elastic field."""
    angles = np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg, 3))
    scale = np.diag(1.0 + rng.uniform(-config.scaling, config.scaling, 3))
    shear = np.eye(3)
    shear[np.triu_indices(3, 1)] = rng.uniform(-config.shear, config.shear, 3)
    elastic_sd = rng.uniform(0.0, config.elastic_mm)
    return Deformation(
        matrix=_rotation(angles) @ shear @ scale,
        translation=rng.uniform(-config.translation_mm, config.translation_mm, 3),
        elastic_coarse=rng.normal(0.0, elastic_sd, (3, *config.elastic_grid)),
        center=np.zeros(3) if center is None else np.asarray(center, np.float64),
    )


class Sampler:
    """Samples volumes on ``grid`` at world ``source_points`` (3×X×Y×Z, mm); zero outside.

    The voxel coordinates (and, for nearest neighbour, the rounded flat indices) are computed
    once and shared by every volume warped with the same transform.
    """

    def __init__(self, source_points: np.ndarray, grid: Grid) -> None:
        offset = grid.affine[:3, 3, None, None, None]
        self.index = np.tensordot(np.linalg.inv(grid.affine[:3, :3]), source_points - offset, 1)
        self.shape = grid.shape
        self._nearest: tuple[np.ndarray, np.ndarray] | None = None

    def nearest(self, volume: np.ndarray) -> np.ndarray:
        """Nearest-neighbour sample (labels, masks); dtype kept."""
        if self._nearest is None:
            rounded = np.rint(self.index).astype(np.intp)
            inside = np.all(
                [(r >= 0) & (r < n) for r, n in zip(rounded, self.shape, strict=True)], axis=0
            )
            flat = np.ravel_multi_index(tuple(np.where(inside, rounded, 0)), self.shape)
            self._nearest = flat, inside
        flat, inside = self._nearest
        return np.where(inside, np.asarray(volume).ravel()[flat], 0).astype(volume.dtype)

    def linear(self, volume: np.ndarray) -> np.ndarray:
        """Trilinear sample (images); float32."""
        data = np.asarray(volume, dtype=np.float32)
        out = ndimage.map_coordinates(data, self.index, order=1, mode="constant", cval=0)
        return out.astype(np.float32)


def warp(volume: np.ndarray, source_points: np.ndarray, grid: Grid, *, order: int) -> np.ndarray:
    """Sample ``volume`` (on ``grid``) at world ``source_points`` (3×X×Y×Z); zero outside.

    ``order=0`` for labels/masks (dtype kept), ``order=1`` for images (float32).
    """
    sampler = Sampler(source_points, grid)
    return sampler.nearest(volume) if order == 0 else sampler.linear(volume)


def add_extracerebral_layers(
    tissue: np.ndarray, brain_mask: np.ndarray, voxel_size_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Surround the brain mask with extra-cerebral CSF, skull, scalp (muscle/skin) and fat.

    Layer thicknesses (mm) are drawn per subject and vary smoothly over the head. Returns a new
    int16 tissue map; voxels inside ``brain_mask`` are unchanged.
    """
    # Distance (mm) from the brain surface to each outside voxel's inner face.
    distance = (ndimage.distance_transform_edt(~brain_mask) - 0.5) * voxel_size_mm
    # Smooth multiplicative thickness variation over the head (about ±25%).
    coarse = rng.normal(0.0, 0.15, (4, 4, 4))
    wobble = np.exp(smooth_upsample(coarse, tissue.shape))
    thickness = {  # outward order: CSF, skull, scalp (galea/muscle), fat, skin (scalp class)
        9: rng.uniform(1.0, 3.0),
        10: rng.uniform(4.0, 8.0),
        11: rng.uniform(1.5, 4.0),
        12: rng.uniform(2.0, 6.0),
        13: rng.uniform(1.0, 2.5),
    }
    out = tissue.astype(np.int16, copy=True)
    outer = np.zeros_like(distance)
    inside = brain_mask.copy()
    for cls, mm in thickness.items():
        outer = outer + mm * wobble
        layer = ~inside & (distance <= outer)
        out[layer] = 11 if cls == 13 else cls
        inside |= layer
    return out
