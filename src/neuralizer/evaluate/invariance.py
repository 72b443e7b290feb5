"""Invariance of predictions to the head's pose (issue 32's acceptance).

A real-anatomy test person (:func:`neuralizer.data.motion.person_scan`, never trained on) is
rendered T1-like, recorded once as it lies and once moved by a known rigid motion (both on 2 mm
LPI grids, :func:`~neuralizer.data.motion.moved_scan`), and a task is predicted on each with the
shipped model and ``align="affine"``. The moved copy's prediction, carried back through the
motion onto the still copy's grid, should agree with the still copy's: the registration to the
common space, not the scanner's coordinates, decides what the model sees.

Tasks are the presets' (examples from the training people): "brain" is skull stripping of the
head, "thalamus" the thalami of the skull-stripped brain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import nibabel as nib
import numpy as np

#: task -> (preset, whether the target is the head with skull)
TASKS = {"brain": ("skullstrip", True), "thalamus": ("thalamus", False)}


@dataclass(frozen=True)
class Invariance:
    """One task's check: Dice of the moved copy's prediction (carried back) with the still
    copy's, the rotation angles found for each, and the seconds the two predictions took."""

    task: str
    dice: float
    still_rotation_deg: float
    moved_rotation_deg: float
    seconds: float


def check_invariance(
    task: str,
    person: int,
    degrees: tuple[float, float, float] = (15.0, 20.0, 0.0),
    shift_mm: tuple[float, float, float] = (8.0, -6.0, 10.0),
    *,
    n_context: int = 2,
    axis: str = "coronal",
    model=None,
) -> Invariance:
    """Predict ``task`` on ``person`` as it lies and moved by ``degrees`` about x, y, z (and
    ``shift_mm``); compare the two predictions on the still copy's grid."""
    import neuralizer
    from neuralizer.data.motion import moved_scan, person_scan, rigid_motion
    from neuralizer.data.people import dice
    from neuralizer.data.space import Grid, resample_to_grid
    from neuralizer.infer.presets import preset_context

    preset, head = TASKS[task]
    image, _, affine = person_scan(person, "t1", head=head)
    motion = rigid_motion(degrees, shift_mm)
    c_in, c_out = preset_context(preset, n_context)
    model = neuralizer.load() if model is None else model
    start = time.perf_counter()
    found, maps = [], []
    for pose in (np.eye(4), motion):
        data, scan_affine = moved_scan(image, affine, pose)
        result = neuralizer.predict_volume(
            nib.Nifti1Image(data, scan_affine), c_in, c_out, model=model, axis=axis
        )
        found.append(result.alignment.rotation_deg)
        maps.append((np.asarray(result.probabilities.dataobj, np.float32), scan_affine))
    seconds = time.perf_counter() - start
    (still, still_affine), (moved, moved_affine) = maps
    # A point p of the still copy lies at motion @ p in the moved one. The probabilities are
    # carried back (trilinear) and thresholded there, as the prediction itself is made on the
    # target's grid: nearest-neighbour steps of a 2 mm mask turned by 25° would count as
    # disagreement.
    back = resample_to_grid(moved, moved_affine, Grid(still.shape, motion @ still_affine), order=1)
    return Invariance(task, dice(back >= 0.5, still >= 0.5), found[0], found[1], seconds)
