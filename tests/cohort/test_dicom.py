"""DICOM input: a series folder is read wherever a NIfTI volume is, with its geometry kept."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neuralizer.cli import main
from neuralizer.infer.io import read_input
from neuralizer.infer.resources import input_size

from .conftest import head, kept_locale, write_dicom_series

sitk = pytest.importorskip("SimpleITK")

#: A non-identity orientation (axes permuted, one flipped, anisotropic voxels), left-handed so
#: GDCM stacks the slices in the opposite order: the grids differ, the world is the same.
AFFINE = np.array([[0, 0, 2.0, -20], [-1.5, 0, 0, 18], [0, 1.8, 0, -22], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dicom")
    for k in range(3):
        image, mask = head(seed=k, radius=0.3 + 0.03 * k)
        nib.save(nib.Nifti1Image(image, AFFINE), root / f"head{k}.nii.gz")
        nib.save(nib.Nifti1Image(mask, AFFINE), root / f"mask{k}.nii.gz")
    write_dicom_series(sitk.ReadImage(str(root / "head0.nii.gz")), root / "series0")
    return root


def canonical(path: Path) -> nib.Nifti1Image:
    return nib.as_closest_canonical(nib.load(path))


def test_series_keeps_the_values_and_the_geometry(cohort):
    nifti, dicom = read_input(cohort / "head0.nii.gz"), read_input(str(cohort / "series0"))
    a, b = nib.as_closest_canonical(nifti.image), nib.as_closest_canonical(dicom.image)
    np.testing.assert_allclose(b.affine, a.affine, atol=1e-5)
    assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
    size = input_size(str(cohort / "series0"))  # the memory plan's view, from two headers
    assert size.spatial == dicom.spatial_shape
    np.testing.assert_allclose(size.affine, dicom.image.affine, atol=1e-5)


def centre_of_mass_registration(data, affine, **kwargs):
    """A stand-in for the registration to MNI152 (these ellipsoids are no heads to register):
    a translation to the world centre of the scan's foreground, which depends on its geometry
    as the real registration does."""
    from neuralizer.data.mni import MniTransform
    from neuralizer.data.space import foreground

    index = np.argwhere(foreground(data)).mean(axis=0)
    matrix = np.eye(4)
    matrix[:3, 3] = affine[:3, :3] @ index + affine[:3, 3]
    return MniTransform(matrix, "head", 1.0)


@pytest.mark.parametrize("align", ["none", "affine"])
def test_dicom_target_and_context_predict_as_the_nifti(
    cohort, tiny_checkpoint, tmp_path, align, monkeypatch
):
    from neuralizer.infer import align as alignment

    monkeypatch.setattr(alignment, "register_all_to_mni", lambda scans, **_: [
        centre_of_mass_registration(data, affine) for data, affine in scans])  # fmt: skip
    monkeypatch.setattr(alignment, "_cache", type(alignment._cache)())  # none of the real ones
    outputs = {}
    for kind, target, first in (
        ("nifti", cohort / "head0.nii.gz", cohort / "head1.nii.gz"),
        ("dicom", cohort / "series0", cohort / "head1.nii.gz"),
    ):
        out = tmp_path / kind
        argv = ["predict", "-i", str(target), "-o", str(out / "mask.nii.gz"), "--context-in",
                str(first), str(cohort / "head2.nii.gz"), "--context-out",
                str(cohort / "mask1.nii.gz"), str(cohort / "mask2.nii.gz"), "--model",
                str(tiny_checkpoint), "--align", align, "--threads", "1", "--device", "cpu",
                "--probabilities", str(out / "prob.nii.gz")]  # fmt: skip
        assert main(argv) == 0
        outputs[kind] = out
    for name in ("mask.nii.gz", "prob.nii.gz"):
        a, b = canonical(outputs["nifti"] / name), canonical(outputs["dicom"] / name)
        np.testing.assert_allclose(b.affine, a.affine, atol=1e-5)
        np.testing.assert_allclose(np.asarray(b.dataobj), np.asarray(a.dataobj), atol=1e-5)
    dicom_grid = read_input(str(cohort / "series0")).image
    written = nib.load(outputs["dicom"] / "mask.nii.gz")  # on the series' own grid
    np.testing.assert_allclose(written.affine, dicom_grid.affine, atol=1e-5)
    assert written.shape == dicom_grid.shape


def test_a_series_works_as_context_and_in_folder_mode(cohort, tiny_checkpoint, tmp_path):
    targets = tmp_path / "targets"
    targets.mkdir()
    write_dicom_series(sitk.ReadImage(str(cohort / "head1.nii.gz")), targets / "subject1")
    (targets / "head2.nii.gz").symlink_to(cohort / "head2.nii.gz")
    labels = write_dicom_series(sitk.ReadImage(str(cohort / "mask0.nii.gz")), tmp_path / "labels")
    out = tmp_path / "out"
    argv = ["predict", "-i", str(targets), "-o", str(out), "--context-in",
            str(cohort / "series0"), "--context-out", str(labels),
            "--model", str(tiny_checkpoint), "--align", "none", "--threads", "1",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["head2.nii.gz", "subject1.nii.gz"]


def test_a_folder_of_two_series_is_refused_with_one_line(cohort, tmp_path, capsys):
    both = tmp_path / "both"
    write_dicom_series(sitk.ReadImage(str(cohort / "head0.nii.gz")), both)
    other = sitk.ReadImage(str(cohort / "head1.nii.gz"))
    write_dicom_series(other, tmp_path / "other")
    for k, path in enumerate(sorted((tmp_path / "other").iterdir())):  # another series UID
        image = sitk.ReadImage(str(path))
        image.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1.43.2")
        with kept_locale():
            sitk.WriteImage(image, str(both / f"other{k:03d}.dcm"))
    argv = ["predict", "-i", str(both), "-o", str(tmp_path / "x.nii.gz"),
            "--context-in", str(cohort / "head1.nii.gz"),
            "--context-out", str(cohort / "mask1.nii.gz")]  # fmt: skip
    assert main(argv) == 2
    assert "DICOM series" in capsys.readouterr().err
