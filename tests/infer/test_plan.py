"""PredictOptions and the checked plan: every check of a prediction runs once per call."""

from __future__ import annotations

import numpy as np
import pytest

import neuralizer
import neuralizer.infer.api as api
import neuralizer.infer.plan as plan_module
import neuralizer.infer.volume as volume
import neuralizer.model.guards as guards
from neuralizer.cli import main
from neuralizer.infer.plan import PredictOptions, PredictPlan, plan_arrays, plan_volumes

from .conftest import tiny_model

#: The checks of a prediction (functions of ``neuralizer.infer.plan``'s namespace) and the
#: memory estimate of its forward passes.
CHECKS = ("validate_volumes", "choose_alignment", "channels_2d", "plan_outputs")


@pytest.fixture
def counts(monkeypatch) -> dict[str, int]:
    """Calls of every check, counted by wrapping it where the planner looks it up."""
    calls = dict.fromkeys((*CHECKS, "memory"), 0)

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    for name in CHECKS:
        monkeypatch.setattr(plan_module, name, counted(name, getattr(plan_module, name)))
    # the resource plan of a prediction with its model, and the memory check every forward pass
    # makes unless told not to
    for module in (api, volume):
        monkeypatch.setattr(module, "check_prediction", counted("memory", module.check_prediction))
    monkeypatch.setattr(guards, "check_pass_memory", counted("memory", guards.check_pass_memory))
    return calls


def _image(rng, shape=(20, 24)) -> np.ndarray:
    return rng.random(shape, dtype=np.float32)


def test_options_are_checked_when_made():
    options = PredictOptions(labels=["17", "53"], ensemble=2.0, max_memory="1G")
    assert options.labels == (17, 53) and options.ensemble == 2
    assert options.max_memory == 2**30
    for bad, word in (
        ({"ensemble": 0}, "ensemble"),
        ({"ensemble": "2"}, "ensemble"),
        ({"batch_size": 1.5}, "batch size"),
        ({"axis": "oblique"}, "axis"),
        ({"task": "seg"}, "task"),
        ({"spacing": -1.0}, "spacing"),
        ({"labels": "some"}, "labels"),
        ({"max_memory": "lots"}, "memory size"),
        ({"device": "tpu"}, "device"),
    ):
        with pytest.raises(ValueError, match=word):
            PredictOptions(**bad)


def test_predict_checks_a_2d_call_once(counts):
    rng = np.random.default_rng(0)
    c_in = [_image(rng) for _ in range(2)]
    c_out = [(c > 0.5).astype(np.float32) for c in c_in]
    result = neuralizer.predict(_image(rng), c_in, c_out, model=tiny_model(), device="cpu")
    assert result.prediction.shape == (20, 24)
    assert counts == {**dict.fromkeys(CHECKS, 0), "channels_2d": 1, "plan_outputs": 1,
                      "memory": 1}  # fmt: skip


def test_a_plan_is_predicted_without_checking_again(counts):
    rng = np.random.default_rng(1)
    c_in = [_image(rng) for _ in range(2)]
    c_out = [(c > 0.5).astype(np.float32) for c in c_in]
    plan = plan_arrays(_image(rng), c_in, c_out, PredictOptions(device="cpu", ensemble=2))
    assert isinstance(plan, PredictPlan) and not plan.volumetric
    assert counts["channels_2d"] == 1 and counts["plan_outputs"] == 1
    result = neuralizer.predict(plan, model=tiny_model())
    assert result.uncertainty is not None  # the plan's options were used
    assert counts["channels_2d"] == 1 and counts["plan_outputs"] == 1 and counts["memory"] == 1
    with pytest.raises(ValueError, match="2D images"):
        neuralizer.predict_volume(plan, model=tiny_model())
    with pytest.raises(ValueError, match="alone"):
        neuralizer.predict(plan, c_in, c_out, model=tiny_model())


def test_predict_volume_checks_once(counts, volume_files):
    f = volume_files
    result = neuralizer.predict_volume(
        f["img0"], [f["img1"], f["img2"]], [f["mask1"], f["mask2"]], model=tiny_model(),
        align="none", device="cpu", batch_size=64,
    )  # fmt: skip
    assert result.task == "segmentation"
    assert counts == {**dict.fromkeys(CHECKS, 1), "channels_2d": 0, "memory": 1}
    plan = plan_volumes(f["img0"], [f["img1"]], [f["mask1"]], PredictOptions(align="none"))
    neuralizer.predict_volume(plan, model=tiny_model())
    assert counts == {**dict.fromkeys(CHECKS, 2), "channels_2d": 0, "memory": 2}


def test_the_command_checks_each_target_once(counts, tmp_path, volume_files, tiny_checkpoint):
    f = {k: str(v) for k, v in volume_files.items()}
    out = tmp_path / "out.nii.gz"
    argv = ["predict", "-i", f["img0"], "-o", str(out), "--model", str(tiny_checkpoint),
            "--context-in", f["img1"], f["img2"], "--context-out", f["mask1"], f["mask2"],
            "--batch-size", "64", "--align", "none"]  # fmt: skip
    assert main(argv) == 0 and out.is_file()
    assert counts == {**dict.fromkeys(CHECKS, 1), "channels_2d": 0, "memory": 1}
