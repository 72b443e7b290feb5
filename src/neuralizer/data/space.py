"""The common space: MNI152, RAS, the paper's 192×224×192 mm crop, at a chosen voxel size.

Every source, synthetic subject and imported scan lives on a :class:`Grid` made by
:func:`common_grid`. Arrays are indexed ``[x, y, z]`` (D×H×W in the code's shape letters, with x
running left to right, y posterior to anterior and z inferior to superior) and the affine maps
voxel indices to MNI world millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: The paper's crop (§4.1), in millimetres, and the world coordinate of its first voxel corner.
CROP_MM = (192, 224, 192)
# The box x ∈ [-96, 96), y ∈ [-128, 96), z ∈ [-84, 108) holds the whole MNI head, brain centred.
CROP_ORIGIN_MM = (-96.0, -128.0, -84.0)


@dataclass(frozen=True)
class Grid:
    """A voxel grid: ``shape`` (X, Y, Z) and a 4×4 voxel-to-world ``affine`` (RAS, mm)."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def voxel_size_mm(self) -> float:
        return float(abs(self.affine[0, 0]))


def coronal_view(volume, y: int) -> np.ndarray:
    """Coronal slice ``y`` of an X×Y×Z RAS volume for display: float32, superior up, the
    subject's left on the picture's left (neurological convention)."""
    return np.asarray(volume, np.float32)[:, y, :].T[::-1]


def common_grid(voxel_size_mm: float = 1.0) -> Grid:
    """The paper's 192×224×192 mm MNI crop at ``voxel_size_mm`` (1 → 192×224×192, 2 → 96×112×96)."""
    # 0.25 mm: a 768×896×768 grid already; smaller sizes are typos that would exhaust memory.
    if not 0.25 <= voxel_size_mm <= 32 or any(
        round(c / voxel_size_mm) * voxel_size_mm != c for c in CROP_MM
    ):
        raise ValueError(
            f"voxel_size_mm={voxel_size_mm} must divide the crop {CROP_MM} mm and lie in "
            "[0.25, 32] (e.g. 1, 2, 4)"
        )
    shape = tuple(int(round(c / voxel_size_mm)) for c in CROP_MM)
    affine = np.diag([voxel_size_mm] * 3 + [1.0])
    # Voxel centres sit half a voxel inside the box corner.
    affine[:3, 3] = np.asarray(CROP_ORIGIN_MM) + voxel_size_mm / 2
    return Grid(shape=shape, affine=affine)  # type: ignore[arg-type]


def resample_to_grid(
    data: np.ndarray, affine: np.ndarray, grid: Grid, *, order: int, fill: float = 0.0
) -> np.ndarray:
    """Resample a 3D array (with its voxel-to-world ``affine``) onto ``grid``.

    ``order=0`` (nearest neighbour) for labels and masks, ``order=1`` (trilinear) for images.
    Returns an array of ``grid.shape`` with the input's dtype for labels, float32 for images.
    """
    vox_to_vox = np.linalg.inv(affine) @ grid.affine
    out = ndimage.affine_transform(
        data if order == 0 else data.astype(np.float32),
        vox_to_vox[:3, :3],
        offset=vox_to_vox[:3, 3],
        output_shape=grid.shape,
        order=order,
        mode="constant",
        cval=fill,
    )
    return out if order == 0 else out.astype(np.float32)


def load_nifti(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI file: (array, 4×4 affine). Singleton 4th dimensions are dropped."""
    import nibabel as nib  # here: training from a burst bundle runs without nibabel

    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    return data, img.affine


#: Intensities are rescaled so that these percentiles of the foreground map to 0 and 1.
PERCENTILES = (0.5, 99.5)


def intensity_range(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    percentiles: tuple[float, float] = PERCENTILES,
) -> tuple[float, float]:
    """The ``percentiles`` of the voxels in ``mask`` (default: the non-zero ones).

    The same function prepares training images and users' scans, so the two cannot drift apart.
    When the mask holds fewer than max(16, 1 %) of the voxels, all voxels are used; when the
    percentiles coincide (a flat image), the range is the image's minimum and maximum.
    """
    values = image[mask] if mask is not None else image[image != 0]
    if values.size < max(16, image.size // 100):
        values = image.ravel()
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        lo, hi = float(image.min()), float(image.max())
    return lo, hi


def rescale(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] to [0, 1] and clip; float32 (computed in float64)."""
    scale = np.float64(max(hi - lo, 1e-12))
    return np.clip((image - np.float64(lo)) / scale, 0.0, 1.0).astype(np.float32)


def percentile_rescale(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    percentiles: tuple[float, float] = PERCENTILES,
) -> np.ndarray:
    """Map :func:`intensity_range` (``percentiles`` of the voxels in ``mask``) to [0, 1], clip."""
    return rescale(image, *intensity_range(image, mask, percentiles))


def foreground(data: np.ndarray) -> np.ndarray:
    """Voxels above 10% of the 99th percentile of the positive voxels (bool, same shape); for an
    image without positive voxels, those that differ from its minimum."""
    positive = data[data > 0]
    if positive.size == 0:
        return data != data.min()
    return data > 0.1 * np.percentile(positive, 99)
