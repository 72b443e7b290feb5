"""Per-pair spatial augmentation: one transform moves every array of a subject together."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neuralizer.tasks.registry import make_task
from neuralizer.tasks.spatial import (
    SpatialConfig,
    SpatialParams,
    mirrored_labels,
    sample_spatial,
    transform_subject,
)


def test_identity_is_a_no_op(subject):
    assert transform_subject(subject, SpatialParams()) is subject
    assert sample_spatial(
        (64, 64), SpatialConfig(enabled=False), np.random.default_rng(0)
    ).is_identity


def test_flip_mirrors_columns_and_swaps_left_and_right_labels(subject):
    flipped = transform_subject(subject, SpatialParams(flip=True, flip_axis=1))
    assert np.array_equal(flipped.tissue, subject.tissue[:, ::-1])
    names = {v: k for k, v in subject.label_names["phantom"].items()}
    mirror, out = subject.labels["phantom"][:, ::-1], flipped.labels["phantom"]
    for left, right in (
        ("Left-White-Matter", "Right-White-Matter"),
        ("Left-Nucleus", "Right-Nucleus"),
    ):
        assert (mirror == names[right]).any()
        assert np.array_equal(out == names[left], mirror == names[right])
        assert np.array_equal(out == names[right], mirror == names[left])
    for name in ("Ventricles", "Cortex"):  # no side: unchanged
        assert np.array_equal(out == names[name], mirror == names[name])
    assert np.array_equal(flipped.brain_mask, subject.brain_mask[:, ::-1])
    assert np.array_equal(flipped.masks["head_brain"], subject.masks["head_brain"][:, ::-1])
    assert np.array_equal(flipped.images["head"], subject.images["head"][:, ::-1])


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({1: "Left-Hippocampus", 2: "Right-Hippocampus", 3: "Brain-Stem"}, {1: 2, 2: 1}),
        ({10: "ctx-lh-insula", 20: "ctx-rh-insula"}, {10: 20, 20: 10}),
        ({5: "GM_Broca_BA44_L", 6: "GM_Broca_BA44_R"}, {5: 6, 6: 5}),
        # Harvard-Oxford's own spelling differs between the twins
        ({3: "Left_Lateral_Ventrical", 4: "Right_Lateral_Ventricle"}, {3: 4, 4: 3}),
        ({7: "Left-Amygdala", 8: "Lateral-Geniculate"}, {}),  # no twin; "Lateral" is no side
    ],
)
def test_mirrored_labels_pairs_each_side_with_its_twin(names, expected):
    assert mirrored_labels(names) == expected


def test_translation_moves_everything_together(subject):
    moved = transform_subject(subject, SpatialParams(translation=(2.0, -3.0)))
    # output pixel o reads source o + t: content moves by -t
    assert np.array_equal(moved.tissue[10:50, 10:50], subject.tissue[12:52, 7:47])
    assert np.array_equal(
        moved.labels["quadrants"][10:50, 10:50], subject.labels["quadrants"][12:52, 7:47]
    )


def test_float_images_move_bilinearly_with_labels(subject):
    image = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    subject = dataclasses.replace(subject, images={"t1": image})
    moved = transform_subject(subject, SpatialParams(translation=(0.5, 0.0)))
    assert moved.images["t1"].dtype == np.float32
    np.testing.assert_allclose(moved.images["t1"][:62], (image[:62] + image[1:63]) / 2, atol=1e-6)
    assert set(np.unique(moved.tissue)) <= set(np.unique(subject.tissue))  # nearest, no blending


def test_random_transform_keeps_labels_consistent(subject, space, rng):
    cfg = SpatialConfig(p_elastic=1.0)
    params = sample_spatial((64, 64), cfg, rng)
    assert params.elastic and not params.is_identity
    moved = transform_subject(subject, params)
    assert moved.tissue.dtype == subject.tissue.dtype
    assert set(np.unique(moved.labels["phantom"])) <= set(np.unique(subject.labels["phantom"]))
    # label map and brain mask are warped by the same map: brain labels stay inside the mask
    assert np.array_equal(moved.labels["phantom"] > 0, moved.brain_mask)
    # and a task renders its pair from the moved subject: the mask follows the anatomy
    task = make_task("skull_stripping", space)
    _, y = task.apply(moved, task.sample(rng))
    assert np.array_equal(y[0], moved.brain_mask.astype(np.float32))
    assert not np.array_equal(moved.brain_mask, subject.brain_mask)


def test_upsample_coarse_equals_cubic_zoom(rng):
    from scipy import ndimage

    from neuralizer.tasks.fields import upsample_coarse

    for grid, shape in (((5, 5), (64, 64)), ((4, 3), (50, 37))):
        coarse = rng.normal(size=grid)
        zoom = [n / g for n, g in zip(shape, grid, strict=True)]
        ref = ndimage.zoom(coarse, zoom, order=3, mode="nearest", grid_mode=True)
        np.testing.assert_allclose(
            upsample_coarse(coarse, shape), ref[: shape[0], : shape[1]], atol=1e-10
        )


def test_warper_matches_scipy_inside_the_image(rng):
    from scipy import ndimage

    from neuralizer.tasks.spatial import Warper

    image = rng.uniform(size=(20, 30))
    labels = rng.integers(0, 5, size=(20, 30)).astype(np.int16)
    coords = np.stack([rng.uniform(0, 19, (20, 30)), rng.uniform(0, 29, (20, 30))])
    warper = Warper(coords, (20, 30))
    np.testing.assert_allclose(warper(image), ndimage.map_coordinates(image, coords, order=1))
    near = warper(labels)
    assert near.dtype == np.int16
    assert np.array_equal(near, ndimage.map_coordinates(labels, coords, order=0))
    outside = Warper(coords + 100, (20, 30))
    assert not outside(image).any() and not outside(labels).any()
