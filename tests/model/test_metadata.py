"""The typed checkpoint metadata: geometry checked on load, old files' geometry inferred."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import save_file

import neuralizer
from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint
from neuralizer.model.checkpoint import DEFAULT_WEIGHTS
from neuralizer.model.metadata import FORMAT, CheckpointMetadata, Geometry


def _tiny() -> Neuralizer:
    return Neuralizer(ModelConfig(channels=4, stages=2))


def _old_file(path, provenance: dict) -> None:
    """A checkpoint as files were written before geometry was recorded."""
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(ModelConfig(channels=4, stages=2).to_dict()),
        "train_config": "null",
        "provenance": json.dumps(provenance),
    }
    save_file(_tiny().state_dict(), path, metadata=metadata)


def test_geometry_round_trips_through_a_checkpoint(tmp_path):
    geometry = Geometry(image_size=(48, 64), voxel_size_mm=1.5, axis="axial")
    save_checkpoint(tmp_path / "m.safetensors", _tiny(), geometry=geometry, train_config={"a": 1})
    model = neuralizer.load(tmp_path / "m.safetensors")
    assert model.geometry == geometry and model.metadata.geometry_recorded
    assert model.metadata.train_config == {"a": 1} and model.train_config == {"a": 1}
    assert model.metadata.model == ModelConfig(channels=4, stages=2)


@pytest.mark.parametrize(
    ("provenance", "expected"),
    [
        ({}, Geometry(image_size=(96, 96), voxel_size_mm=2.0, axis="coronal")),
        ({"voxel_size_mm": 1.0, "image_size": [64, 80], "axis": "axial"},
         Geometry(image_size=(64, 80), voxel_size_mm=1.0, axis="axial")),
    ],
)  # fmt: skip
def test_old_files_load_with_the_geometry_inferred_as_before(tmp_path, provenance, expected):
    _old_file(tmp_path / "old.safetensors", provenance)
    model = neuralizer.load(tmp_path / "old.safetensors")
    assert model.geometry == expected and not model.metadata.geometry_recorded


def test_the_shipped_weights_still_load():
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("no shipped weights file in this checkout")
    model = neuralizer.load()
    assert model.geometry == Geometry() and model.geometry.image_size == (96, 96)


@pytest.mark.parametrize(
    ("geometry", "words"),
    [
        ({"image_size": [48]}, "image_size"),
        ({"image_size": [48, 0]}, "image_size"),
        ({"image_size": [48.5, 48]}, "image_size"),
        ({"voxel_size_mm": -2}, "voxel_size_mm"),
        ({"voxel_size_mm": "2"}, "voxel_size_mm"),
        ({"axis": "oblique"}, "axis"),
        ({"percentiles": [99.5, 0.5]}, "percentiles"),
        ({"spacing": 2}, "unknown geometry field"),
        ([96, 96], "JSON object"),
    ],
)
def test_a_bad_geometry_is_refused_naming_the_file(tmp_path, geometry, words):
    path = tmp_path / "bad.safetensors"
    save_checkpoint(path, _tiny())
    raw = CheckpointMetadata(ModelConfig(channels=4, stages=2), Geometry()).to_strings()
    raw["geometry"] = json.dumps(geometry)
    save_file(_tiny().state_dict(), path, metadata=raw)
    with pytest.raises(ValueError, match=words) as error:
        neuralizer.load(path)
    assert str(path) in str(error.value)
