"""Bringing the context pairs onto the target's working grid (the model needs aligned inputs).

- "none": each pair is resampled through its own affine, trusting that it already lies in the
  target's world space (same scanner session, or already registered);
- "affine" (the default): each context input is registered to the target with the importer's
  SimpleITK routine (:func:`neuralizer.data.register.register_affine`: centre-of-mass/moments
  initialisation, so world offsets of hundreds of millimetres and different fields of view do
  not matter, then Mattes mutual information over three resolutions), and the pair is resampled
  through that transform.
  It is the default because sharing the target's grid says nothing about anatomy: scans of other
  subjects on one grid (a protocol's, or a template's) still differ by head position and size,
  and registering already-aligned data costs seconds but does no harm.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neuralizer.data.space import Grid, resample_to_grid
from neuralizer.infer.io import Loaded


def _rescaled(channels: np.ndarray) -> np.ndarray:
    from neuralizer.infer.engine import rescale_channels

    return rescale_channels(channels)


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
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each pair on ``grid``: (input C×X×Y×Z rescaled to [0, 1], output 1×X×Y×Z, user values).

    ``fixed`` is the target's first channel on ``grid`` (the registration's fixed image);
    ``discrete`` outputs (masks, label maps) are resampled by nearest neighbour. ``transforms``
    (world-space, from :func:`register_all`) skips the registration when given for "affine".
    """
    order_out = 0 if discrete else 1
    if mode == "none":
        transforms = [None] * len(context_in)
    elif transforms is None:
        transforms = register_all(fixed, grid.affine, context_in, seed=seed)
    pairs = []
    for pair_in, pair_out, transform in zip(context_in, context_out, transforms, strict=True):
        affine = pair_in.image.affine
        if transform is None:
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
        pairs.append((_rescaled(np.stack(moved_in)), moved_out[None].astype(np.float32)))
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
