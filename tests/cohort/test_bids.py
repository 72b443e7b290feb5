"""``neuralizer predict --bids``: a six-subject BIDS dataset, two with hand labels, in; a BIDS
derivatives dataset, a volume table and a QC report out (the shipped model, one thread)."""

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neuralizer.cli import main
from neuralizer.infer.bids import parse_filters, plan_bids
from neuralizer.infer.statistics import voxel_volume_ml

from ..app import browser
from .conftest import head

pytest.importorskip("bids")

AFFINE = np.array([[-2.0, 0, 0, 20], [0, 2.0, 0, -24], [0, 0, 2.0, -20], [0, 0, 0, 1]])
#: subject -> session (None: the subject has no session level)
SUBJECTS = {"01": None, "02": "01", "03": None, "04": "01", "05": None, "06": "02"}
LABELLED = ("01", "02")


def anat(root: Path, subject: str, session: str | None) -> tuple[Path, str]:
    folder = root / f"sub-{subject}" / (f"ses-{session}" if session else "") / "anat"
    folder.mkdir(parents=True, exist_ok=True)
    return folder, f"sub-{subject}" + (f"_ses-{session}" if session else "")


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bids") / "study"
    root.mkdir()
    write_json(root / "dataset_description.json", {"Name": "tiny study", "BIDSVersion": "1.9.0"})
    (root / "participants.tsv").write_text("participant_id\n" + "".join(
        f"sub-{s}\n" for s in SUBJECTS))  # fmt: skip
    manual = root / "derivatives" / "manual"
    manual.mkdir(parents=True)
    write_json(manual / "dataset_description.json", {
        "Name": "hand labels", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "Manual"}]})  # fmt: skip
    for k, (subject, session) in enumerate(SUBJECTS.items()):
        image, mask = head(seed=k, radius=0.27 + 0.015 * k)
        folder, stem = anat(root, subject, session)
        nib.save(nib.Nifti1Image(image, AFFINE), folder / f"{stem}_T1w.nii.gz")
        if subject == "03":  # another contrast, not a target
            nib.save(nib.Nifti1Image(image, AFFINE), folder / f"{stem}_T2w.nii.gz")
        if subject in LABELLED:
            labels, stem = anat(manual, subject, session)
            nib.save(nib.Nifti1Image(mask, AFFINE), labels / f"{stem}_desc-brain_mask.nii.gz")
    return root


def tree(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*") if p.is_file() and skip not in p.parents
    }  # fmt: skip


def test_filters_and_planning(dataset, tmp_path, capsys):
    assert parse_filters(["suffix=T1w", "ses=01,02"], "f") == {
        "suffix": "T1w", "session": ["01", "02"]}  # fmt: skip
    with pytest.raises(ValueError, match="key=value"):
        parse_filters(["T1w"], "--target-filter")
    job = plan_bids(dataset, tmp_path / "out", examples_dir=dataset / "derivatives" / "manual",
                    participants=["sub-02", "03", "04"])  # fmt: skip
    assert [t.path.name for t in job.targets] == ["sub-03_T1w.nii.gz", "sub-04_ses-01_T1w.nii.gz"]
    assert [Path(p).name for p in job.context_in] == [
        "sub-01_T1w.nii.gz",
        "sub-02_ses-01_T1w.nii.gz",
    ]
    assert job.desc == "brain"
    example = dataset / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    label = dataset / "derivatives/manual/sub-01/anat/sub-01_desc-brain_mask.nii.gz"
    job = plan_bids(dataset, tmp_path / "out", context_in=[str(example)],
                    context_out=[str(label)], desc="wholeBrain")  # fmt: skip
    assert len(job.targets) == 5 and example not in [t.path for t in job.targets]
    assert job.targets[0].output("wholeBrain", "mask") == Path(
        "sub-02/ses-01/anat/sub-02_ses-01_desc-wholeBrain_mask.nii.gz")  # fmt: skip
    with pytest.raises(ValueError, match="letters and digits"):
        plan_bids(dataset, tmp_path / "out", preset="skullstrip", desc="whole-brain")
    assert main(["predict", "-o", str(tmp_path / "x.nii.gz"), "--preset", "skullstrip"]) == 2
    assert "--bids" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a recognized entity"):
        plan_bids(dataset, tmp_path / "out", target_filter=["colour=red"], preset="skullstrip")
    argv = ["predict", "--bids", str(dataset), "-o", str(dataset / "sub-01" / "out"),
            "--preset", "skullstrip"]  # fmt: skip
    assert main(argv) == 2
    assert "inside the BIDS dataset" in capsys.readouterr().err
    assert not (dataset / "sub-01" / "out").exists()


def derivative_rules():
    """Regular expressions of every file name the BIDS specification allows, derivatives
    included (its own schema, from bidsschematools)."""
    schema_tools = pytest.importorskip("bidsschematools.schema")
    rules = pytest.importorskip("bidsschematools.rules")
    schema = schema_tools.load_schema()
    groups = (schema.rules.files.common, schema.rules.files.raw, schema.rules.files.deriv)
    return [
        re.compile(r["regex"])
        for g in groups
        for r in rules.regexify_filename_rules(g, schema, level=2)
    ]


def test_bids_in_derivatives_out(dataset, capsys):
    out = dataset / "derivatives" / "neuralizer"
    before = tree(dataset, out)
    argv = ["predict", "--bids", str(dataset), "-o", str(out), "--target-filter", "suffix=T1w",
            "--examples-from", str(dataset / "derivatives" / "manual"), "--ensemble", "2",
            "--threads", "1", "--device", "cpu", "--align", "none"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert tree(dataset, out) == before  # nothing written in the dataset but the derivatives
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    generated = description["GeneratedBy"][0]
    assert generated["Name"] == "neuralizer" and generated["Version"]
    assert (
        description["Neuralizer"]["Seed"] == 0
        and len(description["Neuralizer"]["ModelSHA256"]) == 64
    )
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    targets = {"03": "sub-03", "04": "sub-04_ses-01", "05": "sub-05", "06": "sub-06_ses-02"}
    expected = {".bidsignore", "dataset_description.json", "desc-brain_volumes.tsv",
                "desc-brain_report.html"}  # fmt: skip
    for subject, stem in targets.items():
        folder = f"sub-{subject}/" + (f"ses-{SUBJECTS[subject]}/" if SUBJECTS[subject] else "")
        for name in ("desc-brain_mask", "desc-brain_probseg", "desc-brainUncertainty_T1w"):
            expected |= {f"{folder}anat/{stem}_{name}.nii.gz", f"{folder}anat/{stem}_{name}.json"}
    assert set(written) == expected
    allowed = derivative_rules()
    ignored = {".bidsignore", "desc-brain_volumes.tsv", "desc-brain_report.html"}
    for name in set(written) - ignored:
        assert any(rule.fullmatch(name) for rule in allowed), name
    assert not any(
        rule.fullmatch("sub-03/anat/sub-03_desc-brain_volume.nii.gz") for rule in allowed
    )
    side = json.loads((out / "sub-04/ses-01/anat/sub-04_ses-01_desc-brain_mask.json").read_text())
    assert side["Sources"] == ["bids:raw:sub-04/ses-01/anat/sub-04_ses-01_T1w.nii.gz"]
    assert side["Context"][1] == {
        "Input": "bids:raw:sub-02/ses-01/anat/sub-02_ses-01_T1w.nii.gz",
        "Output": "bids:raw:derivatives/manual/sub-02/ses-01/anat/"
        "sub-02_ses-01_desc-brain_mask.nii.gz",
    }  # fmt: skip
    assert (side["Alignment"], side["Ensemble"], side["Seed"]) == ("none", 2, 0)
    rows = [line.split("\t") for line in (out / "desc-brain_volumes.tsv").read_text().splitlines()]
    assert rows[0][:5] == ["target", "structure", "label", "volume_ml", "voxels"]
    assert sorted(r[0] for r in rows[1:]) == [f"{s}_T1w.nii.gz" for s in targets.values()]
    total = 0
    for row in rows[1:]:
        stem = row[0].removesuffix("_T1w.nii.gz")
        mask = nib.load(next(out.rglob(f"{stem}_desc-brain_mask.nii.gz")))
        voxels = int(np.asarray(mask.dataobj).sum())
        assert row[1] == "brain" and int(row[4]) == voxels
        assert float(row[3]) == pytest.approx(voxels * voxel_volume_ml(mask.affine), rel=1e-5)
        assert row[5] != "n/a"  # an ensemble ran
        total += voxels
    assert total > 0
    if browser.chromium_paths() is not None:
        with browser.headless_chromium() as driver:
            driver.get((out / "desc-brain_report.html").as_uri())
            rows = driver.find_elements("css selector", "#results tbody tr")
            assert len(rows) == 4
            assert all(r.find_elements("css selector", "img") for r in rows)
    # a rerun skips the finished targets and writes the same table
    table = (out / "desc-brain_volumes.tsv").read_text()
    assert main(argv) == 0
    assert "skipped 4" in capsys.readouterr().out
    assert (out / "desc-brain_volumes.tsv").read_text() == table
