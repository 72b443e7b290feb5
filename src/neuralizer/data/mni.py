"""One scan registered affinely to the MNI152 common space, robustly (SimpleITK).

Heads go to a head template (the real head, aligned to MNI), brains to the MNI152 T1 brain,
chosen from the volume of the scan's foreground (:func:`guess_kind`). The registration runs on
the 2 mm templates and a 2 mm copy of the scan (smoothed first when the scan is finer), and
survives poses far from the template's:

1. **initialisation**: the centres of mass are matched (moments), then a coarse search over
   rotations (every combination of -30°, -15°, 0°, 15° and 30° about the three axes, at 8 mm)
   ranks the starting poses by mutual information;
2. **rigid** registration (Mattes mutual information, at 8 mm) from the best starts, the one
   with the best metric kept;
3. **affine** registration for brains, **similarity** (rotation and one scale) for heads, at 4
   then 2 mm (both smoothed by 2 mm, :data:`_FINAL_SIGMA_MM`). A head's shape beyond the brain
   (neck, face, field of view) differs too much from the template's for a full affine: tried,
   it scaled heads by up to 19%; so did a last stage restricted to the template's brain or
   cranium (T2-like heads: brain-mask Dice 0.66-0.81, where the similarity stage gives 0.92).
   A skull-stripped brain gets the full affine;
4. a **check** that rejects a bad optimum: the scan's foreground carried into MNI space must
   overlap the template's (:data:`MIN_OVERLAP`, Dice) and the scales stay within
   :data:`SCALE_RANGE`. A start that fails gives way to the next; when all fail, ValueError.

The scan is zero-padded before registration, so that template points mapped just outside its
field of view count as background rather than being dropped: where its box ends does not pull the
result. Every optimiser runs to convergence (no early stop on a small gradient), single-threaded
with fixed sampling seeds: the same scan gives the same transform, bit for bit.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from neuralizer.data.space import Grid, common_grid, foreground, percentile_rescale

KINDS = ("auto", "head", "brain")
#: Registration voxel size (mm): the templates' grid.
REGISTRATION_MM = 2.0
# A skull-stripped brain occupies ~1.0-1.8 litres above background; a head well over 2.5.
HEAD_VOLUME_ML = 2200.0
#: Minimum Dice of the scan's foreground, carried into MNI space, with the template's.
MIN_OVERLAP = 0.6
#: Each singular value of the found linear map (scan mm per MNI mm) must lie in this range.
SCALE_RANGE = (0.7, 1.45)
#: The cranium of the head template: its brain dilated by this much (mm).
CRANIUM_MARGIN_MM = 6.0
#: Starting rotations (degrees) tried about each axis; the best :data:`N_STARTS` are refined.
START_ANGLES_DEG = (-30.0, -15.0, 0.0, 15.0, 30.0)
N_STARTS = 2
#: The last stage (2 mm) smooths both images by 2 mm: at 1 mm the mutual information has
#: local optima a few millimetres apart, and the same head in two poses stopped in different
#: ones (3.9 mm apart at a box corner after a 29° motion; 0.1 mm with 2 mm smoothing).
_FINAL_SIGMA_MM = 2.0
_FINAL_ITERATIONS = 60
_PAD_MM = 30.0


@dataclass(frozen=True)
class MniTransform:
    """An affine map from MNI world coordinates to a scan's world coordinates (both RAS, mm).

    ``matrix`` 4×4; ``kind`` the template used ("head" or "brain"); ``overlap`` the check's Dice.
    """

    matrix: np.ndarray
    kind: str
    overlap: float

    @property
    def rotation_deg(self) -> float:
        """Angle (degrees) of the rotation in the linear part (polar decomposition)."""
        u, _, vt = np.linalg.svd(self.matrix[:3, :3])
        rotation = u @ vt
        cos = np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0)
        return float(np.degrees(np.arccos(cos)))

    @property
    def scales(self) -> tuple[float, float, float]:
        """Singular values of the linear part (scan mm per MNI mm), largest first."""
        return tuple(float(s) for s in np.linalg.svd(self.matrix[:3, :3], compute_uv=False))

    def describe(self) -> str:
        scales = "/".join(f"{s:.2f}" for s in self.scales)
        return (f"{self.kind} template, rotation {self.rotation_deg:.1f}°, scales {scales}, "
                f"overlap {self.overlap:.2f}")  # fmt: skip


def guess_kind(data: np.ndarray, affine: np.ndarray) -> str:
    """ "head" or "brain", from the volume of the foreground (voxels above 10% of the 99th pct)."""
    positive = data[data > 0]
    if positive.size == 0:
        raise ValueError("the image is empty (no positive voxels)")
    volume_ml = foreground(data).sum() * abs(np.linalg.det(affine[:3, :3])) / 1000.0
    return "head" if volume_ml > HEAD_VOLUME_ML else "brain"


@functools.lru_cache(maxsize=4)
def templates(cache_dir: Path | None = None) -> tuple[Grid, dict[str, np.ndarray]]:
    """Registration templates on the 2 mm common grid: "head" (the real head) and "brain"
    (read once per process; the arrays are shared, never write to them)."""
    from neuralizer.data.cache import config_key, default_cache_dir, read_checked, write_entry
    from neuralizer.data.sources import load_real_head, load_templates, source_versions

    grid = common_grid(REGISTRATION_MM)
    key = config_key({"what": "import-templates", "versions": source_versions(), "v": 1})
    path = (cache_dir or default_cache_dir()) / f"templates-{key}"
    entry = read_checked(path, key)
    if entry is None:
        brain = load_templates(grid)["t1_brain"]
        head, _ = load_real_head(grid, brain)
        write_entry(path, {"head": head, "brain": brain}, {"key": key})
        entry = read_checked(path, key)
    assert entry is not None
    return grid, {k: np.asarray(v) for k, v in entry[0].items()}


def registration_copy(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scan at about 2 mm (smoothed, then subsampled where finer), its foreground rescaled
    to [0, 1] by percentiles and zero-padded by 30 mm; with its affine."""
    data = np.asarray(data, np.float32)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    step = np.maximum(np.floor(REGISTRATION_MM / spacing + 0.25), 1).astype(int)
    if (step > 1).any():
        data = ndimage.gaussian_filter(data, step / 2.5)[:: step[0], :: step[1], :: step[2]]
        affine = affine.copy()
        affine[:3, :3] = affine[:3, :3] * step
    data = percentile_rescale(data, foreground(data))
    pad = np.ceil(_PAD_MM / (spacing * step)).astype(int)
    data = np.pad(data, [(p, p) for p in pad])
    affine = affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ pad
    return data, affine


def register_to_mni(
    data: np.ndarray,
    affine: np.ndarray,
    *,
    kind: str = "auto",
    seed: int = 0,
    cache_dir: Path | None = None,
) -> MniTransform:
    """The :class:`MniTransform` of a 3D scan (X×Y×Z with its voxel-to-world RAS ``affine``).

    Raises ValueError when no start passes the check (not a head or brain scan, or one the
    registration cannot align).
    """
    from neuralizer.data.register import single_threaded_itk, to_sitk

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    kind = guess_kind(data, affine) if kind == "auto" else kind
    grid, template = templates(cache_dir)
    small, small_affine = registration_copy(data, affine)
    fixed, moving = to_sitk(template[kind], grid.affine), to_sitk(small, small_affine)
    template_fg = foreground(template[kind])
    failures = []
    with single_threaded_itk():
        # Rigid at 8 mm from the best starts: cheap, and the start with the best metric wins.
        starts = _starts(fixed, moving)[:N_STARTS]
        rigid = [_run(fixed, moving, s, [4, 2], [4.0, 2.0], seed=seed) for s in starts]
        for rigid_found in sorted(rigid, key=lambda pair: pair[1]):
            found, _ = _run(fixed, moving, _widened(rigid_found[0], kind), [2], [2.0], seed=seed)
            found, _ = _run(fixed, moving, found, [1], [_FINAL_SIGMA_MM], seed=seed,
                            iterations=_FINAL_ITERATIONS)  # fmt: skip
            matrix = transform_matrix_ras(found)
            overlap = _overlap(matrix, small, small_affine, template_fg, grid)
            result = MniTransform(matrix, kind, overlap)
            lo, hi = SCALE_RANGE
            if overlap >= MIN_OVERLAP and all(lo <= s <= hi for s in result.scales):
                return result
            failures.append(result.describe())
    raise ValueError(
        f"registration to the MNI152 {kind} template failed ({'; '.join(failures)}); is it a "
        "whole brain or head scan? For data already in one space use --align none"
    )


def _starts(fixed, moving) -> list:
    """Euler transforms (moments-centred) of every start rotation, best metric first."""
    import SimpleITK as sitk

    centred = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    coarse_fixed = sitk.Shrink(sitk.SmoothingRecursiveGaussian(fixed, 4.0), [4] * 3)
    coarse_moving = sitk.Shrink(sitk.SmoothingRecursiveGaussian(moving, 4.0), [4] * 3)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetNumberOfThreads(1)
    scored = []
    for angles in itertools.product(np.radians(START_ANGLES_DEG), repeat=3):
        start = sitk.Euler3DTransform(centred)
        start.SetRotation(*(float(a) for a in angles))
        method.SetInitialTransform(start)
        scored.append((method.MetricEvaluate(coarse_fixed, coarse_moving), len(scored), start))
    return [start for *_, start in sorted(scored, key=lambda s: s[:2])]


def _widened(rigid, kind: str):
    """The rigid result as the start of the next stage: a similarity transform (rotation, one
    scale) for heads, whose shape beyond the brain differs too much from person to person to
    fit a full affine; an affine transform for brains."""
    import SimpleITK as sitk

    if kind == "head":
        out = sitk.Similarity3DTransform()
    else:
        out = sitk.AffineTransform(3)
    out.SetCenter(rigid.GetCenter())
    out.SetMatrix(rigid.GetMatrix())
    out.SetTranslation(rigid.GetTranslation())
    return out


def _run(
    fixed,
    moving,
    initial,
    shrink: list[int],
    sigmas: list[float],
    *,
    seed: int,
    mask=None,
    iterations: int = 200,
):
    """One multi-resolution Mattes-MI registration from ``initial``, run to convergence."""
    import SimpleITK as sitk

    from neuralizer.data.register import sitk_seed

    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.1, sitk_seed(seed))
    if mask is not None:
        method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    # No stop on a small gradient: mutual information is flat near its optimum, and stopping
    # there leaves the result depending on where the optimiser came from.
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-3, numberOfIterations=iterations, relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )  # fmt: skip
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(shrink)
    method.SetSmoothingSigmasPerLevel(sigmas)
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(initial, inPlace=False)
    method.SetNumberOfThreads(1)
    out = method.Execute(fixed, moving)
    if isinstance(out, sitk.CompositeTransform):
        out = out.GetNthTransform(0)
    return out.Downcast(), method.GetMetricValue()


def _overlap(matrix, data, affine, template_fg, grid: Grid) -> float:
    """Dice of the scan's foreground, carried onto the template's grid, with ``template_fg``."""
    from neuralizer.data.people import dice
    from neuralizer.data.space import resample_to_grid

    moved_grid = Grid(shape=grid.shape, affine=matrix @ grid.affine)
    moved = resample_to_grid(foreground(data).astype(np.uint8), affine, moved_grid, order=0)
    return dice(moved.astype(bool), template_fg)


def transform_matrix_ras(transform) -> np.ndarray:
    """4×4 RAS matrix of an affine SimpleITK transform (which works in LPS)."""
    matrix = np.asarray(transform.GetMatrix()).reshape(3, 3)
    center = np.asarray(transform.GetCenter())
    translation = np.asarray(transform.GetTranslation())
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = translation + center - matrix @ center
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ lps @ flip
