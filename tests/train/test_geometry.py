"""A model predicts on the grid it was trained on: training records its geometry in every
checkpoint, and inference reads it back (no silent fallback to the shipped model's 96×96)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

import neuralizer
from neuralizer.cli import main
from neuralizer.model.metadata import Geometry

SHORT_RUN = {
    "data": "phantom",
    "channels": 4,
    "stages": 3,
    "phantom_size": 48,
    "n_train_subjects": 3,
    "n_val_subjects": 2,
    "batch_size": 2,
    "micro_batch_size": 2,
    "max_context": 2,
    "max_steps": 2,
    "steps_per_epoch": 2,
    "val_batches": 1,
    "checkpoint_every": 2,
    "threads": 1,
}


def test_a_model_trained_at_48_predicts_on_its_own_48_grid(tmp_path: Path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({**SHORT_RUN, "run_dir": str(tmp_path / "run")}))
    assert main(["train", str(config)]) == 0
    for name in ("latest", "best"):
        model = neuralizer.load(tmp_path / "run" / f"{name}.safetensors")
        assert model.geometry == Geometry(image_size=(48, 48), voxel_size_mm=2.0, axis="coronal")
        assert model.metadata.geometry_recorded

    # a head-sized ball of 24 mm voxels: 2 mm working grid, 48×48 in-plane (coronal: X and Z)
    index = np.indices((10, 12, 10)) - np.array([4.5, 5.5, 4.5])[:, None, None, None]
    ball = (np.sqrt((index**2).sum(0)) < 4).astype(np.float32)
    image = nib.Nifti1Image(ball * 100, np.diag([4.0, 4.0, 4.0, 1.0]))
    result = neuralizer.predict_volume(
        image, [image], [nib.Nifti1Image(ball, image.affine)], model=model, align="none",
        device="cpu",
    )  # fmt: skip
    grid = result.steps[0]
    assert grid.startswith("working grid (48, ") and ", 48) at 2 mm" in grid
    assert result.prediction.shape == ball.shape
