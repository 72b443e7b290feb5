"""Defining properties of the eight task families (issue 5 acceptance)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neuralizer.tasks.base import render_clean
from neuralizer.tasks.denoising import Denoising, bias_field
from neuralizer.tasks.inpainting import Inpainting, inpainting_mask
from neuralizer.tasks.kspace import centre_lines, image_from_kspace, kspace, line_mask
from neuralizer.tasks.modality_transfer import ModalityTransfer
from neuralizer.tasks.motion import (
    MotionCorrection,
    motion_kspace,
    rigid_transform,
    segment_of_lines,
)
from neuralizer.tasks.reconstruction import UndersampledReconstruction, undersampled_kspace
from neuralizer.tasks.registry import TASK_NAMES, make_task
from neuralizer.tasks.segmentation import BinarySegmentation
from neuralizer.tasks.skull_stripping import SkullStripping
from neuralizer.tasks.super_resolution import SuperResolution, degrade_resolution


def test_eight_families():
    assert len(TASK_NAMES) == 8


@pytest.mark.parametrize("name", TASK_NAMES)
def test_encoding_and_replay(name, space, subject, rng):
    task = make_task(name, space)
    params = task.sample_pair(task.sample(rng), rng)
    x, y = task.apply(subject, params)
    assert x.shape == (3, 64, 64) and y.shape == (1, 64, 64)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert not x[task.n_input_channels :].any(), "unused input channels must be zero"
    assert x[0].std() > 0 and y.std() > 0
    x2, y2 = task.apply(subject, params)  # deterministic from params
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_segmentation_is_label_group(space, subject, rng):
    task = BinarySegmentation(space)
    params = dataclasses.replace(task.sample(rng), protocol="phantom", labels=(1, 2))
    _, y = task.apply(subject, params)
    expected = (subject.labels["phantom"] == 1) | (subject.labels["phantom"] == 2)
    assert np.array_equal(y[0], expected.astype(np.float32))


def test_segmentation_groups_left_right_twins(space):
    task = BinarySegmentation(space)
    groups = {task.sample(np.random.default_rng(s)).labels for s in range(300)}
    assert (1, 2) in groups and (4, 5) in groups  # Left/Right-White-Matter, Left/Right-Nucleus
    assert (3,) in groups


def test_segmentation_context_keeps_label(space, rng):
    task = BinarySegmentation(space)
    p = task.sample(rng)
    for _ in range(10):
        q = task.sample_pair(p, rng)
        assert (q.protocol, q.labels) == (p.protocol, p.labels)
        assert q.profile == p.profile or p.mixed_modalities


def test_skull_stripping_head_to_brain(space, subject, rng):
    x, y = SkullStripping(space).apply(subject, SkullStripping(space).sample(rng))
    assert np.array_equal(y[0], subject.brain_mask.astype(np.float32))
    assert x[0][~subject.brain_mask & (subject.tissue > 0)].max() > 0.05  # the skull is visible


def test_modality_transfer_two_profiles(space, subject, rng):
    task = ModalityTransfer(space)
    p = task.sample(rng)
    assert p.profile_in.name != p.profile_out.name
    _, y = task.apply(subject, p)
    out_seed = int(np.random.default_rng(p.seed).integers(2**31, size=2)[1])
    assert np.array_equal(y[0], render_clean(subject, p.profile_out, out_seed))


@pytest.mark.parametrize("interpolation", ["nearest", "linear"])
@pytest.mark.parametrize("factor,axes", [(2, (0,)), (3, (1,)), (4, (0, 1))])
def test_super_resolution_definition(space, subject, rng, factor, axes, interpolation):
    task = SuperResolution(space)
    p = dataclasses.replace(
        task.sample(rng), factor=factor, axes=axes, blur_sigma=0.0, interpolation=interpolation
    )
    x, y = task.apply(subject, p)
    clean = y[0].astype(np.float64)
    # Independent reference: block means (edge-padded), then np.repeat / np.interp back.
    ref = clean
    for axis in axes:
        a = np.moveaxis(ref, axis, 0)
        n = a.shape[0]
        padded = np.concatenate([a, np.repeat(a[-1:], -n % factor, axis=0)])
        coarse = padded.reshape(-1, factor, a.shape[1]).mean(1)
        if interpolation == "nearest":
            fine = np.repeat(coarse, factor, axis=0)[:n]
        else:
            centres = np.arange(coarse.shape[0]) * factor + (factor - 1) / 2
            fine = np.stack(
                [np.interp(np.arange(n), centres, coarse[:, j]) for j in range(a.shape[1])], 1
            )
        ref = np.moveaxis(fine, 0, axis)
    np.testing.assert_allclose(x[0], ref, atol=1e-6)
    assert not np.allclose(x[0], clean, atol=1e-3)


def test_super_resolution_other_axis_untouched(subject, t1):
    clean = render_clean(subject, t1, 5)
    low = degrade_resolution(clean, 2, (0,), 0.0, "nearest")
    # along axis 1 nothing is averaged: each row pair holds the mean of the two rows
    np.testing.assert_allclose(low[0], (clean[0] + clean[1]) / 2, atol=1e-6)
    np.testing.assert_allclose(low[1], low[0])


def test_reconstruction_kspace_exact(space, subject, rng):
    task = UndersampledReconstruction(space)
    for _ in range(4):
        p = task.sample_pair(task.sample(rng), rng)
        x, y = task.apply(subject, p)
        n = subject.shape[p.axis]
        lines = np.array(p.lines)
        n_centre = max(2, round(n * p.centre_fraction))
        assert set(centre_lines(n, n_centre)) <= set(lines)
        assert {0, 1, n - 1} <= set(lines)  # the lowest frequencies
        assert len(lines) == max(round(n / p.acceleration), n_centre)
        k_in = undersampled_kspace(y[0], p.axis, p.lines)
        sampled = line_mask(y[0].shape, p.axis, p.lines)
        k_clean = kspace(y[0])
        assert np.array_equal(k_in[sampled], k_clean[sampled])
        assert not k_in[~sampled].any()
        # the model input is the zero-filled magnitude of exactly that k-space
        np.testing.assert_allclose(x[0], np.abs(image_from_kspace(k_in)), atol=1e-6)
        assert not np.allclose(x[0], y[0], atol=1e-3)


def test_motion_kspace_exact(space, subject, rng):
    task = MotionCorrection(space)
    for _ in range(4):
        p = task.sample_pair(task.sample(rng), rng)
        x, y = task.apply(subject, p)
        clean = y[0]
        k = motion_kspace(clean, p)
        np.testing.assert_allclose(x[0], np.abs(image_from_kspace(k)), atol=1e-6)
        segment = segment_of_lines(clean.shape[p.axis], p.n_segments, p.ordering)
        assert set(segment) == set(range(p.n_segments))
        first = line_mask(clean.shape, p.axis, np.flatnonzero(segment == 0))
        assert np.array_equal(k[first], kspace(clean)[first])
        for s in range(1, p.n_segments):
            moved = kspace(rigid_transform(clean, p.angles_deg[s - 1], p.shifts_px[s - 1]))
            lines = line_mask(clean.shape, p.axis, np.flatnonzero(segment == s))
            assert np.array_equal(k[lines], moved[lines])
            assert not np.allclose(moved[lines], kspace(clean)[lines])


def test_rigid_transform_shift_and_rotation():
    image = np.zeros((9, 9))
    image[4, 4] = 1.0
    image[4, 6] = 1.0
    np.testing.assert_allclose(rigid_transform(image, 0.0, (1.0, -2.0))[5, 2], 1.0)
    rotated = rigid_transform(image, 90.0, (0.0, 0.0))
    assert rotated[4, 4] == pytest.approx(1.0)
    assert rotated[2, 4] + rotated[6, 4] == pytest.approx(1.0)  # (4, 6) moved onto the column


def test_denoising_definition(space, subject, rng):
    task = Denoising(space)
    p = task.sample(rng)
    bias_only = dataclasses.replace(p, mode="bias", noise_std=0.0, bias_strength=0.3)
    bias_only = task.sample_pair(bias_only, rng)
    x, y = task.apply(subject, bias_only)
    field = bias_field(bias_only.bias_coarse, y[0].shape)
    np.testing.assert_allclose(x[0], y[0] * field, atol=1e-6)
    assert field.std() > 0.01 and np.abs(np.diff(field, axis=0)).max() < 0.1  # smooth
    noise_only = dataclasses.replace(
        p, mode="noise", noise_type="gaussian", noise_std=0.1, bias_coarse=((0.0,) * 4,) * 4
    )
    x, y = task.apply(subject, noise_only)
    assert np.std(x[0] - y[0]) == pytest.approx(0.1, rel=0.1)


def test_inpainting_definition(space, subject, rng):
    task = Inpainting(space)
    for kind in ("boxes", "blobs"):
        p = task.sample_pair(dataclasses.replace(task.sample(rng), kind=kind), rng)
        x, y = task.apply(subject, p)
        mask = inpainting_mask(y[0].shape, p)
        assert 0 < mask.mean() < 0.5
        assert np.array_equal(x[1], mask.astype(np.float32))  # the mask is channel index 1
        assert not x[0][mask].any()  # channel 0 is zero inside the mask
        assert np.array_equal(x[0][~mask], y[0][~mask])  # and the image outside it
        assert np.array_equal(y[0], render_clean(subject, p.profile, p.seed))  # output = clean
        assert not x[2].any()


def test_kspace_conventions():
    image = np.full((6, 8), 2.0)
    k = kspace(image)
    assert k[0, 0] == pytest.approx(2.0 * np.sqrt(48)) and np.abs(k).sum() == pytest.approx(
        abs(k[0, 0])
    )  # a constant image has only the DC term
    np.testing.assert_allclose(image_from_kspace(k).real, image)
    mask = line_mask((4, 6), 0, [1])
    assert mask[1].all() and mask.sum() == 6  # axis 0: a line is a row
    mask = line_mask((4, 6), 1, [0, 5])
    assert mask[:, [0, 5]].all() and mask.sum() == 8  # axis 1: a line is a column
    assert list(centre_lines(8, 3)) == [0, 1, 7]  # frequencies 0, +1, -1


def test_motion_segments_layout():
    # unshifted line i sits at fftshift position (i + n/2) % n; segments split that order
    assert list(segment_of_lines(8, 2, "sequential")) == [1, 1, 1, 1, 0, 0, 0, 0]
    assert list(segment_of_lines(8, 2, "interleaved")) == [0, 1, 0, 1, 0, 1, 0, 1]
    assert sorted(np.bincount(segment_of_lines(64, 3, "sequential"))) == [21, 21, 22]


def test_real_images_used_directly(space, subject, rng):
    space = dataclasses.replace(space, real_t1=("t1_brain",), real_heads=(("head", "head_brain"),))
    draws = [space.input_source(np.random.default_rng(s)) for s in range(200)]
    assert all(real in ("", "t1_brain") for _, real in draws)
    assert all(profile.name == "t1" for profile, real in draws if real)
    assert 0 < sum(bool(real) for _, real in draws) < 100

    seg = BinarySegmentation(space)
    p = dataclasses.replace(seg.sample(rng), real_image="t1_brain")
    x, _ = seg.apply(subject, p)
    assert np.array_equal(x[0], subject.images["t1_brain"])
    strip = SkullStripping(space)
    p = dataclasses.replace(strip.sample(rng), real_image="head", real_mask="head_brain")
    x, y = strip.apply(subject, p)
    assert np.array_equal(x[0], subject.images["head"])
    assert np.array_equal(y[0], subject.masks["head_brain"].astype(np.float32))
    motion = MotionCorrection(space)
    _, y = motion.apply(subject, dataclasses.replace(motion.sample(rng), real_image="t1_brain"))
    assert np.array_equal(y[0], subject.images["t1_brain"])  # the clean target is the real image
