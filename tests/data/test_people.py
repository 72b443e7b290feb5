"""The twenty real people: the committed derivative, splits by person, rendering, sampling."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from neuralizer.data.make import SourceConfig
from neuralizer.data.mixed import MixedSliceSource
from neuralizer.data.people import (
    FAILED_ALIGNMENT,
    MIN_ALIGNMENT_DICE,
    N_PEOPLE,
    PEOPLE_DIR,
    PEOPLE_SPLITS,
    import_label_maps,
    load_person,
)
from neuralizer.data.real import PEOPLE_PROTOCOLS, PeopleConfig, PeopleSliceSource
from neuralizer.data.render import (
    HEAD_TISSUE_CLASSES,
    REAL_STRUCTURE_CLASSES,
    apply_render,
    sample_profile,
    sample_render_params,
)
from neuralizer.data.subjects import SynthConfig, SynthSliceSource
from neuralizer.evaluate.config import EvalConfig
from neuralizer.evaluate.sets import build_instances, make_sources
from neuralizer.infer.presets import MAX_EXAMPLES, example_indices
from neuralizer.tasks.sampler import EpisodeSampler, SamplerConfig
from neuralizer.tasks.spatial import mirrored_labels
from neuralizer.train.config import TrainConfig
from neuralizer.train.data import _sources

ORIGINALS = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthseg-label-maps"
CONFIG = PeopleConfig(voxel_size_mm=4.0)


@pytest.fixture(scope="module")
def train(shared_cache):
    return PeopleSliceSource("train", 14, CONFIG, cache_dir=shared_cache)


def test_splits_are_by_person_and_cover_everyone():
    splits = {k: set(v) for k, v in PEOPLE_SPLITS.items()}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [13, 2, 4]
    assert set.union(*splits.values()) | set(FAILED_ALIGNMENT) == set(range(1, N_PEOPLE + 1))
    assert (
        not splits["train"] & splits["val"]
        and not (splits["train"] | splits["val"]) & (splits["test"])
    )
    assert 20 in splits["train"]  # the cropped field of view never gives a test truth
    with pytest.raises(ValueError, match="test people"):
        PeopleConfig(people={"train": (1, 5), "val": (8,), "test": (10,)})


def test_test_people_never_reach_training_or_validation(shared_cache, monkeypatch):
    monkeypatch.setenv("NEURALIZER_CACHE", str(shared_cache))
    source = SourceConfig(voxel_size_mm=4.0, people_fraction=0.5)
    cfg = TrainConfig(source=source, n_train_subjects=20, n_val_subjects=5)
    for split, source in zip(("train", "val"), _sources(cfg), strict=True):
        assert isinstance(source, MixedSliceSource) and set(source.parts) == {"mni152", "people"}
        people = source.parts["people"]
        seen = {people.person(i) for i in range(len(people))}
        # Training sees only training people, validation only validation people.
        assert seen == set(PEOPLE_SPLITS[split])
        assert not seen & set(PEOPLE_SPLITS["test"])


def test_committed_derivative_loads_without_the_originals(train):
    labels = json.loads((PEOPLE_DIR / "labels.json").read_text())
    dice = {int(k): v for k, v in labels["alignment_dice"].items()}
    assert sorted(dice) == list(range(1, N_PEOPLE + 1))
    assert labels["failed_alignment"] == sorted(FAILED_ALIGNMENT) == [16]
    assert all(dice[n] < MIN_ALIGNMENT_DICE for n in FAILED_ALIGNMENT)
    assert min(v for n, v in dice.items() if n not in FAILED_ALIGNMENT) >= MIN_ALIGNMENT_DICE
    with pytest.raises(ValueError, match="failed the alignment check"):
        load_person(16)
    aseg, fov = load_person(1)
    assert aseg.shape == (192, 224, 192) and fov.dtype == bool
    assert {2, 17, 41, 53, 502} <= set(np.unique(aseg).tolist())
    with pytest.raises(ValueError, match="numbered 1 to 20"):
        load_person(21)


def test_people_differ_and_render_as_heads_under_every_contrast(train):
    a, b = train.get(0, 0.5), train.get(1, 0.5)
    assert a.subject_id.startswith("person-01/") and b.subject_id.startswith("person-02/")
    assert set(a.labels) == set(PEOPLE_PROTOCOLS) and a.render_classes is not None
    assert not np.array_equal(a.labels["aseg"], b.labels["aseg"])
    head = (a.render_classes > 0) & ~a.brain_mask
    assert head.sum() > 50  # skull, scalp and the rest around the brain
    rng = np.random.default_rng(0)
    for name in ("t1", "t2", "pd", "flair", "synthetic"):
        profile = sample_profile(name, rng)
        params = sample_render_params(np.random.default_rng(1))
        with_head = apply_render(a, profile, params, head=True)
        brain_only = apply_render(a, profile, params)
        assert with_head[head].mean() > 0.02, name
        assert np.all(brain_only[~a.brain_mask] == 0)


def test_real_structures_keep_real_intensity_order():
    rng = np.random.default_rng(3)
    for _ in range(20):
        t1 = sample_profile("t1", rng).intensities
        thalamus, caudate = (t1[REAL_STRUCTURE_CLASSES[k]] for k in ("thalamus", "caudate"))
        wm, cortex = (t1[REAL_STRUCTURE_CLASSES[k]] for k in ("cerebral white matter",
                                                               "cerebral cortex"))  # fmt: skip
        assert cortex < thalamus < wm  # thalamus near white matter
        assert abs(caudate - cortex) < abs(caudate - wm)  # caudate near cortex
        fat, bone = t1[HEAD_TISSUE_CLASSES[530]], t1[HEAD_TISSUE_CLASSES[506]]
        assert fat > bone
    # The real classes come from a spawned generator: the caller's stream is unchanged.
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    sample_profile("t2", r1)
    r2.normal(0.0, 0.04, 13)
    assert r1.random() == r2.random()


def test_flip_swaps_left_and_right_aseg_labels():
    table = mirrored_labels(PEOPLE_PROTOCOLS["aseg"])
    assert table[17] == 53 and table[53] == 17 and table[10] == 49 and table[2] == 41
    assert 16 not in table and 24 not in table  # brainstem and CSF have no side


def test_mixed_episodes_keep_target_and_context_of_one_kind(train, shared_cache):
    mni = SynthSliceSource("train", 3, SynthConfig(voxel_size_mm=4.0), cache_dir=shared_cache)
    mixed = MixedSliceSource({"mni152": mni, "people": train})
    config = SamplerConfig(batch_size=4, max_context=3, source_weights={"mni152": 1, "people": 3})
    sampler = EpisodeSampler(mixed, config)
    kinds = []
    for i in range(6):
        for record in sampler.batch(i).records:
            parts = {mixed.locate(p.subject_index)[0] for p in (record.target, *record.context)}
            assert len(parts) == 1
            kinds.append(parts.pop())
            if record.task == "skull_stripping":
                indices = {p.subject_index for p in (record.target, *record.context)}
                assert not indices & mixed.excluded("skull_stripping")
    assert 0.5 < kinds.count("people") / len(kinds) < 0.95


@pytest.mark.slow
@pytest.mark.skipif(not ORIGINALS.is_dir(), reason="../shared/data/synthseg-label-maps absent")
def test_committed_derivative_matches_the_import_command():
    # Two people here (one of them the cropped one); every person: `neuralizer data
    # import-label-maps ../shared/data/synthseg-label-maps --check` (docs/data.md).
    report = import_label_maps(ORIGINALS, PEOPLE_DIR, people=[5, 20], check=True, progress=False)
    for entry in report.values():
        assert entry["equal"] >= 0.999 and entry["dice"] >= MIN_ALIGNMENT_DICE


def test_people_evaluation_set_targets_test_people_with_context_from_the_others(
    shared_cache, monkeypatch, tmp_path
):
    monkeypatch.setenv("NEURALIZER_CACHE", str(shared_cache))
    config = EvalConfig(
        name="people", output=str(tmp_path / "p.csv"), tasks=("segmentation",),
        source=SourceConfig(kind="people", voxel_size_mm=4.0), n_targets=2, pool_split="train",
        pool_size=16, per_class=3,
        class_protocol="aseg", structures=("brain_mask",), context_sizes=(1, 16),
        methods=("mean",),
    )  # fmt: skip
    targets, pool, first = make_sources(config)
    assert {targets.person(i) for i in range(2)} <= set(PEOPLE_SPLITS["test"])
    pool_people = [pool.person(first + i) for i in range(16)]
    # One person per pair for the first 15 pairs (every training and validation person).
    assert sorted(pool_people[:15]) == sorted(PEOPLE_SPLITS["train"] + PEOPLE_SPLITS["val"])
    instances = build_instances(config, "segmentation", 0)
    assert [i.label for i in instances][-1] == "brain_mask" and len(instances) == 4
    for instance in instances:
        assert instance.target_in.shape == (2, 3, 48, 48) and instance.pool_in.shape[0] == 16
        assert instance.target_out.max() == 1.0  # the structure is on the slice
    assert all(i.protocol == "aseg" for i in instances[:3])
    with pytest.raises(ValueError, match="pool_split 'train'"):
        dataclasses.replace(config, pool_split="test")


def test_presets_draw_distinct_training_people_and_skull_stripping_skips_the_crop(train):
    indices = example_indices("skullstrip", train, MAX_EXAMPLES)
    people = [train.person(i) for i in indices]
    assert len(set(people)) == MAX_EXAMPLES and set(people) <= set(PEOPLE_SPLITS["train"])
    assert train.excluded("skull_stripping") == frozenset(
        i for i in range(len(train)) if train.person(i) == 3
    )  # person 3: its field of view ends at the brainstem inside the grid
    assert 3 not in people and 3 in {train.person(i) for i in example_indices("thalamus", train, 3)}
