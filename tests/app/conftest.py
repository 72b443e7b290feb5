"""Fixtures for the web app's tests: a tiny random checkpoint that keeps predictions fast."""

from pathlib import Path

import pytest
import torch

from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint

#: 32×32 pixels of 2 mm in-plane: a whole coronal slice of the examples is not needed here.
GEOMETRY = {"voxel_size_mm": 2.0, "image_size": [32, 32]}


def tiny_model() -> Neuralizer:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Neuralizer(ModelConfig(channels=4)).eval()
    model.provenance = dict(GEOMETRY)
    return model


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, tiny_model(), provenance=GEOMETRY)
    return path
