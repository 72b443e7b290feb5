import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from neuralizer.evaluate.config import UNetBudget
from neuralizer.evaluate.unet import UNet, train_unet


def _data(n=3, size=16):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, 3, size, size)).astype(np.float32)
    return x, (x[:, :1] > 0.5).astype(np.float32)


def test_unet_shapes():
    assert UNet(4, 3)(torch.zeros(2, 3, 16, 24)).shape == (2, 1, 16, 24)


def test_interrupted_job_resumes_to_the_same_weights(tmp_path):
    x, y = _data()
    budget = UNetBudget(steps=6, batch_size=2, channels=4, stages=3, checkpoint_every=2, threads=1)
    whole = train_unet(tmp_path / "whole", x, y, True, budget)
    train_unet(tmp_path / "cut", x, y, True, budget, stop_after=3)  # step 3: last saved is 2
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["step"] == 2
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    resumed = train_unet(tmp_path / "cut", x, y, True, budget)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["step"] == 6 and summary["budget"]["steps"] == 6 and summary["seconds"] > 0
    assert set(load_file(tmp_path / "cut" / "model.safetensors")) == set(whole.state_dict())
    files = {p.suffix for p in (tmp_path / "cut").iterdir()}
    assert files <= {".json", ".safetensors"}  # nothing pickled


def test_a_finished_job_is_reused_only_for_its_own_pairs_and_budget(tmp_path):
    x, y = _data()
    budget = UNetBudget(steps=2, batch_size=2, channels=4, stages=3, checkpoint_every=2, threads=1)
    first = train_unet(tmp_path / "job", x, y, True, budget)
    again = train_unet(tmp_path / "job", x, y, True, dataclasses.replace(budget, threads=2))
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="other pairs or with another budget"):
        train_unet(tmp_path / "job", x[::-1].copy(), y[::-1].copy(), True, budget)
    with pytest.raises(ValueError, match="other pairs or with another budget"):
        train_unet(tmp_path / "job", x, y, True, dataclasses.replace(budget, steps=4))
