"""Structure volumes and QC flags: tiny arrays with known answers, and a folder run with one
target replaced by noise."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neuralizer.infer.cohort import Cohort, check_cohort_files
from neuralizer.infer.folder import run_folder
from neuralizer.infer.plan import PredictOptions, load_context
from neuralizer.infer.statistics import (
    StructureVolume,
    flag_cohort,
    read_label_names,
    statistics_table,
    structure_volumes,
    voxel_volume_ml,
)

from .conftest import head

AFFINE = np.array([[0, 0, 2.0, -20], [-1.5, 0, 0, 18], [0, 1.8, 0, -22], [0, 0, 0, 1]])


def test_volumes_are_voxel_counts_times_the_voxel_volume():
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[:2, :3, :1] = 3  # 6 voxels
    labels[3, 4, 5] = 7  # 1 voxel
    spread = np.full(labels.shape, 0.1, np.float32)
    spread[labels == 7] = 0.4
    assert voxel_volume_ml(AFFINE) == pytest.approx(2 * 1.5 * 1.8 / 1000)
    rows = structure_volumes("t", labels, AFFINE, [3, 7, 9], {3: "left"}, spread)
    assert [(r.structure, r.voxels) for r in rows] == [("left", 6), ("label-7", 1), ("label-9", 0)]
    assert rows[0].volume_ml == pytest.approx(6 * 0.0054)
    assert rows[0].mean_uncertainty == pytest.approx(0.1)
    assert rows[1].mean_uncertainty == pytest.approx(0.4)
    assert rows[2].mean_uncertainty is None


def test_flags_outliers_empty_and_uncertain_structures():
    volumes = [10.0, 10.5, 9.8, 10.2, 30.0, 0.0]
    spreads = [0.02, 0.03, 0.02, 0.021, 0.02, 0.15]
    rows = [
        StructureVolume(f"t{k}", "brain", 1, int(v * 100), v, s)
        for k, (v, s) in enumerate(zip(volumes, spreads, strict=True))
    ]
    flagged = flag_cohort(rows)
    assert [r.flags for r in flagged] == [
        (), (), (), (), ("volume_outlier",), ("empty", "volume_outlier", "high_uncertainty")
    ]  # fmt: skip
    assert flag_cohort(rows[:2]) == [*rows[:2]]  # too few targets to judge a cohort
    table = statistics_table(flagged).splitlines()
    assert table[0].split("\t") == [
        "target", "structure", "label", "volume_ml", "voxels", "mean_uncertainty", "flags"
    ]  # fmt: skip
    assert table[-1].split("\t")[-1] == "empty,volume_outlier,high_uncertainty"


def test_label_names_and_output_names_are_checked(tmp_path):
    good = tmp_path / "dseg.tsv"
    good.write_text("index\tname\n17\tLeft-Hippocampus\n53\tRight-Hippocampus\n")
    assert read_label_names(good) == {17: "Left-Hippocampus", 53: "Right-Hippocampus"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("value\tlabel\n1\tx\n")
    with pytest.raises(ValueError, match="'index' and 'name'"):
        read_label_names(bad)
    with pytest.raises(ValueError, match=r"\.tsv"):
        check_cohort_files(tmp_path / "volumes.csv", None)
    with pytest.raises(ValueError, match=r"\.html"):
        check_cohort_files(None, tmp_path / "report.pdf")


@pytest.fixture(scope="module")
def noisy_cohort(tmp_path_factory) -> Path:
    """Five heads of growing brains and one scan replaced by noise, with two example pairs."""
    root = tmp_path_factory.mktemp("cohort")
    (root / "targets").mkdir()
    (root / "examples").mkdir()
    for k in range(7):
        image, mask = head(seed=k, radius=0.26 + 0.01 * k)
        folder = root / ("targets" if k < 5 else "examples")
        nib.save(nib.Nifti1Image(image, AFFINE), folder / f"sub-{k:02d}.nii.gz")
        nib.save(nib.Nifti1Image(mask, AFFINE), root / f"mask-{k:02d}.nii.gz")
    noise = np.random.default_rng(1).integers(0, 900, image.shape).astype(np.int16)
    nib.save(nib.Nifti1Image(noise, AFFINE), root / "targets" / "sub-noise.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros_like(image), AFFINE), root / "targets" / "sub-blank.nii.gz")
    return root


def run_noisy_cohort(root: Path, model, out: Path, ensemble: int = 2) -> list:
    options = PredictOptions(ensemble=ensemble, align="none", device="cpu")
    examples = sorted((root / "examples").glob("*.nii.gz"))
    labels = [root / f"mask-{p.name[4:6]}.nii.gz" for p in examples]
    context = load_context(options, examples, labels)
    cohort = Cohort(statistics=out / "volumes.tsv", report=out / "report.html", structure="brain")
    targets = sorted((root / "targets").glob("*.nii.gz"))
    extras = {"uncertainty": out / "uncertainty", "probabilities": None, "qc": None}
    status = run_folder(targets, out / "masks", context, options, extras, model, cohort=cohort)
    return status, cohort.finish()


def test_a_noise_target_is_flagged_and_the_others_complete(noisy_cohort, identity_model, tmp_path):
    status, rows = run_noisy_cohort(noisy_cohort, identity_model, tmp_path)
    assert status == 1  # the blank scan failed, and was reported
    by_name = {row.target: row for row in rows}
    assert by_name["sub-blank.nii.gz"].error and by_name["sub-blank.nii.gz"].flags == ("failed",)
    assert "volume_outlier" in by_name["sub-noise.nii.gz"].flags
    for k in range(5):
        row = by_name[f"sub-{k:02d}.nii.gz"]
        assert row.flags == () and row.mosaic and row.uncertainty
        mask = nib.load(tmp_path / "masks" / row.target)
        expected = np.asarray(mask.dataobj).sum() * voxel_volume_ml(mask.affine)
        assert row.volumes[0].volume_ml == pytest.approx(expected)
        assert row.volumes[0].structure == "brain" and row.volumes[0].volume_ml > 0
    table = (tmp_path / "volumes.tsv").read_text().splitlines()
    assert len(table) == 1 + 6  # every target that finished, one structure each
    assert any(line.startswith("sub-noise.nii.gz\tbrain") and "volume_outlier" in line
               for line in table)  # fmt: skip
    # resumed: existing predictions are read back, and give the same table
    (tmp_path / "volumes.tsv").rename(tmp_path / "first.tsv")
    status, _ = run_noisy_cohort(noisy_cohort, identity_model, tmp_path)
    assert (tmp_path / "volumes.tsv").read_text() == (tmp_path / "first.tsv").read_text()


def test_2d_targets_get_a_report_row_and_no_volumes(identity_model, tmp_path):
    image, mask = head(shape=(32, 32, 3))
    (tmp_path / "in").mkdir()
    for k in range(2):
        np.save(tmp_path / "in" / f"slice{k}.npy", image[:, :, 1].astype(np.float32) + k)
    np.save(tmp_path / "example.npy", image[:, :, 1].astype(np.float32))
    np.save(tmp_path / "label.npy", mask[:, :, 1].astype(np.float32))
    options = PredictOptions(align="none", device="cpu")
    context = load_context(options, [tmp_path / "example.npy"], [tmp_path / "label.npy"])
    cohort = Cohort(statistics=tmp_path / "v.tsv", report=tmp_path / "r.html")
    targets = sorted((tmp_path / "in").glob("*.npy"))
    extras = {"uncertainty": None, "probabilities": None, "qc": None}
    for _ in range(2):  # the second run reads the results back
        assert run_folder(targets, tmp_path / "out", context, options, extras, identity_model,
                          cohort=cohort) == 0  # fmt: skip
    rows = cohort.finish()
    assert len(rows) == 4 and all(r.mosaic and not r.volumes and not r.error for r in rows)
    assert (tmp_path / "v.tsv").read_text().count("\n") == 1  # the header: 2D has no volumes


def test_the_app_offers_the_volume_table_of_a_segmentation(noisy_cohort, identity_model, tmp_path):
    from neuralizer.app.core import run_prediction

    target = noisy_cohort / "targets" / "sub-00.nii.gz"
    examples = [noisy_cohort / "examples" / "sub-05.nii.gz"]
    labels = [noisy_cohort / "mask-05.nii.gz"]
    prediction = run_prediction(identity_model, target, examples, labels, ensemble=1,
                                align="none", seed=0, folder=tmp_path)  # fmt: skip
    output, table = prediction.downloads
    assert table.name == "sub-00_volumes.tsv"
    row = table.read_text().splitlines()[1].split("\t")
    mask = nib.load(output)
    voxels = int(np.asarray(mask.dataobj).sum())
    assert row[:2] == ["sub-00.nii.gz", "mask"] and int(row[4]) == voxels > 0
    assert float(row[3]) == pytest.approx(voxels * voxel_volume_ml(mask.affine), rel=1e-5)
