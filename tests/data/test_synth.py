"""Synthesis on a small hand-made anatomy: geometry, alignment, determinism (no packages needed)."""

import numpy as np
import pytest

from neuralizer.data.sources import Anatomy
from neuralizer.data.space import common_grid
from neuralizer.data.subjects import SynthConfig, synthesize_subject
from neuralizer.data.synth import (
    DeformationConfig,
    add_extracerebral_layers,
    sample_deformation,
    warp,
)

GRID = common_grid(4.0)  # 48×56×48


def _world(grid):
    index = np.indices(grid.shape, dtype=np.float64).reshape(3, -1)
    return (grid.affine[:3, :3] @ index + grid.affine[:3, 3:4]).reshape(3, *grid.shape)


def _ball(center_mm, radius_mm):
    world = _world(GRID)
    return np.linalg.norm(world - np.asarray(center_mm)[:, None, None, None], axis=0) < radius_mm


def _fake_anatomy() -> Anatomy:
    brain = _ball((0, -16, 10), 60)
    tissue = np.where(brain, 3, 0).astype(np.int16)
    tissue[_ball((0, -16, 10), 20)] = 1
    blob = _ball((25, 10, 30), 12)
    return Anatomy(
        name="fake",
        grid=GRID,
        tissue=tissue,
        brain_mask=brain,
        labels={"blob": blob.astype(np.int32) * 7},
        images={"blob": blob.astype(np.float32)},
        masks={"blob": blob},
    )


def test_translation_moves_pattern_by_the_known_shift():
    blob = _ball((25, 10, 30), 12)
    deformation = sample_deformation(
        DeformationConfig(0, 0, 0, 0, 0), np.random.default_rng(0), center=np.zeros(3)
    )
    shifted = type(deformation)(
        matrix=np.eye(3), translation=np.array([8.0, -4.0, 12.0]),
        elastic_coarse=deformation.elastic_coarse, center=np.zeros(3),
    )  # fmt: skip
    out = warp(blob, shifted.source_points(GRID), GRID, order=0)
    # Output p samples input p + t: the pattern moves by -t = (-2, +1, -3) voxels of 4 mm.
    np.testing.assert_array_equal(out, np.roll(blob, (-2, 1, -3), axis=(0, 1, 2)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_masks_images_stay_aligned_and_land_where_the_transform_says(seed):
    anatomy = _fake_anatomy()
    deformation = sample_deformation(
        DeformationConfig(
            rotation_deg=15, scaling=0.1, shear=0.05, translation_mm=10, elastic_mm=3
        ),
        np.random.default_rng(seed),
        center=np.zeros(3),
    )
    points = deformation.source_points(GRID)
    label = warp(anatomy.labels["blob"], points, GRID, order=0)
    image = warp(anatomy.images["blob"], points, GRID, order=1)
    mask = warp(anatomy.masks["blob"], points, GRID, order=0)
    assert label.dtype == np.int32 and set(np.unique(label)) == {0, 7}
    assert image.dtype == np.float32 and mask.dtype == bool
    np.testing.assert_array_equal(label == 7, mask)
    agree = ((image > 0.5) == mask).mean()
    assert agree > 0.998
    # The warped blob's centroid, mapped through the transform, is the original blob's centre.
    world = _world(GRID)
    centroid = world[:, mask].mean(axis=1)
    source = deformation.map_points(centroid[None], GRID)[0]
    assert np.linalg.norm(source - np.array([25.0, 10.0, 30.0])) < 2.5  # mm, < a voxel


def test_extracerebral_layers_surround_the_brain_in_order():
    anatomy = _fake_anatomy()
    tissue = add_extracerebral_layers(
        anatomy.tissue, anatomy.brain_mask, 4.0, np.random.default_rng(0)
    )
    np.testing.assert_array_equal(tissue[anatomy.brain_mask], anatomy.tissue[anatomy.brain_mask])
    outside = tissue[~anatomy.brain_mask]
    assert {10, 11, 12} <= set(np.unique(outside))  # 1-3 mm of CSF may vanish at 4 mm voxels
    world = _world(GRID)
    radius = np.linalg.norm(world - np.array([0, -16, 10])[:, None, None, None], axis=0)
    mean_radius = {c: radius[tissue == c].mean() for c in (10, 12)}
    assert mean_radius[10] < mean_radius[12]


def test_subject_synthesis_is_deterministic_and_seed_dependent():
    anatomy = _fake_anatomy()
    config = SynthConfig(voxel_size_mm=4.0)
    a = synthesize_subject(anatomy, config, "train", 5)
    b = synthesize_subject(anatomy, config, "train", 5)
    c = synthesize_subject(anatomy, config, "train", 6)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["tissue"], c["tissue"])
    assert a["tissue"].dtype == np.int16 and np.issubdtype(a["labels__blob"].dtype, np.integer)
    assert a["images__blob"].min() >= 0 and a["images__blob"].max() <= 1
