"""Baselines that need no training (SPEC §7): the mean of the context outputs, the target's own
input (identity) and atlas propagation.

Shapes: ``context_in`` L×3×H×W, ``context_out`` L×1×H×W, ``target_in`` 3×H×W (numpy float32);
each baseline returns a 1×H×W prediction in the model's output convention (segmentation-like
outputs are later thresholded at 0.5, so the mean of L binary masks thresholded at 0.5 is a
majority vote).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from neuralizer.data.register import register_affine_images, register_bspline, single_threaded_itk


def mean_baseline(context_out: np.ndarray) -> np.ndarray:
    """Voxel-wise mean of the context outputs: L×1×H×W -> 1×H×W."""
    if context_out.shape[0] == 0:
        raise ValueError("the mean baseline needs at least one context pair")
    return context_out.mean(axis=0).astype(np.float32)


def identity_baseline(target_in: np.ndarray) -> np.ndarray:
    """The target's input image returned as the output: 3×H×W -> 1×H×W (channel 0).

    Every task family puts its input image in channel 0 (``tasks.base.encode_input``; inpainting
    adds its mask as channel 1, the others leave channels 1–2 zero), in the same intensity units
    as an image output, and evaluation sets draw no task augmentation (which could permute or
    duplicate channels). So for denoising its PSNR is the PSNR of the corrupted input, for
    modality transfer that of returning the input contrast unchanged. Image tasks only: a
    thresholded image is no segmentation baseline.
    """
    return np.asarray(target_in[:1], np.float32)


def _image(array: np.ndarray) -> sitk.Image:
    return sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))


def _intensity(x: np.ndarray) -> np.ndarray:
    """The H×W image registrations use: the sum of the input's channels (unused ones are 0)."""
    return x.sum(axis=0)


def register_deformable(
    fixed: np.ndarray, moving: np.ndarray, *, seed: int = 0, mesh_size: int = 6
) -> sitk.Transform:
    """Affine (``register_affine_images``) then B-spline registration of two H×W images.

    Mattes mutual information (context and target may be different modalities); returns the
    composite fixed->moving transform.
    """
    fixed_img, moving_img = _image(fixed), _image(moving)
    affine = register_affine_images(fixed_img, moving_img, seed=seed)
    moving_affine = sitk.Resample(moving_img, fixed_img, affine, sitk.sitkLinear, 0.0)
    bspline = register_bspline(fixed_img, moving_affine, seed=seed, mesh_size=mesh_size)
    # fixed point -> (B-spline) -> point in the affinely resampled moving = fixed space ->
    # (affine) -> moving point. A CompositeTransform applies its last-added transform first.
    composite = sitk.CompositeTransform(2)
    composite.AddTransform(affine)
    composite.AddTransform(bspline)
    return composite


def warp(array: np.ndarray, transform: sitk.Transform, *, nearest: bool) -> np.ndarray:
    """Resample an H×W ``array`` (in moving space) into fixed space through ``transform``."""
    image = _image(array)
    interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.GetArrayFromImage(sitk.Resample(image, image, transform, interp, 0.0))


def propagate(
    target_in: np.ndarray,
    context_in: np.ndarray,
    context_out: np.ndarray,
    *,
    segmentation_like: bool,
    seed: int = 0,
    deformable: bool = True,
) -> np.ndarray:
    """Each context output warped onto the target: L×1×H×W.

    Every context input is registered (affine, then deformable unless ``deformable`` is False)
    to ``target_in`` and its output carried over (nearest neighbour for masks, linear for
    images). Fuse with :func:`fuse`.
    """
    fixed = _intensity(target_in)
    with single_threaded_itk():
        warped = []
        for x, out in zip(context_in, context_out, strict=True):
            transform = robust_transform(fixed, _intensity(x), seed=seed, deformable=deformable)
            warped.append(warp(out[0], transform, nearest=segmentation_like))
    return np.stack(warped)[:, None].astype(np.float32)


def robust_transform(
    fixed: np.ndarray, moving: np.ndarray, *, seed: int = 0, deformable: bool = True
) -> sitk.Transform:
    """:func:`register_deformable` (or, without ``deformable``, its affine stage alone),
    falling back to affine, then to the identity, when ITK refuses (e.g. an empty or tiny
    image: "all samples map outside moving image buffer")."""
    if deformable:
        try:
            return register_deformable(fixed, moving, seed=seed)
        except RuntimeError:
            pass
    try:
        return register_affine_images(_image(fixed), _image(moving), seed=seed)
    except RuntimeError:
        return sitk.Transform(2, sitk.sitkIdentity)


def fuse(warped_out: np.ndarray) -> np.ndarray:
    """Majority vote (masks, after the 0.5 threshold) or mean (images): L×1×H×W -> 1×H×W."""
    return mean_baseline(warped_out)
