"""Every bad input of issue 7: a clear message, exit status 2, no output file, fast, and before
the model is loaded (the runs name a checkpoint that does not exist: had the model been loaded
first, the message would be about the checkpoint)."""

import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neuralizer.cli import main

from .conftest import ras_affine


def _nifti(path: Path, data, affine=None) -> str:
    nib.save(nib.Nifti1Image(np.asarray(data), ras_affine() if affine is None else affine), path)
    return str(path)


def _setup(tmp: Path, volume_files) -> dict[str, str]:
    f = {k: str(v) for k, v in volume_files.items()}
    far = ras_affine(origin=(900.0, 900.0, 900.0))
    nan = np.asarray(nib.load(f["img0"]).dataobj).copy()
    nan[3, 3, 3] = np.nan
    (tmp / "corrupt.nii.gz").write_bytes(b"\x1f\x8b not really a nifti")
    (tmp / "notes.txt").write_text("hello")
    (tmp / "folder.nii.gz").mkdir()
    f |= {
        "corrupt": str(tmp / "corrupt.nii.gz"),
        "txt": str(tmp / "notes.txt"),
        "dir": str(tmp / "folder.nii.gz"),
        "4d": _nifti(tmp / "4d.nii.gz", np.ones((8, 8, 8, 5), np.float32)),
        "nan": _nifti(tmp / "nan.nii.gz", nan),
        "blank": _nifti(tmp / "blank.nii.gz", np.full((24, 28, 24), 3.0, np.float32)),
        "small_mask": _nifti(tmp / "small.nii.gz", np.zeros((10, 10, 10), np.uint8)),
        "far_img": _nifti(tmp / "far_img.nii.gz", nib.load(f["img1"]).dataobj, far),
        "far_mask": _nifti(tmp / "far_mask.nii.gz", nib.load(f["mask1"]).dataobj, far),
    }
    return f


# (name, -i, --context-in, --context-out, extra options, expected message fragment)
CASES = [
    ("missing file", "nope.nii.gz", ["img1"], ["mask1"], [], "no such file"),
    ("missing context", "img0", ["nope.nii.gz"], ["mask1"], [], "no such file"),
    ("unreadable (a folder)", "img0", ["dir"], ["mask1"], [], "is a folder"),
    ("unsupported type", "txt", ["img1"], ["mask1"], [], "unsupported file type"),
    ("corrupt nifti", "corrupt", ["img1"], ["mask1"], [], "not a readable NIfTI"),
    ("4D with 5 volumes", "4d", ["img1"], ["mask1"], [], "at most 3"),
    ("count mismatch", "img0", ["img1", "img2"], ["mask1"], [], "2 context inputs but 1"),
    ("pair on two grids", "img0", ["img1"], ["small_mask"], [], "cannot be aligned"),
    ("no overlap, align none", "img0", ["far_img"], ["far_mask"], ["--align", "none"],
     "does not overlap"),
    ("NaN", "nan", ["img1"], ["mask1"], [], "NaN or Inf"),
    ("blank target", "blank", ["img1"], ["mask1"], [], "blank"),
    ("empty context", "img0", [], [], [], "context is empty"),
    ("segmentation of non-binary", "img0", ["img1"], ["img2"], ["--task", "segmentation"],
     "binary"),
    ("label not present", "img0", ["img1"], ["lab1"], ["--labels", "99"], "occur in no context"),
    ("bad output type", "img0", ["img1"], ["mask1"], ["-o", "out.tiff"], "unsupported output"),
    ("bad ensemble", "img0", ["img1"], ["mask1"], ["--ensemble", "0"], "--ensemble"),
    ("uncertainty of one pass", "img0", ["img1"], ["mask1"], ["--uncertainty", "u.nii.gz"],
     "--ensemble K"),
    ("unknown preset", "img0", [], [], ["--preset", "nonsense"], "unknown preset"),
    ("preset and context", "img0", ["img1"], ["mask1"], ["--preset", "skullstrip"], "not both"),
]  # fmt: skip


@pytest.mark.parametrize(
    "target, c_in, c_out, extra, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2_fast_with_message(
    tmp_path, volume_files, capsys, target, c_in, c_out, extra, message
):
    f = _setup(tmp_path, volume_files)
    out = tmp_path / "out.nii.gz"
    argv = ["predict", "-i", f.get(target, str(tmp_path / target)), "-o", str(out)]
    argv += ["--model", str(tmp_path / "no-such-model.safetensors")]
    if c_in:
        argv += ["--context-in", *[f.get(c, str(tmp_path / c)) for c in c_in]]
    if c_out:
        argv += ["--context-out", *[f.get(c, str(tmp_path / c)) for c in c_out]]
    if "-o" in extra:
        argv[argv.index("-o") + 1] = str(tmp_path / extra[1])
        extra = []
    start = time.perf_counter()
    status = main(argv + extra)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert status == 2, err
    assert message in err
    assert "checkpoint" not in err  # failed before the model was loaded
    assert len(err.strip().splitlines()) == 1
    assert elapsed < 5.0
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_empty_context_mask_is_valid(tmp_path, volume_files, tiny_checkpoint):
    empty = _nifti(tmp_path / "empty.nii.gz", np.zeros((24, 28, 24), np.uint8))
    out = tmp_path / "out.nii.gz"
    f = {k: str(v) for k, v in volume_files.items()}
    argv = ["predict", "-i", f["img0"], "-o", str(out), "--model", str(tiny_checkpoint),
            "--context-in", f["img1"], f["img2"], "--context-out", empty, f["mask2"],
            "--batch-size", "64", "--align", "none"]  # fmt: skip
    assert main(argv) == 0
    assert nib.load(out).get_data_dtype() == np.uint8


def test_folder_with_a_corrupt_file_processes_the_rest(tmp_path, volume_files, tiny_checkpoint,
                                                        capsys):  # fmt: skip
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("a.nii.gz", "c.nii.gz"):
        (folder / name).write_bytes(Path(volume_files["img0"]).read_bytes())
    (folder / "b.nii.gz").write_bytes(b"corrupt")
    out = tmp_path / "results"
    argv = ["predict", "-i", str(folder), "-o", str(out), "--model", str(tiny_checkpoint),
            "--context-in", str(volume_files["img1"]), "--context-out",
            str(volume_files["mask1"]), "--batch-size", "64", "--align", "none"]  # fmt: skip
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "predicted 2 of 3" in captured.out
    assert "b.nii.gz" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["a.nii.gz", "c.nii.gz"]


def test_folder_refuses_to_write_into_its_input(tmp_path, volume_files):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.nii.gz").write_bytes(Path(volume_files["img0"]).read_bytes())
    argv = ["predict", "-i", str(folder), "-o", str(folder), "--context-in",
            str(volume_files["img1"]), "--context-out", str(volume_files["mask1"])]  # fmt: skip
    assert main(argv) == 2


def test_output_names_cannot_escape_the_folder(tmp_path):
    from neuralizer.infer.folder import inside

    assert inside(tmp_path, "../../etc/passwd").parent == tmp_path.resolve()
    assert inside(tmp_path, "a.nii.gz") == (tmp_path / "a.nii.gz").resolve()
    assert inside(tmp_path, "/etc/passwd") == (tmp_path / "passwd").resolve()
    assert inside(tmp_path, "sub/../../x.npy") == (tmp_path / "x.npy").resolve()
    (tmp_path / "link.nii.gz").symlink_to(tmp_path.parent / "elsewhere.nii.gz")
    with pytest.raises(ValueError, match="would leave the output folder"):
        inside(tmp_path, "link.nii.gz")


@pytest.mark.parametrize("where", ["output", "uncertainty"])
def test_folder_mode_never_writes_through_a_symlink(tmp_path, volume_files, tiny_checkpoint,
                                                    capsys, where):  # fmt: skip
    """An output name that is a symlink to a file outside the folder fails that target (exit 1)
    and leaves the file it points to alone; the other targets are predicted."""
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("a.nii.gz", "b.nii.gz"):
        (scans / name).write_bytes(Path(volume_files["img0"]).read_bytes())
    out, out_sd = tmp_path / "out", tmp_path / "sd"
    (tmp_path / "precious.nii.gz").write_bytes(b"the user's data")
    folder = out if where == "output" else out_sd
    folder.mkdir()
    (folder / "a.nii.gz").symlink_to(tmp_path / "precious.nii.gz")
    argv = ["predict", "-i", str(scans), "-o", str(out), "--model", str(tiny_checkpoint),
            "--context-in", str(volume_files["img1"]), "--context-out",
            str(volume_files["mask1"]), "--ensemble", "2", "--uncertainty", str(out_sd),
            "--batch-size", "64", "--align", "none"]  # fmt: skip
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "a.nii.gz" in captured.err and "would leave the output folder" in captured.err
    assert (tmp_path / "precious.nii.gz").read_bytes() == b"the user's data"
    assert (out / "b.nii.gz").is_file() and (out_sd / "b.nii.gz").is_file()
    assert not (out / "a.nii.gz").is_file() or (out / "a.nii.gz").is_symlink()


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    for option in ("--context-in", "--context-out", "--uncertainty", "--ensemble", "--task",
                   "--labels", "--align", "--model", "--device", "--threads", "--seed",
                   "--preset", "--qc", "--spacing"):  # fmt: skip
        assert option in text
