"""Real anatomy from the installed packages, at 4 mm so that the suite stays fast."""

import json

import numpy as np
import pytest

from neuralizer.data.cache import read_checked, write_entry
from neuralizer.data.sources import HELDOUT_PROTOCOLS, TRAIN_PROTOCOLS, load_protocol
from neuralizer.data.space import common_grid
from neuralizer.data.subjects import SynthConfig, SynthSliceSource, anatomy_id, subject_seed

CONFIG = SynthConfig(voxel_size_mm=4.0)


@pytest.fixture(scope="module")
def cache_dir(shared_cache):
    return shared_cache


@pytest.fixture(scope="module")
def train(cache_dir):
    return SynthSliceSource("train", 3, CONFIG, cache_dir=cache_dir)


def test_common_grid_sizes():
    assert common_grid(1.0).shape == (192, 224, 192)
    assert common_grid(2.0).shape == (96, 112, 96)
    with pytest.raises(ValueError, match="must divide"):
        common_grid(3.0)


def test_slices_types_ranges_and_alignment(train):
    for position in (0.0, 0.1, 0.3, train.paper_position(0), 0.9, 1.0):
        s = train.get(0, position)
        assert s.shape == (48, 48) and s.voxel_size_mm == 4.0
        assert s.tissue.dtype == np.int16 and s.brain_mask.dtype == bool
        assert set(s.labels) == set(TRAIN_PROTOCOLS)
        for labels in s.labels.values():
            assert np.issubdtype(labels.dtype, np.integer)
        assert {"t1_brain", "head"} <= set(s.images)
        for image in s.images.values():
            assert image.dtype == np.float32 and image.min() >= 0 and image.max() <= 1
        if position in (0.0, 1.0):
            continue  # 4 mm partial volume at the poles
        # Parcellations and the real T1 brain lie inside the (slightly dilated) brain mask.
        near_brain = s.brain_mask | (s.tissue == 9)
        dk = s.labels["desikan_killiany"] > 0
        assert dk.sum() < 20 or (dk & near_brain).sum() / dk.sum() > 0.97
        t1 = s.images["t1_brain"] > 0.1
        assert t1.sum() < 20 or (t1 & s.brain_mask).sum() / t1.sum() > 0.9
    assert 0.3 < train.paper_position(0) < 0.7


def test_same_seed_same_subject_and_cache_roundtrip(train, cache_dir):
    again = SynthSliceSource("train", 3, CONFIG, cache_dir=cache_dir)
    a, b = train.get(1, 0.5), again.get(1, 0.5)
    np.testing.assert_array_equal(a.tissue, b.tissue)
    np.testing.assert_array_equal(a.images["head"], b.images["head"])
    c = train.get(2, 0.5)
    assert not np.array_equal(a.tissue, c.tissue)
    # Rebuilding from scratch (no cache entry) gives the same arrays bit for bit.
    path = train.root / f"train-{subject_seed('train', 1)}"
    cached = {k: np.array(v) for k, v in read_checked(path, train.key)[0].items()}
    write_entry(path, {"tissue": cached["tissue"]}, {"key": "stale"})
    rebuilt = SynthSliceSource("train", 3, CONFIG, cache_dir=cache_dir).volumes(1)[0]
    assert rebuilt.keys() == cached.keys()
    for name, array in cached.items():
        np.testing.assert_array_equal(rebuilt[name], array)


def test_splits_are_disjoint():
    seeds = {s: {subject_seed(s, i) for i in range(100_000)} for s in ("train", "val", "test")}
    assert not seeds["train"] & seeds["val"] and not seeds["train"] & seeds["test"]
    assert not seeds["val"] & seeds["test"]
    # Test subjects also have anatomies (deformation fields) that no training subject uses.
    anatomies = {s: {anatomy_id(CONFIG, s, seed) for seed in seeds[s]} for s in seeds}
    assert not (anatomies["train"] | anatomies["val"]) & anatomies["test"]


def test_heldout_protocols_never_reach_training(train, cache_dir):
    grid = common_grid(4.0)
    for protocol in HELDOUT_PROTOCOLS:
        with pytest.raises(ValueError, match="held-out"):
            load_protocol(protocol, grid)
    heldout_config = SynthConfig(voxel_size_mm=4.0, protocols=("aal",))
    for split in ("train", "val"):
        with pytest.raises(ValueError, match="held-out"):
            SynthSliceSource(split, 2, heldout_config, cache_dir=cache_dir, evaluation=True)
    manifests = list(cache_dir.glob("subjects-*/manifest-train/meta.json"))
    assert manifests
    for manifest in manifests:
        text = json.loads(manifest.read_text())
        assert set(text["config"]["protocols"]) <= set(TRAIN_PROTOCOLS)
        assert not any(p in manifest.read_text() for p in HELDOUT_PROTOCOLS)
    # For evaluation they load, as integer maps on the common grid.
    aal = load_protocol("aal", grid, evaluation=True)
    assert aal.shape == grid.shape and np.issubdtype(aal.dtype, np.integer) and aal.max() > 0


def test_other_slice_axes(train, cache_dir):
    axial = SynthSliceSource("train", 3, CONFIG, axis="axial", cache_dir=cache_dir).get(0, 0.5)
    sagittal = SynthSliceSource("train", 3, CONFIG, axis="sagittal", cache_dir=cache_dir).get(
        0, 0.5
    )
    assert axial.shape == (56, 48) and sagittal.shape == (48, 56)
    assert axial.brain_mask.mean() > 0.2 and sagittal.brain_mask.mean() > 0.2
    with pytest.raises(ValueError, match="unknown axis"):
        SynthSliceSource("train", 3, CONFIG, axis="oblique", cache_dir=cache_dir)
