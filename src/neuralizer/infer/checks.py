"""Checks of a user's data that need no model and no torch: they run first and fail fast.

Every failure is a ValueError (or FileNotFoundError) whose message names the offending input and
says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from neuralizer.infer.io import Loaded, check_affine, read_input, real_float32
from neuralizer.infer.outputs import is_blank

ALIGN_MODES = ("affine", "deformable", "none")
_MIN_OVERLAP = 0.2


def _as_array(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch.Tensor
        value = value.detach().cpu().numpy()
    try:
        array = real_float32(np.asarray(value), name)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array or tensor ({error})") from None
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or Inf values; replace them (e.g. by 0) first")
    return array


def check_context(n_in: int, n_out: int) -> None:
    if n_in == 0 or n_out == 0:
        raise ValueError("the context is empty: give at least one input/output pair")
    if n_in != n_out:
        raise ValueError(
            f"{n_in} context inputs but {n_out} context outputs: give one output per input"
        )


def channels_2d(target_in: Any, context_in: Any, context_out: Any):
    """target C×H×W, context_in L×C×H×W, context_out L×1×H×W as float32 arrays, checked."""
    target = _as_array(target_in, "target_in")
    target = target[None] if target.ndim == 2 else target
    if target.ndim != 3 or not 1 <= target.shape[0] <= 3:
        raise ValueError(f"target_in must be H×W or C×H×W with C ≤ 3, got {target.shape}")
    c_in = [_as_array(c, "context_in") for c in context_in]
    c_out = [_as_array(c, "context_out") for c in context_out]
    check_context(len(c_in), len(c_out))
    c_in = [c[None] if c.ndim == 2 else c for c in c_in]
    c_out = [c[None] if c.ndim == 2 else c for c in c_out]
    for i, (a, b) in enumerate(zip(c_in, c_out, strict=True)):
        if a.shape != target.shape:
            raise ValueError(
                f"context_in[{i}] has shape {a.shape} but target_in {target.shape}: 2D images "
                "cannot be aligned, give them on the same grid"
            )
        if b.shape != (1, *target.shape[1:]):
            raise ValueError(f"context_out[{i}] has shape {b.shape}; expected {target.shape[1:]}")
    if is_blank(target):
        raise ValueError("target_in is blank (constant): there is nothing to predict from")
    return target, np.stack(c_in), np.stack(c_out)


def as_loaded(value: Any, name: str) -> Loaded:
    """A :class:`Loaded` volume from a path (``+`` joins channels) or a nibabel image."""
    if isinstance(value, Loaded):
        return value
    if isinstance(value, (str, Path)):
        loaded = read_input(value)
    elif isinstance(value, nib.spatialimages.SpatialImage):
        check_affine(value.affine, name)
        data = real_float32(np.asarray(value.dataobj), name)
        if not np.isfinite(data).all():
            raise ValueError(f"{name} contains NaN or Inf values; replace them (e.g. by 0) first")
        if data.ndim == 4 and data.shape[3] <= 3:
            data = np.moveaxis(data, 3, 0)
        elif data.ndim == 3:
            data = data[None]
        else:
            raise ValueError(
                f"{name}: expected a 3D image (or 4D with ≤ 3 volumes), got {data.shape}"
            )
        image = (
            value if isinstance(value, nib.Nifti1Image) else nib.Nifti1Image(data[0], value.affine)
        )
        loaded = Loaded(name, data, image)
    else:
        raise ValueError(
            f"{name} must be a NIfTI path or a nibabel image, got {type(value).__name__}"
        )
    if loaded.image is None:
        raise ValueError(f"{loaded.name} is a 2D file; predict_volume needs NIfTI volumes")
    return loaded


def validate_volumes(
    target: Loaded, context_in: list[Loaded], context_out: list[Loaded], align: str
) -> None:
    """Every check that needs no model: shapes, channels, blank target, alignability."""
    check_context(len(context_in), len(context_out))
    if align not in ALIGN_MODES:
        raise ValueError(f"unknown align {align!r}; choose one of {ALIGN_MODES}")
    if is_blank(target.data):
        raise ValueError(f"{target.name} is blank (constant): there is nothing to predict from")
    for i, (a, b) in enumerate(zip(context_in, context_out, strict=True)):
        if a.data.shape[0] != target.data.shape[0]:
            raise ValueError(
                f"{a.name} has {a.data.shape[0]} channel(s), the target {target.data.shape[0]}"
            )
        if b.data.shape[0] != 1:
            raise ValueError(f"{b.name}: a context output must have one channel")
        if a.spatial_shape != b.spatial_shape or not np.allclose(
            a.image.affine, b.image.affine, atol=1e-3
        ):
            raise ValueError(
                f"context pair {i + 1}: {a.name} {a.spatial_shape} and {b.name} "
                f"{b.spatial_shape} are not on the same grid, so they cannot be aligned"
            )
        if align == "none" and world_overlap(a, target) < _MIN_OVERLAP:
            raise ValueError(
                f"{a.name} does not overlap the target in world coordinates, so it cannot be used "
                "unaligned; use --align affine"
            )


def choose_alignment(align: str) -> str:
    """``align`` back, once SimpleITK is known to be installed if it registers."""
    if align in ("affine", "deformable"):
        try:
            import SimpleITK  # noqa: F401
        except ImportError:
            raise ValueError(
                f"{align} alignment needs SimpleITK: pip install 'neuralizer[data]', or give "
                "context already aligned to the target and --align none"
            ) from None
    return align


def world_overlap(moving: Loaded, target: Loaded) -> float:
    """Fraction of the target's (sampled) non-background voxels inside ``moving``'s view."""
    data = target.data[0]
    step = max(1, min(data.shape) // 24)
    index = np.argwhere(data[::step, ::step, ::step] != data.min()) * step
    if index.size == 0:
        return 0.0
    world = index @ target.image.affine[:3, :3].T + target.image.affine[:3, 3]
    inverse = np.linalg.inv(moving.image.affine)
    voxel = world @ inverse[:3, :3].T + inverse[:3, 3]
    inside = ((voxel > -0.5) & (voxel < np.asarray(moving.spatial_shape) - 0.5)).all(axis=1)
    return float(inside.mean())
