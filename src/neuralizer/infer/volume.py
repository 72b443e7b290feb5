"""``neuralizer.predict_volume``: 3D NIfTI volumes, slice by slice, in the target's native space.

The target defines a *working grid*: isotropic at the model's voxel size, the model's H×W field
of view in-plane centred on the target's foreground, and along the slice axis just the
foreground's extent. With ``align="affine"`` (the default) its axes are those of the MNI152
common space, found by registering every scan once to it (:mod:`neuralizer.infer.align`), so
slices are canonical coronal, axial or sagittal slices as in training, whatever the head's pose;
with ``align="none"`` they are the target's world (RAS) axes. Every volume is resampled onto it
through its own affine (so any orientation works) composed with its registration, predicted
slice by slice (slices batched), and the maps are resampled back onto the target's original
grid and header. Slices follow the training convention of
``neuralizer.data.subjects``: superior (anterior for axial) at the top, x running left to right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from neuralizer.data.space import Grid, foreground, resample_to_grid
from neuralizer.infer.adapt import (
    AdaptConfig,
    Adapted,
    adapt_model,
    adaptation_steps,
    plan_adaptation,
)
from neuralizer.infer.align import (
    align_context,
    common_working_grid,
    deform_pairs,
    grid_around,
    mni_transforms,
    relative_transforms,
)
from neuralizer.infer.engine import (
    PredictResult,
    model_geometry,
    predict_maps,
    rescale_channels,
    resolve_model,
)
from neuralizer.infer.io import Loaded, nifti_like
from neuralizer.infer.plan import ALL_VIEWS, AXES, PredictPlan, plan_given, plan_volumes
from neuralizer.infer.resources import check_prediction
from neuralizer.model.network import Neuralizer


def to_slices(volume: np.ndarray, axis: int) -> np.ndarray:
    """…×X×Y×Z (RAS) -> N×…×H×W slices along ``axis`` (superior/anterior up)."""
    lead = volume.ndim - 3
    moved = np.moveaxis(volume, lead + axis, 0)  # N×…×A×B, A/B the in-plane axes in order
    return np.ascontiguousarray(np.swapaxes(moved, -1, -2)[..., ::-1, :])


def from_slices(slices: np.ndarray, axis: int) -> np.ndarray:
    """Inverse of :func:`to_slices` for N×H×W slices -> X×Y×Z."""
    return np.moveaxis(np.swapaxes(slices[..., ::-1, :], -1, -2), 0, axis)


def working_grid(
    target: Loaded, voxel_size_mm: float, image_size: tuple[int, int], axis: int
) -> Grid:
    """RAS grid at ``voxel_size_mm``: ``image_size`` in-plane around the foreground's centre of
    mass, the foreground's extent (plus a few voxels of margin) along ``axis``."""
    mask = foreground(target.data[0])
    index = np.argwhere(mask).astype(np.float64)
    world = index @ target.image.affine[:3, :3].T + target.image.affine[:3, 3]
    return grid_around(world, voxel_size_mm, image_size, axis)


def resample_channels(loaded: Loaded, grid: Grid, order: int = 1) -> np.ndarray:
    """C×X×Y×Z of ``loaded`` on ``grid`` (trilinear, or nearest for ``order=0``)."""
    return np.stack(
        [resample_to_grid(c, loaded.image.affine, grid, order=order) for c in loaded.data]
    ).astype(np.float32)


def predict_volume(
    target: Any,
    context_in: Sequence[Any] | None = None,
    context_out: Sequence[Any] | None = None,
    *,
    model: Neuralizer | str | Path | None = None,
    task: str = "auto",
    labels: Sequence[int] | str | None = None,
    ensemble: int = 1,
    axis: str = "coronal",
    align: str = "affine",
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 8,
    progress: bool = False,
    max_memory: float | str | None = None,
    adapt: int = 0,
) -> PredictResult:
    """Predict a 3D result for ``target`` from L example volume pairs, slice by slice.

    Args:
        target: NIfTI path (``a.nii.gz+b.nii.gz`` joins channels) or nibabel image, X×Y×Z or
            X×Y×Z×C with C ≤ 3, any orientation, resolution and intensity range; or a volume
            :class:`~neuralizer.infer.plan.PredictPlan` (checked already: the context and every
            option but ``model`` and ``progress`` come from it).
        context_in, context_out: L volumes each (paths or images); each pair on one grid.
        model, task, labels, ensemble, seed, device: as in :func:`neuralizer.predict`.
        axis: slice direction, "coronal" (the training default), "axial" or "sagittal"; or
            "all": the three directions in turn (one registration), their maps averaged, which
            is more accurate for small structures and takes three times the prediction time.
        align: "affine" (the default: register the target and each context input once to the
            MNI152 common space, and predict on MNI-aligned slices), or "none" (trust that the
            context already lies in the target's world space; slices on its world axes), or
            "deformable": "affine", then each context pair registered deformably (B-spline) to
            the target on the working grid, L more registrations per target and view.
        batch_size: target slices per forward pass. progress: show a progress bar.
        max_memory: bytes (or "8G", "inf") one forward pass may use, as in :func:`predict`.
        adapt: K > 0 fine-tunes a copy of the model for K steps on 2D slices of the context
            volumes, drawn on the working grid once per call (:mod:`neuralizer.infer.adapt`),
            then predicts every slice with it; it needs 2 pairs or more.

    Returns:
        :class:`PredictResult` whose ``prediction`` (and ``uncertainty``, ``probabilities``) are
        NIfTI images on the target's grid with its affine, qform/sform codes and header.
    """
    options = dict(
        task=task, labels=labels, ensemble=ensemble, axis=axis, align=align, seed=seed,
        device=device, batch_size=batch_size, max_memory=max_memory, adapt=adapt,
    )  # fmt: skip
    plan = plan_given(target, context_in, context_out, options, plan_volumes)
    if not plan.volumetric:
        raise ValueError("this plan is of 2D images: call neuralizer.predict with it")
    net = resolve_model(model, plan.options.device)  # only after every check of the user's data
    return predict_plan_volume(plan, net, progress=progress)


def predict_plan_volume(plan: PredictPlan, net: Neuralizer, *, progress: bool = False):
    """The :class:`PredictResult` of a checked volume ``plan`` with the ready model ``net``."""
    options, outputs, target_l = plan.options, plan.outputs, plan.target
    c_in, c_out = list(plan.context_in), list(plan.context_out)
    geometry = model_geometry(net)
    views = ALL_VIEWS if options.axis == "all" else (options.axis,)
    check_prediction(plan, net)  # the resource plan, before any working array exists
    seed = options.seed
    adapt_config = plan_adaptation(net, options, len(c_in), geometry.image_size)
    aligned = aligned_views(target_l, c_in, c_out, options.align, seed, geometry, views,
                            discrete=outputs.kind != "image")  # fmt: skip
    grids, works, all_pairs = aligned.grids, aligned.works, aligned.pairs
    steps = list(aligned.steps)
    adapted = None
    if adapt_config is not None:
        axes = [AXES[v] for v in views]
        adapted = adapt_on_slices(net, outputs, works, all_pairs, axes, adapt_config, progress)
        net = adapted.model
    per_view = []
    for view, grid, target_work, pairs in zip(views, grids, works, all_pairs, strict=True):
        maps, spread = _predict_on_grid(net, outputs, target_work, pairs, AXES[view],
                                        options.ensemble, seed, options.batch_size,
                                        progress)  # fmt: skip
        per_view.append((_to_target(maps, grid, target_l), _to_target(spread, grid, target_l)))
    back, back_spread = fuse_views(per_view)
    result, uncertainty, probabilities = outputs.finish(np.clip(back, 0, 1), back_spread)
    steps.append(f"resampled back onto the target grid {target_l.spatial_shape}")
    if len(views) > 1:
        steps.append(f"averaged the {len(views)} views' maps")
    steps += adaptation_steps(options, len(c_in), adapted)
    steps.append(f"{outputs.kind}: {len(c_in)} context pairs, ensemble {options.ensemble}")
    reference = target_l.image
    return PredictResult(
        nifti_like(result, reference), _nifti_or_none(uncertainty, reference),
        _nifti_or_none(probabilities, reference), outputs.kind, outputs.label_values,
        tuple(steps), adapt_seconds=None if adapted is None else adapted.seconds,
        alignment=aligned.alignment,
    )  # fmt: skip


@dataclass(frozen=True)
class AlignedViews:
    """The target and its context pairs on each view's working grid: the grids, the target's
    rescaled channels on each (C×X×Y×Z), the (input, output) pairs on each, the target's MNI
    transform (None for ``align="none"``) and the lines the result's steps say of them."""

    grids: list[Grid]
    works: list[np.ndarray]
    pairs: list[list[tuple[np.ndarray, np.ndarray]]]
    alignment: Any
    steps: tuple[str, ...]


def aligned_views(
    target: Loaded,
    c_in: list[Loaded],
    c_out: list[Loaded],
    mode: str,
    seed: int,
    geometry,
    views: Sequence[str],
    *,
    discrete: bool,
    deform=None,
) -> AlignedViews:
    """The working grid of each of ``views`` and the target and context pairs resampled onto it,
    aligned by ``mode`` ("none", "affine" or "deformable"); ``deform`` stands in for
    :func:`~neuralizer.infer.align.deform_pairs` (the deformable stage)."""
    grids, transforms, alignment = working_grids(target, c_in, mode, seed, geometry, views)
    space = "RAS" if alignment is None else "MNI152-aligned"
    percentiles = geometry.percentiles  # the intensity normalisation the model was trained with
    works = [rescale_channels(resample_channels(target, grid), percentiles) for grid in grids]
    steps = [f"working grid {g.shape} at {geometry.voxel_size_mm:g} mm ({space}), {v} slices"
             for v, g in zip(views, grids, strict=True)]  # fmt: skip
    steps += [f"alignment: {mode}"]
    if alignment is not None:
        steps += [f"target to MNI152: {alignment.describe()}"]
    all_pairs = [
        align_context("none" if transforms is None else "affine", work[0], grid, c_in, c_out,
                      discrete=discrete, seed=seed, transforms=transforms, percentiles=percentiles)
        for grid, work in zip(grids, works, strict=True)
    ]  # fmt: skip
    if mode == "deformable":
        deform = deform or deform_pairs
        all_pairs = [
            deform(work[0], pairs, geometry.voxel_size_mm, discrete=discrete, seed=seed)
            for work, pairs in zip(works, all_pairs, strict=True)
        ]
        steps += [f"deformable: {len(c_in)} B-spline registrations per view"]
    return AlignedViews(grids, works, all_pairs, alignment, tuple(steps))


def working_grids(
    target: Loaded, context_in: list[Loaded], mode: str, seed: int, geometry, views: Sequence[str]
) -> tuple[list[Grid], list[np.ndarray] | None, Any]:
    """The working grid of each view, the 4×4 maps from the target's world to each example's
    (None for ``mode`` "none") and the target's MNI transform (None for "none").

    "affine" and "deformable" register the target and every example once to MNI152 (cached
    per content) and compose; the grids lie on MNI's axes."""
    voxel_size_mm, image_size = geometry.voxel_size_mm, geometry.image_size
    if mode == "none":
        return [working_grid(target, voxel_size_mm, image_size, AXES[v]) for v in views], None, None
    alignment, *examples = mni_transforms([target, *context_in], seed=seed)
    grids = [common_working_grid(target, alignment.matrix, voxel_size_mm, image_size, AXES[v])
             for v in views]  # fmt: skip
    return grids, relative_transforms(alignment, examples), alignment


def adapt_on_slices(
    net: Neuralizer,
    outputs,
    works: list[np.ndarray],
    all_pairs: list[list[tuple[np.ndarray, np.ndarray]]],
    axes: list[int],
    config: AdaptConfig,
    progress: bool,
) -> Adapted:
    """Adapt ``net`` on 2D slices of the context pairs on each view's working grid (``works``:
    the target on each grid, whose non-blank slices are the positions episodes draw from)."""
    pairs_in, maps, positions, offset = [], [], [], 0
    for target_work, pairs, axis in zip(works, all_pairs, axes, strict=True):
        slices = to_slices(target_work, axis)
        positions.append(offset + np.flatnonzero(slices.reshape(len(slices), -1).max(axis=1) > 0))
        offset += len(slices)
        pairs_in.append(np.stack([to_slices(a, axis) for a, _ in pairs], axis=1))
        context_out = np.stack([to_slices(b, axis) for _, b in pairs])  # L×N×1×H×W
        maps.append([np.moveaxis(m, 0, 1) for m in outputs.targets(context_out)])
    return adapt_model(
        net, np.concatenate(pairs_in), [np.concatenate(m) for m in zip(*maps, strict=True)],
        outputs.kind != "image", config, positions=np.concatenate(positions), progress=progress,
    )  # fmt: skip


def fuse_views(
    per_view: list[tuple[np.ndarray, np.ndarray | None]],
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean maps of several views, and the s.d. over all their passes (None without ensembles).

    Each view's K passes have mean m_v and s.d. s_v; pooled, the V·K passes have mean m = mean(m_v)
    and variance mean(s_v² + m_v²) − m², the spread within views plus the spread between them.
    """
    maps = np.mean([m for m, _ in per_view], axis=0)
    if per_view[0][1] is None:
        return maps, None
    second = np.mean([s.astype(np.float64) ** 2 + m.astype(np.float64) ** 2 for m, s in per_view],
                     axis=0)  # fmt: skip
    return maps, np.sqrt(np.maximum(second - maps.astype(np.float64) ** 2, 0)).astype(np.float32)


def _to_target(maps: np.ndarray | None, grid: Grid, target: Loaded) -> np.ndarray | None:
    """M×… maps on the working ``grid`` resampled (trilinear) onto the target's own grid."""
    if maps is None:
        return None
    out_grid = Grid(shape=target.spatial_shape, affine=target.image.affine)  # type: ignore[arg-type]
    return np.stack([resample_to_grid(m, grid.affine, out_grid, order=1) for m in maps])


def _nifti_or_none(data: np.ndarray | None, reference: nib.Nifti1Image) -> nib.Nifti1Image | None:
    """``data`` (X×Y×Z, or M×X×Y×Z stored as X×Y×Z×M) as a NIfTI image like ``reference``."""
    if data is None:
        return None
    return nifti_like(np.moveaxis(data, 0, -1) if data.ndim == 4 else data, reference)


def _predict_on_grid(
    net: Neuralizer,
    plan,
    target_work: np.ndarray,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    axis: int,
    ensemble: int,
    seed: int,
    batch_size: int,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """M×X×Y×Z maps (and s.d.) on the working grid; blank target slices are not run (zero)."""
    from tqdm.auto import tqdm

    slices = to_slices(target_work, axis)  # N×C×H×W
    active = np.flatnonzero(slices.reshape(len(slices), -1).max(axis=1) > 0)
    context_in = np.stack([to_slices(a, axis)[active] for a, _ in pairs], axis=1)
    context_out = np.stack([to_slices(b, axis)[active] for _, b in pairs], axis=1)
    total = len(active) * ensemble * plan.n_maps
    with tqdm(total=total, unit="slice", disable=not progress, leave=False) as bar:
        maps_a, spread_a = predict_maps(
            net, plan, torch.from_numpy(slices[active]), torch.from_numpy(context_in),
            context_out, ensemble=ensemble, seed=seed, batch_size=batch_size, step=bar.update,
        )  # fmt: skip
    shape = (plan.n_maps, len(slices), *slices.shape[-2:])
    maps = np.zeros(shape, np.float32)
    maps[:, active] = maps_a
    volumes = np.stack([from_slices(m, axis) for m in maps])
    if spread_a is None:
        return volumes, None
    spread = np.zeros(shape, np.float32)
    spread[:, active] = spread_a
    return volumes, np.stack([from_slices(s, axis) for s in spread])
