"""Defining properties of the eight task augmentations and of their per-episode application."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neuralizer.tasks.augmentations import (
    AUGMENTATION_NAMES,
    TASK_AUGMENTATIONS,
    Pair,
    apply_task_augmentations,
    sample_task_augmentations,
)
from neuralizer.tasks.augmentations.duplicate_channels import DuplicateChannelsParams
from neuralizer.tasks.augmentations.intensity_mapping import IntensityMappingParams, lookup
from neuralizer.tasks.augmentations.mask_contour import contour
from neuralizer.tasks.augmentations.mask_dilation import dilate, disk
from neuralizer.tasks.augmentations.permute_channels import PermuteChannelsParams
from neuralizer.tasks.augmentations.sobel_filter import SobelFilterParams, sobel_magnitude
from neuralizer.tasks.augmentations.synthetic_modality import SyntheticModalityParams
from neuralizer.tasks.registry import make_task


def _square(n=12, lo=3, hi=8):
    m = np.zeros((n, n), np.float32)
    m[lo:hi, lo:hi] = 1
    return m


def _mask_pair(subject, mask):
    x = np.zeros((3, *mask.shape), np.float32)
    x[0] = np.linspace(0, 1, mask.size).reshape(mask.shape)
    return Pair(x, mask[None].astype(np.float32), subject, seed=1)


def test_eight_augmentations():
    assert len(AUGMENTATION_NAMES) == 8


def test_mask_invert(subject):
    mask = _square()
    out = TASK_AUGMENTATIONS["mask_invert"].apply(_mask_pair(subject, mask), None)
    assert np.array_equal(out.output[0], 1 - mask)


def test_mask_contour_is_one_pixel_boundary(subject):
    mask = _square()  # 5×5 square at rows/cols 3..7
    ring = contour(mask)
    expected = mask.astype(bool).copy()
    expected[4:7, 4:7] = False
    assert np.array_equal(ring, expected) and ring.sum() == 16
    # General property on the phantom's ventricles: every contour pixel touches the outside,
    # every other mask pixel does not.
    m = subject.labels["phantom"] == 3
    ring = contour(m)
    padded = np.pad(m, 1)
    outside_nb = ~(padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    assert np.array_equal(ring, m & outside_nb)
    # image-border pixels of a mask count as boundary
    full = np.ones((4, 4))
    assert contour(full).sum() == 12
    out = TASK_AUGMENTATIONS["mask_contour"].apply(_mask_pair(subject, mask), None)
    assert np.array_equal(out.output[0], contour(mask).astype(np.float32))


def test_mask_dilation_and_erosion():
    point = np.zeros((11, 11))
    point[5, 5] = 1
    assert np.array_equal(dilate(point, 2), np.pad(disk(2), 3))
    assert disk(1).sum() == 5 and disk(2).sum() == 13
    square = _square()
    assert dilate(square, 1).sum() == 25 + 4 * 5
    assert np.array_equal(dilate(square, -1), _square(lo=4, hi=7).astype(bool))
    assert np.array_equal(dilate(square, -3), np.zeros_like(square, bool))


def test_permute_channels(subject):
    x = np.stack([np.full((4, 4), v, np.float32) for v in (1, 2, 3)])
    pair = Pair(x, np.zeros((1, 4, 4), np.float32), subject)
    out = TASK_AUGMENTATIONS["permute_channels"].apply(pair, PermuteChannelsParams((2, 0, 1)))
    assert [out.input[i, 0, 0] for i in range(3)] == [3, 1, 2]
    p = TASK_AUGMENTATIONS["permute_channels"].sample(None, np.random.default_rng(0))
    assert sorted(p.perm) == [0, 1, 2] and p.perm != (0, 1, 2)


def test_duplicate_channels(space, subject, rng):
    task = make_task("inpainting", space)  # channels 0 (image) and 1 (mask) used
    x, y = task.apply(subject, task.sample(rng))
    aug = TASK_AUGMENTATIONS["duplicate_channels"]
    params = aug.sample(task, rng)
    assert params == DuplicateChannelsParams(source=0, targets=(2,))
    out = aug.apply(Pair(x, y, subject), params)
    assert np.array_equal(out.input[2], x[0]) and np.array_equal(out.input[:2], x[:2])
    assert not aug.applies_to(type("Full", (), {"n_input_channels": 3})())


def test_intensity_mapping_curve(subject):
    knots = (0.0, 0.1, 0.5, 1.0)
    values = np.array([0.0, 1 / 3, 2 / 3, 1.0, -0.5, 2.0], np.float32)
    np.testing.assert_allclose(lookup(values, knots), [0.0, 0.1, 0.5, 1.0, 0.0, 1.0], atol=1e-6)
    ramp = np.linspace(0, 1, 200)
    assert np.all(np.diff(lookup(ramp, knots)) >= 0)  # monotonic knots -> monotonic curve
    # target "input" leaves the output alone; on inpainting the mask region stays zero
    x = np.zeros((3, 8, 8), np.float32)
    x[0] = 0.5
    x[1, :4] = 1
    x[0, :4] = 0
    pair = Pair(x, np.full((1, 8, 8), 0.5, np.float32), subject)
    params = IntensityMappingParams((1.0, 1.0), False, "input", (0,), 1)
    out = TASK_AUGMENTATIONS["intensity_mapping"].apply(pair, params)
    assert np.array_equal(out.input[0], np.where(x[1] > 0, 0, 1).astype(np.float32))
    assert np.array_equal(out.output, pair.output) and np.array_equal(out.input[1], x[1])


def test_sobel_filter(subject):
    step = np.zeros((8, 8), np.float32)
    step[:, 4:] = 1
    mag = sobel_magnitude(step)
    assert mag.max() == 1 and mag.min() == 0
    assert np.array_equal(mag.any(axis=0), np.isin(np.arange(8), [3, 4]))
    assert not sobel_magnitude(np.full((5, 5), 0.7)).any()
    pair = Pair(np.stack([step, 0 * step, 0 * step]), step[None], subject)
    out = TASK_AUGMENTATIONS["sobel_filter"].apply(pair, SobelFilterParams("output", (0,), None))
    assert np.array_equal(out.output[0], mag) and np.array_equal(out.input, pair.input)


def test_synthetic_modality_uses_tissue_classes(subject):
    intensities = tuple(np.linspace(0, 1, 13) ** 0.5)
    intensities = (0.0, *intensities[1:])
    params = SyntheticModalityParams(intensities, blur_sigma=0.0, noise_std=0.0, head=True)
    pair = Pair(np.zeros((3, 64, 64), np.float32), np.zeros((1, 64, 64), np.float32), subject)
    out = TASK_AUGMENTATIONS["synthetic_modality"].apply(pair, params)
    expected = np.asarray(intensities, np.float32)[subject.tissue]
    np.testing.assert_allclose(out.input[0], expected, atol=1e-6)
    brain_only = dataclasses.replace(params, head=False)
    out = TASK_AUGMENTATIONS["synthetic_modality"].apply(pair, brain_only)
    assert not out.input[0][~subject.brain_mask].any()


@pytest.mark.parametrize("name", ["segmentation", "denoising", "inpainting", "modality_transfer"])
def test_applicability(name, space):
    task = make_task(name, space)
    applicable = {n for n, a in TASK_AUGMENTATIONS.items() if a.applies_to(task)}
    mask_augs = {"mask_invert", "mask_contour", "mask_dilation"}
    assert (mask_augs <= applicable) == task.segmentation_like
    assert ("synthetic_modality" in applicable) == (name in ("segmentation", "modality_transfer"))


def test_same_augmentation_on_every_pair(space, source, rng):
    """Drawn once per episode: applying the records to two pairs changes both the same way."""
    task = make_task("segmentation", space)
    records = sample_task_augmentations(task, dict.fromkeys(AUGMENTATION_NAMES, 1.0), rng)
    assert [n for n, _ in records] == [n for n in AUGMENTATION_NAMES]  # all apply to seg
    p = task.sample(rng)
    radius = dict(records)["mask_dilation"].radius
    empty_channels = set()
    for i in range(3):
        subj = source.get(i, 0.5)
        x, y = task.apply(subj, task.sample_pair(p, rng))
        out = apply_task_augmentations(Pair(x, y, subj, seed=i), records)
        assert np.array_equal(out.output[0], 1.0 - contour(dilate(y[0], radius)))
        empty_channels.add(tuple(c for c in range(3) if not out.input[c].any()))
    assert len(empty_channels) == 1  # the same channel layout in every pair
