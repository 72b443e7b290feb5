"""Affine registration to the common space with SimpleITK (paper §4.1 preprocessing).

Initialised from the images' centres of mass (moments), so world offsets of hundreds of millimetres
do not matter; then Mattes mutual information, three resolution levels, a rigid stage followed by a
full affine stage. Deterministic: a fixed sampling seed, and ITK on one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import SimpleITK as sitk

from neuralizer.data.space import Grid


def to_sitk(data: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """Float32 SimpleITK image (LPS world, as ITK wants) from an ``[x, y, z]`` array, RAS affine."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.astype(np.float32).transpose(2, 1, 0)))
    ras_to_lps = np.diag([-1.0, -1.0, 1.0])
    linear = ras_to_lps @ affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((linear / spacing).ravel().tolist())
    image.SetOrigin((ras_to_lps @ affine[:3, 3]).tolist())
    return image


@contextmanager
def single_threaded_itk() -> Iterator[None]:
    """ITK filters on one thread, restored afterwards: multi-threaded sums in the registration
    pipeline make results differ in the last digits from run to run; one thread is exact (and
    registrations at our sizes gain little from threads)."""
    old = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(old)


def sitk_seed(seed: int) -> int:
    """The SimpleITK sampling seed for our ``seed`` >= 0.

    SimpleITK reads a sampling seed of 0 as "seed from the wall clock" (``sitkWallClock``), which
    would make every registration with our default seed 0 irreproducible; seeds are unsigned 32-bit.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return seed % (2**32 - 1) + 1


def register_affine(
    fixed: np.ndarray,
    fixed_affine: np.ndarray,
    moving: np.ndarray,
    moving_affine: np.ndarray,
    *,
    seed: int = 0,
) -> sitk.Transform:
    """Affine transform mapping fixed-space world points (LPS) to moving-space world points.

    ``fixed``/``moving`` are 3D intensity arrays with their voxel-to-world RAS affines.
    """
    return register_affine_images(
        to_sitk(fixed, fixed_affine), to_sitk(moving, moving_affine), seed=seed
    )


def register_affine_images(
    fixed_img: sitk.Image, moving_img: sitk.Image, *, seed: int = 0
) -> sitk.Transform:
    """Rigid then affine registration of two SimpleITK images (2D or 3D), moments initialised.

    Returns the transform mapping fixed-space world points to moving-space world points.
    """
    dim = fixed_img.GetDimension()
    euler = sitk.Euler2DTransform() if dim == 2 else sitk.Euler3DTransform()
    init = sitk.CenteredTransformInitializer(
        fixed_img, moving_img, euler, sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    with single_threaded_itk():
        rigid = _run(fixed_img, moving_img, init, seed=seed)
        affine = sitk.AffineTransform(dim)
        affine.SetCenter(rigid.GetCenter())
        affine.SetMatrix(rigid.GetMatrix())
        affine.SetTranslation(rigid.GetTranslation())
        return _run(fixed_img, moving_img, affine, seed=seed)


def _run(
    fixed: sitk.Image, moving: sitk.Image, initial: sitk.Transform, *, seed: int
) -> sitk.Transform:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.1, sitk_seed(seed))
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=200, relaxationFactor=0.6
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    reg.SetNumberOfThreads(1)  # deterministic metric sums
    out = reg.Execute(fixed, moving)
    if isinstance(out, sitk.CompositeTransform):
        out = out.GetNthTransform(0)
    return out.Downcast() if hasattr(out, "Downcast") else out


def register_bspline(
    fixed_img: sitk.Image, moving_img: sitk.Image, *, seed: int = 0, mesh_size: int = 6
) -> sitk.Transform:
    """The B-spline stage of a deformable registration (2D or 3D images already aligned
    affinely): a cubic B-spline on a ``mesh_size`` grid per axis, Mattes mutual information,
    L-BFGS-B over two resolutions. Returns the fixed->moving B-spline transform. The atlas
    baseline (:mod:`neuralizer.evaluate.baselines`) and ``--align deformable`` share it."""
    dim = fixed_img.GetDimension()
    bspline = sitk.BSplineTransformInitializer(fixed_img, [mesh_size] * dim, order=3)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.3, sitk_seed(seed))
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsLBFGSB(numberOfIterations=50, maximumNumberOfCorrections=5)
    reg.SetShrinkFactorsPerLevel([2, 1])
    reg.SetSmoothingSigmasPerLevel([1.0, 0.0])
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.SetNumberOfThreads(1)  # deterministic metric sums
    reg.Execute(fixed_img, moving_img)
    return bspline


def resample_with_transform(
    data: np.ndarray,
    affine: np.ndarray,
    transform: sitk.Transform,
    grid: Grid,
    *,
    order: int,
) -> np.ndarray:
    """Resample ``data`` (with its RAS ``affine``) onto ``grid`` through a fixed->moving transform.

    ``order=0``: nearest neighbour (labels, masks; int32), ``order=1``: linear (float32).
    Returns an ``[x, y, z]`` array of ``grid.shape``.
    """
    moving = to_sitk(data, affine)
    reference = to_sitk(np.zeros(grid.shape, np.float32), grid.affine)
    interp = sitk.sitkNearestNeighbor if order == 0 else sitk.sitkLinear
    out = sitk.Resample(moving, reference, transform, interp, 0.0, sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(out).transpose(2, 1, 0)
    return np.rint(array).astype(np.int32) if order == 0 else array.astype(np.float32)
