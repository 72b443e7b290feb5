"""The nested training config: flat (old) files load to the same config as their nested form, the
committed runs still resume, and the sampler's augmentation settings come from JSON."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from neuralizer.cli import main
from neuralizer.data.make import SourceConfig
from neuralizer.evaluate.config import EvalConfig
from neuralizer.model.config import ModelConfig
from neuralizer.tasks.sampler import HoldOut
from neuralizer.train import TrainConfig, train
from neuralizer.train.data import build_samplers, sampler_config
from neuralizer.train.loop import _resume_changes
from neuralizer.train.plot import read_log

ROOT = Path(__file__).resolve().parents[2]
#: a config as training wrote it before the nesting: every field flat, at the top
OLD_FLAT = json.loads((ROOT / "training/shipped/config.json").read_text())
TINY = {
    "data": "phantom", "channels": 8, "stages": 3, "phantom_size": 32, "n_train_subjects": 6,
    "n_val_subjects": 3, "batch_size": 4, "micro_batch_size": 2, "max_context": 3,
    "steps_per_epoch": 10, "val_batches": 2, "checkpoint_every": 3, "threads": 1, "lr": 1e-4,
}  # fmt: skip


def test_a_flat_file_and_its_nested_form_give_the_same_config():
    flat = {**OLD_FLAT, "holdout_modalities": ["flair"], "people_fraction": 0.25, "seed": 3}
    nested = {
        "run_dir": "training/shipped",
        "model": {"channels": 32},  # the other fields keep the training defaults (stages 4)
        "source": {"voxel_size_mm": 2, "people_fraction": 0.25},
        "n_train_subjects": 100,
        "n_val_subjects": 8,
        "sampler": {"max_context": 8, "seed": 3, "holdout": {"modalities": ["flair"]}},
        "threads": 2,
        "steps_per_epoch": 200,
        "val_batches": 8,
        "checkpoint_every": 25,
        "max_steps": 200000,
    }
    config = TrainConfig.from_dict(flat)
    assert config == TrainConfig.from_dict(nested)
    assert config.model == ModelConfig(channels=32, stages=4) and config.seed == 3
    assert config.source == SourceConfig(people_fraction=0.25)
    assert config.sampler.holdout == HoldOut(modalities=("flair",))
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert sampler_config(config).source_weights == {"mni152": 0.75, "people": 0.25}


@pytest.mark.parametrize("run", ["shipped", "unseen-flair"])
def test_committed_runs_resume_with_their_configs(run):
    """`neuralizer train configs/<run>.json --resume` compares the state's (flat) config with
    the file's: nothing but what a resume may change differs."""
    metadata = safe_open(ROOT / f"training/{run}/state.safetensors", "pt").metadata()
    saved = TrainConfig.from_dict(json.loads(metadata["config"]))
    assert "channels" in json.loads(metadata["config"])  # written in the flat layout
    config = TrainConfig.from_file(ROOT / f"configs/{run}.json")
    assert _resume_changes(saved, config, Path("state")) == {}
    assert TrainConfig.from_file(ROOT / f"training/{run}/config.json").source.kind == "synth"


def test_a_run_saved_in_the_flat_layout_resumes(tmp_path):
    config = {**OLD_FLAT, **TINY, "run_dir": str(tmp_path / "run"), "max_steps": 3}
    train(TrainConfig.from_dict(config))
    # Rewrite the run as the code before the nesting left it: flat config in state and folder.
    state = tmp_path / "run/state.safetensors"
    with safe_open(state, "pt") as file:
        tensors = {key: file.get_tensor(key) for key in file.keys()}
        metadata = {**file.metadata(), "config": json.dumps(config)}
    save_file(tensors, state, metadata=metadata)
    (tmp_path / "run/config.json").write_text(json.dumps(config))
    flat_file = tmp_path / "flat.json"
    flat_file.write_text(json.dumps({**config, "max_steps": 5}))
    assert main(["train", str(flat_file), "--resume"]) == 0
    log = read_log(tmp_path / "run/log.jsonl")
    assert [r["changed"] for r in log if r.get("event") == "resume"] == [{"max_steps": [3, 5]}]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5]
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({**config, "max_steps": 6, "axis": "axial"}))
    with pytest.raises(ValueError, match=r"source.axis: 'coronal' -> 'axial'"):
        train(TrainConfig.from_file(changed), resume=True)


def test_augmentation_and_spatial_settings_come_from_json():
    config = TrainConfig.from_dict(
        {
            **TINY,
            "sampler": {
                "augmentation_probabilities": {"mask_invert": 1.0},
                "spatial": {"rotation_deg": 0.0, "p_flip": 0.0},
            },
        }
    )
    spatial = config.sampler.spatial
    assert (spatial.rotation_deg, spatial.p_flip, spatial.p_elastic) == (0.0, 0.0, 0.5)
    assert config.sampler.batch_size == 4  # flat keys and a nested block together
    stream, _ = build_samplers(config)
    assert stream.config.augmentation_probabilities == {"mask_invert": 1.0}
    drawn = [stream.sample_record(np.random.default_rng(i), 1) for i in range(8)]
    names = {r.task: [name for name, _ in r.augmentations] for r in drawn}
    assert names.get("segmentation") == ["mask_invert"]  # drawn with probability 1
    assert all(found in ([], ["mask_invert"]) for found in names.values())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sampler": {"batch_size": "8"}}, r"TrainConfig.sampler.batch_size must be an integer"),
        ({"sampler": {"spatial": {"shear": None}}}, r"spatial.shear must be a finite number"),
        ({"model": {"depth": 3}}, r"unknown TrainConfig.model field"),
        ({"channels": 8, "model": {"channels": 16}}, r"'channels' is given twice"),
        ({"source": {"kind": "dataset"}}, r"needs 'path'"),
        ({"source": "synth"}, r"TrainConfig.source must be a JSON object"),
        ({"sampler": {"source_weights": {"people": 1.0}}}, r"source.people_fraction"),
        ({"holdout_tasks": ["segmentation", 3]}, r"holdout.tasks\[1\] must be a string"),
    ],
)
def test_wrong_values_are_named_by_their_place(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(values)


def test_evaluation_configs_load_flat_and_nested_alike():
    common = {"name": "x", "output": "x.csv", "tasks": ["denoising"], "methods": ["mean"]}
    flat = EvalConfig.from_dict({**common, "data": "phantom", "protocols": [], "axis": "axial"})
    nested = EvalConfig.from_dict({**common, "source": {"kind": "phantom", "axis": "axial"}})
    assert flat == nested and nested.source.phantom_size == 64  # evaluation's own default
    with pytest.raises(ValueError, match=r"EvalConfig.context_sizes\[1\] must be an integer"):
        EvalConfig.from_dict({**common, "context_sizes": [1, "2"]})
