"""The pieces of the shipped model's acceptance run: identity baseline, training-like episodes,
tissue-level structures and per-class labels of a chosen protocol, the acceptance table."""

import dataclasses

import numpy as np
import pytest

from neuralizer.data.phantom import PhantomSource
from neuralizer.evaluate import EvalConfig, identity_baseline, run
from neuralizer.evaluate.metrics import score
from neuralizer.evaluate.report import acceptance_checks, acceptance_table
from neuralizer.evaluate.results import read_rows
from neuralizer.evaluate.sets import build_instances, make_sampler
from neuralizer.tasks.base import source_image
from neuralizer.tasks.denoising import corrupt
from neuralizer.tasks.episode import PairRecord, make_pair
from neuralizer.tasks.registry import TASK_NAMES
from neuralizer.tasks.sampler import EpisodeSampler, SamplerConfig
from neuralizer.tasks.spatial import SpatialParams


def _config(tmp_path, **changes) -> EvalConfig:
    values = dict(
        name="acc", output=str(tmp_path / "acc.csv"), tasks=("segmentation",), data="phantom",
        phantom_size=32, n_targets=2, pool_size=2, instances_per_task=1, context_sizes=(2,),
        methods=("mean", "identity"),
    )  # fmt: skip
    return EvalConfig.from_dict({**values, **changes})  # flat keys: the old layout loads


def _phantom_pair(task: str, seed: int = 0):
    sampler = EpisodeSampler(PhantomSource(4, 32), SamplerConfig().evaluation(seed=0))
    task_obj = sampler.tasks[task]
    params = task_obj.sample(np.random.default_rng(seed))
    pair = make_pair(task_obj, sampler.source, 0.5, PairRecord(1, params, SpatialParams()))
    return pair, params


def _denoising_input(pair, params):
    clean = source_image(pair.subject, params.profile, params.seed, params.real_image, clean=True)
    return corrupt(clean, params)


def _modality_input(pair, params):
    seeds = np.random.default_rng(params.seed).integers(2**31, size=2)
    return source_image(pair.subject, params.profile_in, int(seeds[0]), params.real_image)


def _inpainting_input(pair, params):
    return pair.input[0]  # the masked image; channel 1 (the mask) must not be returned


# task -> the image the identity baseline must return, rebuilt from the task's own definition
IDENTITY_TABLE = {
    "denoising": _denoising_input,
    "modality_transfer": _modality_input,
    "inpainting": _inpainting_input,
}


@pytest.mark.parametrize("task", sorted(IDENTITY_TABLE))
def test_identity_returns_the_targets_input_image(task):
    for seed in range(3):
        pair, params = _phantom_pair(task, seed)
        out = identity_baseline(pair.input)
        assert out.shape == (1, *pair.input.shape[1:]) and out.dtype == np.float32
        np.testing.assert_array_equal(out[0], IDENTITY_TABLE[task](pair, params))


def test_identity_psnr_of_denoising_is_the_psnr_of_the_corrupted_input():
    pair, params = _phantom_pair("denoising", 1)
    corrupted = np.clip(_denoising_input(pair, params), 0, 1)
    mse = np.mean((corrupted - pair.output[0]) ** 2)
    value = score(identity_baseline(pair.input)[None], pair.output[None], False)[0]
    assert value == pytest.approx(10 * np.log10(1 / mse), abs=1e-3)


def test_identity_rows_only_for_image_tasks(tmp_path):
    config = _config(tmp_path, tasks=("skull_stripping", "denoising"))
    run(config, log=lambda _: None)
    rows = read_rows(config.output)
    assert {(r["method"], r["task"]) for r in rows} == {
        ("mean", "skull_stripping"), ("mean", "denoising"), ("identity", "denoising"),
    }  # fmt: skip


def test_structures_and_per_class_labels_of_a_chosen_protocol(tmp_path):
    config = _config(
        tmp_path, per_class=2, class_protocol="quadrants",
        structures=("brain_mask", "white_matter", "grey_matter"),
    )  # fmt: skip
    instances = build_instances(config, "segmentation", 1)
    assert [i.index for i in instances] == [5, 6, 7, 8, 9]  # stride per_class + 3 structures
    assert [i.protocol for i in instances[:2]] == ["quadrants"] * 2
    assert {i.label for i in instances[:2]} <= {"upper-left", "upper-right", "lower-left",
                                                 "lower-right"}  # fmt: skip
    assert [i.label for i in instances[2:]] == ["brain_mask", "white_matter", "grey_matter"]
    source = PhantomSource(config.n_targets + config.pool_size, 32, 10**7)
    rng = np.random.default_rng([config.seed, TASK_NAMES.index("segmentation"), 1])
    position = make_sampler(config, "segmentation", source).sample_record(rng, 1).position
    for k in range(config.n_targets):
        subject = source.get(k, position)
        brain, tissue = subject.brain_mask, subject.tissue
        expected = [brain, brain & np.isin(tissue, (3, 7)), brain & np.isin(tissue, (2, 4, 5, 6))]
        for inst, mask in zip(instances[2:], expected, strict=True):
            np.testing.assert_array_equal(inst.target_out[k, 0], mask.astype(np.float32))


def test_training_episodes_move_each_pair_and_are_reproducible(tmp_path):
    evaluation = _config(tmp_path, tasks=("skull_stripping",))
    training = dataclasses.replace(evaluation, episodes="training")
    plain = build_instances(evaluation, "skull_stripping", 0)[0]
    moved = build_instances(training, "skull_stripping", 0)[0]
    again = build_instances(training, "skull_stripping", 0)[0]
    np.testing.assert_array_equal(moved.target_out, again.target_out)
    np.testing.assert_array_equal(moved.pool_in, again.pool_in)
    # the same subjects and task params; every pair moved by its own transform
    for a, b in ((plain.target_out, moved.target_out), (plain.pool_in, moved.pool_in)):
        assert all(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert plain.modalities == moved.modalities
    assert set(np.unique(moved.target_out)) <= {0.0, 1.0}


def test_config_errors_for_the_new_fields():
    base = dict(name="x", output="x.csv", methods=("mean",))
    with pytest.raises(ValueError, match="episodes"):
        EvalConfig(tasks=("denoising",), episodes="train", **base)
    with pytest.raises(ValueError, match="structures"):
        EvalConfig(tasks=("segmentation",), structures=("csf",), **base)
    with pytest.raises(ValueError, match="segmentation task"):
        EvalConfig(tasks=("denoising",), per_class=3, **base)
    with pytest.raises(ValueError, match="per_class > 0"):
        EvalConfig(tasks=("segmentation",), class_protocol="desikan_killiany", **base)


def _rows(task, method, values, metric="psnr"):
    return [
        {"task": task, "method": method, "metric": metric, "n_context": "8", "value": str(v)}
        for v in values
    ]


def test_acceptance_checks_compare_each_criterion_with_its_bar():
    rows = (
        _rows("segmentation", "model", [0.5, 0.7], "dice")
        + _rows("segmentation", "mean", [0.6] * 2, "dice")
        + _rows("skull_stripping", "model", [0.9, 0.9], "dice")
        + _rows("skull_stripping", "mean", [0.99], "dice")
        + _rows("denoising", "model", [22.0, 23.0]) + _rows("denoising", "identity", [20.0, 19.0])
        + _rows("modality_transfer", "model", [15.0])
        + _rows("modality_transfer", "identity", [15.0])
        + [{**r, "n_context": "1", "value": "0"} for r in _rows("denoising", "model", [1.0])]
    )  # fmt: skip
    checks = acceptance_checks(rows)
    assert [(c[1], round(c[2], 6), round(c[4], 6), c[5]) for c in checks] == [
        ("model", 0.6, 0.6, False),  # equal to the mean baseline: does not beat it
        ("model", 0.9, 0.9, True),  # >= 0.90
        ("model", 22.5, 22.5, True),  # input 19.5 dB + 3
        ("model", 15.0, 15.0, False),  # equal to the identity: does not beat it
    ]
    assert all("(L=8)" in c[0] for c in checks)
    table = acceptance_table(rows)
    assert len(table) == 2 + 4 and "FAIL" in table[2] and "pass" in table[3]


def test_acceptance_fails_when_a_task_or_baseline_is_missing():
    rows = _rows("denoising", "model", [30.0])
    checks = acceptance_checks(rows)
    assert len(checks) == 4 and not any(c[5] for c in checks)
