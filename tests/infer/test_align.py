"""align="affine": every scan registered once to the MNI152 common space, the prediction made on
MNI-aligned slices, the context carried onto them by composing two registrations.

The registration itself is tested on real anatomy in tests/data/test_mni.py, and end to end with
the shipped model in test_invariance.py; here a stand-in registration with known answers keeps
the mechanics (composition, working grid, cache) fast and exact."""

import nibabel as nib
import numpy as np
import pytest

import neuralizer
from neuralizer.cli import main
from neuralizer.data.mni import MniTransform
from neuralizer.data.motion import moved_scan, rigid_motion
from neuralizer.evaluate.metrics import dice
from neuralizer.infer import align
from neuralizer.infer.io import Loaded

from .conftest import ContextMeanModel, oracle, phantom_volume, ras_affine

SHAPE = (40, 46, 40)
#: A motion about the phantom's centre: 15° and 20° about two axes, and a shift.
MOTION = rigid_motion((15.0, 20.0, 0.0), (12.0, -8.0, 5.0))


@pytest.fixture
def registrations(monkeypatch):
    """A stand-in for register_all_to_mni: the pose of each scan, looked up by its affine
    (identity for unknown scans), and a list of the scans it was called with; an empty cache."""
    poses: dict[bytes, np.ndarray] = {}
    calls: list[tuple[int, ...]] = []

    def register(scans, **kwargs):
        calls.extend(data.shape for data, _ in scans)
        return [MniTransform(poses.get(np.asarray(affine).tobytes(), np.eye(4)), "brain", 1.0)
                for _, affine in scans]  # fmt: skip

    monkeypatch.setattr(align, "register_all_to_mni", register)
    monkeypatch.setattr(align, "_cache", type(align._cache)())
    return poses, calls


def _moved(image: np.ndarray, motion: np.ndarray, order: int) -> nib.Nifti1Image:
    data, affine = moved_scan(image, ras_affine(origin=(-40.0, -46.0, -40.0)), motion,
                              order=order)  # fmt: skip
    return nib.Nifti1Image(data, affine)


def test_a_rotated_target_is_predicted_on_mni_aligned_slices(registrations):
    """The target is the phantom moved by 15° and 20° about two axes (and stored LPI); the one
    example lies still, far away in world space. Composed through the common space, the
    example's labels land on the target's anatomy; without alignment they do not."""
    poses, _ = registrations
    image, labels = phantom_volume(SHAPE, seed=0)
    target = _moved(image, MOTION, order=1)
    truth = np.asarray(_moved((labels == 7).astype(np.uint8), MOTION, order=0).dataobj) > 0
    c_img, c_lab = phantom_volume(SHAPE, seed=1)
    near = ras_affine(origin=(-40.0, -46.0, -40.0))  # where the target lay before it moved
    far = ras_affine(origin=(150.0, -200.0, 90.0))  # hundreds of mm away
    shift = np.eye(4)
    shift[:3, 3] = far[:3, 3] - near[:3, 3]
    poses[target.affine.tobytes()] = MOTION
    poses[far.tobytes()] = shift
    model = oracle(ContextMeanModel)
    model.provenance = {"voxel_size_mm": 2.0, "image_size": [64, 64]}
    scores = {}
    for mode, where in (("affine", far), ("affine", near), ("none", near)):
        c_in = nib.Nifti1Image(c_img, where)
        c_out = nib.Nifti1Image((c_lab == 7).astype(np.uint8), where)
        result = neuralizer.predict_volume(target, [c_in], [c_out], model=model, align=mode)
        assert f"alignment: {mode}" in result.steps
        assert result.prediction.shape == target.shape
        assert np.allclose(result.prediction.affine, target.affine, atol=1e-4)
        scores[mode, where is far] = dice(np.asarray(result.prediction.dataobj) > 0, truth)
    assert min(scores["affine", True], scores["affine", False]) > 0.8 > scores["none", False]
    print(scores)
    steps = neuralizer.predict_volume(target, [c_in], [c_out], model=model).steps
    assert any("MNI152-aligned" in s for s in steps)
    assert "target to MNI152: brain template, rotation 25.0°" in " ".join(steps)


def test_the_working_grid_follows_the_common_space(registrations):
    """For a scan already in MNI space it is the grid of align="none" moved onto the common
    grid's lattice (by at most half a voxel); for the same head moved, that grid moved with it:
    its axes are MNI's carried into the target's world."""
    from neuralizer.infer.resources import loaded_size, working_slices
    from neuralizer.infer.volume import working_grid

    image, _ = phantom_volume(SHAPE, seed=0)
    near = ras_affine(origin=(-40.0, -46.0, -40.0))
    still = Loaded("still", image[None], nib.Nifti1Image(image, near))
    target = _moved(image, MOTION, order=1)
    moved = Loaded("moved", np.asarray(target.dataobj)[None], target)
    for axis in range(3):
        plain = working_grid(still, 2.0, (32, 32), axis)
        common = align.common_working_grid(still, np.eye(4), 2.0, (32, 32), axis)
        assert common.shape == plain.shape
        assert np.allclose(common.affine, plain.affine, atol=1.0)
        assert np.allclose(common.affine[:3, 3] % 2.0, 1.0)  # on the 2 mm MNI lattice
        found = align.common_working_grid(moved, MOTION, 2.0, (32, 32), axis)
        expected = MOTION @ plain.affine
        assert np.allclose(found.affine[:3, :3], expected[:3, :3])
        centre = [(n - 1) / 2 for n in found.shape] + [1]
        assert np.linalg.norm(found.affine @ centre - expected @ centre) < 2.0
        assert abs(found.shape[axis] - plain.shape[axis]) <= 2
        # the resource plan's bound, from the header alone, holds for the grid made
        size = loaded_size(moved)
        assert found.shape[axis] <= working_slices(size, 2.0, axis, common_space=True)


def test_transforms_between_scans_are_compositions():
    target = MniTransform(rigid_motion((0.0, 0.0, 30.0), (5.0, 0.0, 0.0)), "head", 1.0)
    example = MniTransform(rigid_motion((10.0, 0.0, 0.0), (0.0, 20.0, 0.0)), "head", 1.0)
    (relative,) = align.relative_transforms(target, [example])
    mni_point = np.array([10.0, -20.0, 30.0, 1.0])
    assert np.allclose(relative @ (target.matrix @ mni_point), example.matrix @ mni_point)


def test_folder_mode_registers_each_scan_once(registrations, tmp_path, tiny_checkpoint, capsys):
    """N targets with the same L examples: L + N registrations, not L × N; later, in the same
    process, a target that is one of the examples registers nothing again."""
    _, calls = registrations
    folder, files = tmp_path / "scans", []
    folder.mkdir()
    for i in range(5):
        image, labels = phantom_volume(SHAPE, seed=i)
        if i < 3:  # targets
            nib.save(nib.Nifti1Image(image, ras_affine()), folder / f"t{i}.nii.gz")
        else:  # examples
            files.append(tmp_path / f"in{i}.nii.gz")
            nib.save(nib.Nifti1Image(image, ras_affine()), files[-1])
            files.append(tmp_path / f"out{i}.nii.gz")
            nib.save(nib.Nifti1Image((labels == 7).astype(np.uint8), ras_affine()), files[-1])
    context = ["--context-in", *map(str, files[::2]), "--context-out", *map(str, files[1::2])]
    argv = ["predict", "-i", str(folder), "-o", str(tmp_path / "out"), "--model",
            str(tiny_checkpoint), "--batch-size", "64", *context]  # fmt: skip
    assert main(argv) == 0
    assert len(list((tmp_path / "out").iterdir())) == 3
    assert len(calls) == 2 + 3, calls
    printed = capsys.readouterr().out  # a line per target with the alignment found
    assert all(f"t{i}.nii.gz: brain template, rotation 0.0°" in printed for i in range(3))
    argv = ["predict", "-i", str(files[0]), "-o", str(tmp_path / "self.nii.gz"), "--model",
            str(tiny_checkpoint), "--batch-size", "64", *context]  # fmt: skip
    assert main(argv) == 0 and len(calls) == 5
    # the one-line summary states the rotation found for the target
    assert "target to MNI152: brain template, rotation 0.0°" in capsys.readouterr().out


def test_qc_draws_the_template_brain_where_the_registration_put_it(registrations, tmp_path):
    from neuralizer.data.people import dice, mni_brain_mask
    from neuralizer.data.space import common_grid
    from neuralizer.infer.qc import _views, save_qc, template_brain

    grid = common_grid(2.0)
    still = template_brain(np.eye(4), grid.shape, grid.affine)
    assert dice(still > 0, mni_brain_mask(grid)) > 0.99
    moved = template_brain(MOTION, grid.shape, MOTION @ grid.affine)  # the grid moved with it
    assert dice(moved > 0, still > 0) > 0.99
    poses, _ = registrations
    image, labels = phantom_volume(SHAPE, seed=0)
    target = _moved(image, MOTION, order=1)
    poses[target.affine.tobytes()] = MOTION
    mask = _moved((labels == 7).astype(np.uint8), MOTION, order=0)
    model = oracle(ContextMeanModel)
    loaded = Loaded("target.nii.gz", np.asarray(target.dataobj)[None], target)
    for mode in ("affine", "none"):
        result = neuralizer.predict_volume(target, [target], [mask], model=model, align=mode)
        outlines = [outline for *_, outline in _views(loaded, result)]
        assert all((o is not None and o.any()) if mode == "affine" else o is None
                   for o in outlines)  # fmt: skip
        save_qc(tmp_path / f"{mode}.png", loaded, result)
        assert (tmp_path / f"{mode}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_scan_that_cannot_be_registered_is_named():
    """A phantom is no head or brain: the registration's check refuses it, naming the file."""
    image, labels = phantom_volume((24, 28, 24), seed=0)
    target = nib.Nifti1Image(image, ras_affine())
    context = nib.Nifti1Image((labels == 7).astype(np.uint8), ras_affine())
    with pytest.raises(ValueError, match=r"^target: registration to the MNI152 brain template"):
        neuralizer.predict_volume(target, [target], [context], model=oracle(ContextMeanModel))


def test_registrations_side_by_side_equal_one_after_the_other():
    import torch

    from neuralizer.data.register import register_affine
    from neuralizer.infer.align import register_all

    fixed, _ = phantom_volume(SHAPE, seed=0)
    moving = []
    for seed in (1, 2, 3):
        image, _ = phantom_volume(SHAPE, seed=seed)
        affine = ras_affine(origin=(-40.0 + 3 * seed, -46.0, -40.0))
        moving.append(Loaded(f"m{seed}", image[None], nib.Nifti1Image(image, affine)))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        together = register_all(fixed, ras_affine(), moving, seed=4)
    finally:
        torch.set_num_threads(threads)
    for item, transform in zip(moving, together, strict=True):
        alone = register_affine(fixed, ras_affine(), item.data[0], item.image.affine, seed=4)
        assert transform.GetParameters() == alone.GetParameters()
        assert transform.GetFixedParameters() == alone.GetFixedParameters()


@pytest.mark.slow
def test_deformable_alignment_follows_a_local_deformation(registrations):
    """The example is the target's own phantom bent by a smooth displacement (up to 3 voxels):
    after the common-space affine, the B-spline stage carries its labels back onto the
    target's anatomy better than the affine alone."""
    from scipy import ndimage

    shape = (24, 28, 24)  # small: a 3D B-spline registration is the costly part
    image, labels = phantom_volume(shape, seed=0)
    target = nib.Nifti1Image(image, ras_affine())
    grid = np.indices(shape).astype(np.float64)
    grid[0] += 3.0 * np.sin(np.pi * grid[2] / shape[2])  # x displaced along z
    bent_image = ndimage.map_coordinates(image, grid, order=1)
    bent_mask = ndimage.map_coordinates((labels == 7).astype(np.uint8), grid, order=0)
    c_in = nib.Nifti1Image(bent_image, ras_affine())
    c_out = nib.Nifti1Image(bent_mask, ras_affine())
    model = oracle(ContextMeanModel)
    model.provenance = {"voxel_size_mm": 2.0, "image_size": [32, 32]}
    scores = {}
    for mode in ("affine", "deformable"):
        result = neuralizer.predict_volume(target, [c_in], [c_out], model=model, align=mode)
        assert f"alignment: {mode}" in result.steps
        scores[mode] = dice(np.asarray(result.prediction.dataobj) > 0, labels == 7)
    print(scores)
    assert "deformable: 1 B-spline registrations per view" in result.steps
    assert scores["deformable"] > scores["affine"] + 0.1, scores


@pytest.mark.slow
def test_mni_registrations_side_by_side_equal_one_after_the_other(monkeypatch):
    """Real registrations of two real-anatomy scans: two at a time give the transforms one at a
    time gives, bit for bit (ITK held at one thread for the whole pool)."""
    import torch

    from neuralizer.data.mni import register_to_mni
    from neuralizer.data.motion import person_scan
    from neuralizer.data.people import PEOPLE_SPLITS

    monkeypatch.setattr(align, "_cache", type(align._cache)())
    scans = []
    for number, head in ((PEOPLE_SPLITS["test"][1], True), (PEOPLE_SPLITS["test"][2], False)):
        image, _, affine = person_scan(number, "t1", head=head)
        data, scan_affine = moved_scan(image, affine, rigid_motion((10.0, 0.0, -5.0), (5, 0, 0)))
        scans.append(Loaded(f"p{number}", data[None], nib.Nifti1Image(data, scan_affine)))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        together = align.mni_transforms(scans)
    finally:
        torch.set_num_threads(threads)
    assert [t.kind for t in together] == ["head", "brain"]
    for scan, found in zip(scans, together, strict=True):
        alone = register_to_mni(scan.data[0], scan.image.affine)
        assert np.array_equal(found.matrix, alone.matrix)
