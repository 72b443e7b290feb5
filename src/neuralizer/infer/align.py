"""Bringing the target and the context pairs onto one working grid (the model needs aligned inputs).

- "affine" (the default): every scan is registered once, affinely, to the MNI152 common space
  (:func:`neuralizer.data.mni.register_to_mni`: heads to a head template, brains to the brain
  template, robust to poses far from the template's), and the prediction runs on an MNI-aligned
  working grid (:func:`common_working_grid`), sliced as in training. A context pair reaches it
  through the composition of two registrations, example -> MNI -> target
  (:func:`relative_transforms`): L + N registrations for L examples and N targets, not L × N.
  The transforms are cached per file content (:func:`mni_transforms`), so folder mode registers
  each example once.
- "deformable": "affine", then each context pair registered deformably to the target on the
  working grid (:func:`deform_pairs`, the B-spline stage of the atlas baseline,
  :func:`neuralizer.data.register.register_bspline`): the examples' labels then lie close to
  the target's anatomy and the model corrects what the registration missed. It costs L
  registrations per target (and view), which no cache saves.
- "none": each pair is resampled through its own affine onto a grid on the target's world axes,
  trusting that it already lies in the target's world space (same scanner session, or already
  registered; 2D images are never aligned).

:func:`register_all` (each scan registered directly to one fixed image) remains for the demo
and the slice-direction experiment, which register examples to a target of their own.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neuralizer.data.mni import MniTransform, register_all_to_mni
from neuralizer.data.space import (
    CROP_MM,
    CROP_ORIGIN_MM,
    PERCENTILES,
    Grid,
    foreground,
    resample_to_grid,
)
from neuralizer.infer.io import Loaded

#: MNI transforms kept per process (content key -> transform): enough for a folder's examples
#: and the targets in flight, a few hundred bytes each.
CACHE_SIZE = 256
_cache: OrderedDict[str, MniTransform] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached MNI transform (a timing that must include its registrations)."""
    with _cache_lock:
        _cache.clear()


def _rescaled(channels: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    from neuralizer.infer.engine import rescale_channels

    return rescale_channels(channels, percentiles)


def align_context(
    mode: str,
    fixed: np.ndarray,
    grid: Grid,
    context_in: list[Loaded],
    context_out: list[Loaded],
    *,
    discrete: bool,
    seed: int = 0,
    transforms: list | None = None,
    percentiles: tuple[float, float] = PERCENTILES,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each pair on ``grid``: (input C×X×Y×Z rescaled to [0, 1], output 1×X×Y×Z, user values).

    ``fixed`` is the target's first channel on ``grid`` (the registration's fixed image);
    ``discrete`` outputs (masks, label maps) are resampled by nearest neighbour. ``transforms``
    skips the registration when given for "affine": 4×4 maps from the target's world to each
    example's (:func:`relative_transforms`), or SimpleITK transforms from :func:`register_all`.
    ``percentiles``: the model's intensity normalisation (its recorded geometry).
    """
    order_out = 0 if discrete else 1
    if mode == "none":
        transforms = [None] * len(context_in)
    elif transforms is None:
        transforms = register_all(fixed, grid.affine, context_in, seed=seed)
    pairs = []
    for pair_in, pair_out, transform in zip(context_in, context_out, transforms, strict=True):
        affine = pair_in.image.affine
        if isinstance(transform, np.ndarray):  # the grid's points carried into the example
            on_example = Grid(grid.shape, transform @ grid.affine)
            moved_in = [resample_to_grid(c, affine, on_example, order=1) for c in pair_in.data]
            moved_out = resample_to_grid(
                pair_out.data[0], pair_out.image.affine, on_example, order=order_out
            )
        elif transform is None:
            moved_in = [resample_to_grid(c, affine, grid, order=1) for c in pair_in.data]
            moved_out = resample_to_grid(
                pair_out.data[0], pair_out.image.affine, grid, order=order_out
            )
        else:
            from neuralizer.data.register import resample_with_transform

            moved_in = [
                resample_with_transform(c, affine, transform, grid, order=1) for c in pair_in.data
            ]
            moved_out = resample_with_transform(
                pair_out.data[0], affine, transform, grid, order=order_out
            )
        pairs.append(
            (_rescaled(np.stack(moved_in), percentiles), moved_out[None].astype(np.float32))
        )
    return pairs


def register_all(
    fixed: np.ndarray, fixed_affine: np.ndarray, moving: list[Loaded], *, seed: int = 0
) -> list:
    """One affine transform per ``moving`` volume (its first channel) registered to ``fixed``.

    The registrations run side by side on as many threads as torch may use (``--threads``):
    SimpleITK releases the GIL, and each registration is single-threaded inside, so the result
    is the same as one after the other, bit for bit.
    """
    import torch

    from neuralizer.data.register import register_affine, single_threaded_itk

    def one(item: Loaded):
        return register_affine(fixed, fixed_affine, item.data[0], item.image.affine, seed=seed)

    workers = max(1, min(len(moving), torch.get_num_threads()))
    # ITK's thread count is global: hold it at one for the whole pool, not per registration.
    with single_threaded_itk(), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, moving))


def content_key(item: Loaded, seed: int) -> str:
    """SHA-256 of a scan's first channel (its values, shape and type), its affine and ``seed``:
    the same scan, from any file or object, has the same key."""
    data = np.ascontiguousarray(item.data[0])
    digest = hashlib.sha256()
    digest.update(f"{data.shape} {data.dtype} {seed}".encode())
    digest.update(np.asarray(item.image.affine, np.float64).tobytes())
    digest.update(memoryview(data).cast("B"))
    return digest.hexdigest()


def mni_transforms(items: list[Loaded], *, seed: int = 0) -> list[MniTransform]:
    """The :class:`~neuralizer.data.mni.MniTransform` of each scan (its first channel).

    Each distinct scan is registered once per process: transforms are cached by
    :func:`content_key`, so a target that is also an example, or examples shared by the targets
    of a folder, cost one registration. New ones run side by side on as many threads as torch
    may use, stage by stage (:func:`~neuralizer.data.mni.register_all_to_mni`: each stage is
    single-threaded and deterministic). ValueError names the scan that could not be registered.
    """
    import torch

    keys = [content_key(item, seed) for item in items]
    missing: dict[str, Loaded] = {}  # the first scan of each new key, in order
    with _cache_lock:
        for key, item in zip(keys, items, strict=True):
            if key not in _cache:
                missing.setdefault(key, item)

    found: dict[str, MniTransform] = {}
    if missing:
        scans = [(item.data[0], np.asarray(item.image.affine)) for item in missing.values()]
        results = register_all_to_mni(scans, seed=seed, workers=torch.get_num_threads())
        for (key, item), result in zip(missing.items(), results, strict=True):
            if isinstance(result, ValueError):
                raise ValueError(f"{item.name}: {result}") from None
            found[key] = result
        with _cache_lock:
            for key, transform in found.items():
                _cache[key] = transform
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    with _cache_lock:
        return [found[k] if k in found else _cache[k] for k in keys]


def grid_around(
    world: np.ndarray, voxel_size_mm: float, image_size: tuple[int, int], axis: int
) -> Grid:
    """Grid on the world axes at ``voxel_size_mm`` around the points ``world`` (P×3, mm):
    ``image_size`` (H, W) in-plane around their mean, their extent plus 5 voxels along ``axis``."""
    centre = world.mean(axis=0)
    lo, hi = world.min(axis=0), world.max(axis=0)
    in_plane = [a for a in range(3) if a != axis]
    shape = [0, 0, 0]
    shape[in_plane[0]], shape[in_plane[1]] = image_size[1], image_size[0]  # W, H
    shape[axis] = int(math.ceil((hi[axis] - lo[axis]) / voxel_size_mm)) + 5
    centre[axis] = (lo[axis] + hi[axis]) / 2
    affine = np.diag([voxel_size_mm] * 3 + [1.0])
    affine[:3, 3] = centre - voxel_size_mm * (np.asarray(shape) - 1) / 2
    return Grid(shape=tuple(shape), affine=affine)  # type: ignore[arg-type]


def relative_transforms(target: MniTransform, examples: list[MniTransform]) -> list[np.ndarray]:
    """4×4 maps from the target's world to each example's world (RAS, mm): target -> MNI ->
    example, the composition of the two registrations."""
    to_mni = np.linalg.inv(target.matrix)
    return [example.matrix @ to_mni for example in examples]


def common_working_grid(
    target: Loaded,
    to_target: np.ndarray,
    voxel_size_mm: float,
    image_size: tuple[int, int],
    axis: int,
) -> Grid:
    """The working grid on MNI axes, returned with its voxel-to-target-world affine.

    ``to_target`` maps MNI world to the target's world (:attr:`MniTransform.matrix`). The grid
    is the one :func:`grid_around` draws around the target's
    foreground carried into MNI space, restricted to the training crop (the model never saw
    the neck or shoulders below it): ``image_size`` in-plane, the foreground's extent along
    ``axis``, at most :data:`~neuralizer.data.space.CROP_MM` long; its voxel centres lie on
    the common grid's lattice at ``voxel_size_mm``.
    """
    index = np.argwhere(foreground(target.data[0])).astype(np.float64)
    affine = np.asarray(target.image.affine, np.float64)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    from_target = np.linalg.inv(to_target)
    mni = world @ from_target[:3, :3].T + from_target[:3, 3]
    lo = np.asarray(CROP_ORIGIN_MM)
    inside = np.all((mni >= lo) & (mni <= lo + np.asarray(CROP_MM)), axis=1)
    grid = grid_around(mni[inside] if inside.any() else mni, voxel_size_mm, image_size, axis)
    # Voxel centres on the training lattice (the common grid's, at this voxel size): the same
    # head in two poses is then cut at the same places, not half a voxel apart.
    lattice = np.asarray(CROP_ORIGIN_MM) + voxel_size_mm / 2
    snapped = grid.affine.copy()
    steps = np.round((grid.affine[:3, 3] - lattice) / voxel_size_mm)
    snapped[:3, 3] = lattice + steps * voxel_size_mm
    return Grid(grid.shape, to_target @ snapped)


def deform_pairs(
    fixed: np.ndarray,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    voxel_size_mm: float,
    *,
    discrete: bool,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each pair (input C×X×Y×Z, output 1×X×Y×Z, on the working grid) warped onto ``fixed``
    (the target's first channel, X×Y×Z, on the same grid) by a B-spline registration of its
    first input channel; outputs by nearest neighbour when ``discrete``. The registrations run
    side by side on as many threads as torch may use, each single-threaded."""
    import torch

    from neuralizer.data.register import register_bspline, resample_with_transform, to_sitk

    # The grid's own axes (its voxels are cubes of voxel_size_mm, whatever its world affine).
    spacing = np.diag([voxel_size_mm] * 3 + [1.0])
    grid = Grid(tuple(fixed.shape), spacing)  # type: ignore[arg-type]

    def one(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        pair_in, pair_out = pair
        transform = register_bspline(to_sitk(fixed, spacing), to_sitk(pair_in[0], spacing),
                                     seed=seed)  # fmt: skip
        warped_in = [resample_with_transform(c, spacing, transform, grid, order=1)
                     for c in pair_in]  # fmt: skip
        warped_out = resample_with_transform(pair_out[0], spacing, transform, grid,
                                             order=0 if discrete else 1)  # fmt: skip
        return np.stack(warped_in).astype(np.float32), warped_out[None].astype(np.float32)

    from neuralizer.data.register import single_threaded_itk

    workers = max(1, min(len(pairs), torch.get_num_threads()))
    with single_threaded_itk(), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, pairs))
