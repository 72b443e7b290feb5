"""The twelve reproductions of the second reliability probe (issue 28), one test or more each.

Every case ends with a one-line error (exit status 2 on the command line, one line in the app)
within seconds, or with a correct result where the input is legitimate; and in every case the
input files are unchanged: the ``protect`` fixture compares their checksums before and after.
"""

import hashlib
import json
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from neuralizer.cli import main
from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint

GEOMETRY = {"voxel_size_mm": 2.0, "image_size": [16, 16]}
#: every refusal must come this fast (the issue's bound; most take well under a second)
FAST_S = 10.0


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def protect():
    """``protect(*paths)`` records the files' checksums; the test fails if any changed."""
    recorded: dict[Path, str] = {}

    def record(*paths) -> None:
        for path in paths:
            for file in [Path(path)] if Path(path).is_file() else Path(path).rglob("*"):
                if file.is_file():
                    recorded[file] = _digest(file)

    yield record
    changed = [str(p) for p, digest in recorded.items() if not p.is_file() or _digest(p) != digest]
    assert not changed, f"input files changed: {changed}"


def _tiny_model() -> Neuralizer:
    torch.manual_seed(0)
    return Neuralizer(ModelConfig(channels=4, stages=2)).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, _tiny_model(), provenance=GEOMETRY)
    return path


def _volume(seed: int = 0, shape=(14, 14, 14)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = np.indices(shape).astype(np.float32)
    centre = (np.asarray(shape) - 1) / 2
    inside = (((idx - centre[:, None, None, None]) / 5) ** 2).sum(0) < 1
    image = np.where(inside, 0.6 + 0.1 * rng.random(shape), 0).astype(np.float32)
    mask = ((((idx - centre[:, None, None, None]) / 3) ** 2).sum(0) < 1).astype(np.uint8)
    return image, mask


def _nifti(path: Path, data: np.ndarray, voxel_mm: float = 2.0) -> Path:
    affine = np.diag([voxel_mm] * 3 + [1.0])
    affine[:3, 3] = -voxel_mm * (np.asarray(data.shape[:3]) - 1) / 2
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


@pytest.fixture
def scans(tmp_path, protect) -> dict[str, Path]:
    """A target and two context pairs (NIfTI 14³ at 2 mm) in ``tmp/in``, protected."""
    folder = tmp_path / "in"
    folder.mkdir()
    files = {"target": _nifti(folder / "scan.nii.gz", _volume(0)[0])}
    for i in (1, 2):
        image, mask = _volume(i)
        files[f"a{i}"] = _nifti(folder / f"a{i}.nii.gz", image)
        files[f"m{i}"] = _nifti(folder / f"a{i}_mask.nii.gz", mask)
    protect(folder)
    return files


def _predict(argv: list, capsys, checkpoint: Path, status: int = 2) -> str:
    """Run ``neuralizer predict`` ARGV; check the status (2: one line on stderr, fast)."""
    started = time.perf_counter()
    code = main(["predict", *map(str, argv), "--model", str(checkpoint), "--align", "none",
                 "--device", "cpu"])  # fmt: skip
    seconds = time.perf_counter() - started
    captured = capsys.readouterr()
    assert code == status, captured.err
    if status == 2:
        assert captured.err.count("\n") == 1, captured.err
        assert captured.err.startswith("neuralizer predict: error:"), captured.err
        assert seconds < FAST_S, seconds
    return captured.err


def _context(scans, pairs=(1, 2)) -> list:
    return [
        "--context-in", *(scans[f"a{i}"] for i in pairs),
        "--context-out", *(scans[f"m{i}"] for i in pairs),
    ]  # fmt: skip


# ---- 1. an input is overwritten ------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["output is the target", "output is a context input", "output is a context mask",
     "uncertainty is the target", "output is a hard link to the target",
     "output is a symlink to a context mask", "output is the target by another path",
     "qc is the output"],
)  # fmt: skip
def test_no_output_may_be_an_input(case, tmp_path, scans, capsys, checkpoint):
    output = tmp_path / "out.nii.gz"
    extra = []
    if case == "output is the target":
        output = scans["target"]
    elif case == "output is a context input":
        output = scans["a2"]
    elif case == "output is a context mask":
        output = scans["m1"]
    elif case == "uncertainty is the target":
        extra = ["--ensemble", "2", "--uncertainty", scans["target"]]
    elif case == "output is a hard link to the target":
        os.link(scans["target"], tmp_path / "link.nii.gz")
        output = tmp_path / "link.nii.gz"
    elif case == "output is a symlink to a context mask":
        (tmp_path / "sym.nii.gz").symlink_to(scans["m2"])
        output = tmp_path / "sym.nii.gz"
    elif case == "output is the target by another path":
        output = tmp_path / "in" / ".." / "in" / "scan.nii.gz"
    elif case == "qc is the output":
        extra = ["--qc", tmp_path / "out.png"]
        output = tmp_path / "out.png"
    err = _predict(["-i", scans["target"], "-o", output, *_context(scans), *extra], capsys,
                   checkpoint)  # fmt: skip
    assert "the input" in err or "same file" in err or "PNG" in err, err
    assert not (tmp_path / "out.png").exists()


def test_folder_mode_never_overwrites_a_context_file(tmp_path, scans, capsys, checkpoint):
    """A context file in the --uncertainty folder named like a target: that target fails (a
    prediction of that name in the -o folder would be skipped as done)."""
    targets = tmp_path / "targets"
    targets.mkdir()
    _nifti(targets / "a1.nii.gz", _volume(5)[0])
    _nifti(targets / "other.nii.gz", _volume(6)[0])
    out, spread = tmp_path / "out", tmp_path / "in"  # the context's folder
    code = main(["predict", "-i", str(targets), "-o", str(out), *map(str, _context(scans)),
                 "--uncertainty", str(spread), "--ensemble", "2", "--model", str(checkpoint),
                 "--align", "none", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "failed: a1.nii.gz" in err and "the input" in err, err
    assert (out / "other.nii.gz").is_file() and not (out / "a1.nii.gz").exists()


# ---- 10. names -----------------------------------------------------------------------------


def test_a_250_character_output_name_is_written(tmp_path, scans, capsys, checkpoint):
    output = tmp_path / ("x" * 243 + ".nii.gz")
    assert len(output.name) == 250
    _predict(["-i", scans["target"], "-o", output, *_context(scans)], capsys, checkpoint, 0)
    assert nib.load(output).shape == (14, 14, 14)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("where", ["target", "context", "output"])
def test_a_name_too_long_for_the_file_system_is_one_line(where, tmp_path, scans, capsys,
                                                         checkpoint):  # fmt: skip
    long = tmp_path / ("y" * 300 + ".nii.gz")
    target, output, context = scans["target"], tmp_path / "out.nii.gz", _context(scans)
    if where == "target":
        target = long
    elif where == "output":
        output = long
    else:
        context[1] = long
    err = _predict(["-i", target, "-o", output, *context], capsys, checkpoint)
    assert "longer than the 255" in err


# ---- 11. + and [ ] in real file names ------------------------------------------------------


def test_brackets_and_plus_in_real_names(tmp_path, scans, capsys, checkpoint, protect):
    """``ex[1].nii.gz`` is that file even when ``ex1.nii.gz`` exists; ``sub-01+T1.nii.gz``
    is a file, not two; a lone + joins channels explicitly."""
    folder = tmp_path / "named"
    folder.mkdir()
    image, mask = _volume(1)
    _nifti(folder / "ex[1].nii.gz", image)
    _nifti(folder / "ex1.nii.gz", np.zeros_like(image))  # a decoy: blank, so unusable
    _nifti(folder / "ex[1]_mask.nii.gz", mask)
    _nifti(folder / "sub-01+T1.nii.gz", _volume(0)[0])
    protect(folder)
    out = tmp_path / "out.nii.gz"
    argv = ["-i", folder / "sub-01+T1.nii.gz", "-o", out, "--context-in", folder / "ex[1].nii.gz",
            "--context-out", folder / "ex[1]_mask.nii.gz"]  # fmt: skip
    _predict(argv, capsys, checkpoint, 0)
    assert nib.load(out).shape == (14, 14, 14)

    from neuralizer.infer.io import read_input
    from neuralizer.infer.paths import expand, group_channels

    assert expand([str(folder / "ex[1].nii.gz")]) == [str(folder / "ex[1].nii.gz")]
    assert expand([str(folder / "ex?.nii.gz")]) == [str(folder / "ex1.nii.gz")]
    joined = group_channels([str(scans["a1"]), "+", str(scans["a2"]), str(scans["m1"])])
    assert joined == [(str(scans["a1"]), str(scans["a2"])), str(scans["m1"])]
    assert read_input(joined[0]).data.shape == (2, 14, 14, 14)
    assert read_input(f"{scans['a1']}+{scans['a2']}").data.shape == (2, 14, 14, 14)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_input(folder / "sub-02+T1.nii.gz")


def test_explicit_channels_on_the_command_line(tmp_path, scans, capsys, checkpoint):
    out = tmp_path / "out.nii.gz"
    argv = ["-i", scans["target"], "+", scans["target"], "-o", out, "--context-in",
            scans["a1"], "+", scans["a1"], "--context-out", scans["m1"]]  # fmt: skip
    _predict(argv, capsys, checkpoint, 0)
    assert nib.load(out).shape == (14, 14, 14)
    err = _predict(["-i", scans["target"], "+", "-o", out, *_context(scans)], capsys, checkpoint)
    assert "nothing after it" in err


def test_the_app_message_hides_the_upload_folder():
    from neuralizer.app.core import readable

    upload = "/tmp/gradio/3f9a7c/sub-02+T1.nii.gz"
    error = FileNotFoundError(f"{upload}: no such file (nor '/tmp/gradio/3f9a7c/sub-02' missing)")
    message = readable(error, [upload])
    assert "/tmp/gradio" not in message and "sub-02+T1.nii.gz" in message


# ---- 12. an unusable output path is found before any work ----------------------------------


@pytest.mark.parametrize("which", ["-o", "--qc", "--uncertainty"])
def test_an_unusable_output_path_fails_before_loading(which, tmp_path, scans, capsys,
                                                      checkpoint, monkeypatch):  # fmt: skip
    import neuralizer.infer.io as io

    def no_reading(*args, **kwargs):
        raise AssertionError("an input was read before the outputs were checked")

    monkeypatch.setattr(io, "_read_nifti", no_reading)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    bad = blocker / "sub" / ("out.png" if which == "--qc" else "out.nii.gz")
    argv = ["-i", scans["target"], "-o", bad if which == "-o" else tmp_path / "out.nii.gz",
            *_context(scans), "--ensemble", "2"]  # fmt: skip
    if which != "-o":
        argv += [which, bad]
    err = _predict(argv, capsys, checkpoint)
    assert "is a file, not a folder" in err


def test_a_png_output_of_a_volume_fails_before_loading(tmp_path, scans, capsys, monkeypatch):
    import neuralizer.model.checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "load", lambda *a, **k: pytest.fail("model loaded"))
    argv = ["-i", scans["target"], "-o", tmp_path / "out.png", *_context(scans)]
    err = _predict(argv, capsys, Path("unused.safetensors"))
    assert "cannot be a PNG" in err and not (tmp_path / "out.png").exists()


# ---- 8. checkpoint metadata is validated, naming the file and the field --------------------


def _with_metadata(path: Path, **changes: str) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as file:
        metadata, tensors = file.metadata(), {k: file.get_tensor(k) for k in file.keys()}
    out = path.parent / f"changed-{len(list(path.parent.iterdir()))}.safetensors"
    save_file(tensors, str(out), metadata={**metadata, **changes})
    return out


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"provenance": "[" * 50_000 + "]" * 50_000}, "provenance is nested more than 32"),
        ({"model_config": "[" * 50_000 + "]" * 50_000}, "model_config is nested more than 32"),
        ({"train_config": '{"a": ' * 40 + "1" + "}" * 40}, "train_config is nested more than"),
        ({"provenance": "[1, 2]"}, "provenance must be a JSON object or null, got an array"),
        ({"provenance": '"text"'}, "provenance must be a JSON object or null, got text"),
        ({"provenance": "{"}, "provenance is not valid JSON"),
        ({"geometry": "null", "provenance": '{"voxel_size_mm": 0}'}, "provenance.voxel_size_mm"),
        ({"geometry": "null", "provenance": '{"voxel_size_mm": 0.001}'},
         "provenance.voxel_size_mm must be a number of mm in \\[0.25, 32\\]"),
        ({"geometry": "null", "provenance": '{"voxel_size_mm": NaN}'}, "provenance.voxel_size"),
        ({"geometry": "null", "provenance": '{"voxel_size_mm": -2}'}, "provenance.voxel_size"),
        ({"geometry": "null", "provenance": '{"image_size": "ab"}'}, "provenance.image_size"),
        ({"geometry": json.dumps({**GEOMETRY, "voxel_size_mm": 0.001})},
         "geometry.voxel_size_mm"),
        ({"model_config": '{"channels": "8"}'}, "model_config: ModelConfig.channels"),
    ],
)  # fmt: skip
def test_bad_metadata_is_one_line_naming_file_and_field(changes, words, checkpoint, tmp_path,
                                                        scans, capsys, protect):  # fmt: skip
    import neuralizer
    from neuralizer.model.metadata import read_metadata

    bad = _with_metadata(checkpoint, **changes)
    protect(bad)
    for read in (neuralizer.load, read_metadata):
        with pytest.raises(ValueError, match=words) as error:
            read(bad)
        assert str(bad) in str(error.value) and "\n" not in str(error.value)
    err = _predict(["-i", scans["target"], "-o", tmp_path / "out.nii.gz", *_context(scans)],
                   capsys, bad)  # fmt: skip
    assert str(bad) in err
    # the app's --model goes through the same reading
    from neuralizer.app.core import choose_model

    with pytest.raises(ValueError, match=words):
        choose_model(bad)


# ---- 9. finite but absurd weights are refused at load --------------------------------------


@pytest.mark.parametrize("scale", [1e18, 1e3, 4.0])
def test_absurd_weights_are_refused_at_load(scale, checkpoint, tmp_path, scans, capsys, protect):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(checkpoint), "pt") as file:
        metadata = file.metadata()
        tensors = {k: file.get_tensor(k) * scale for k in file.keys()}
    bad = tmp_path / "scaled.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    protect(bad)
    output = tmp_path / "out.nii.gz"
    err = _predict(["-i", scans["target"], "-o", output, *_context(scans)], capsys, bad)
    assert "the model's output on a test input has" in err and str(bad) in err
    assert not output.exists()


def test_the_probe_passes_trained_and_untrained_models(checkpoint):
    import neuralizer
    from neuralizer.model.checkpoint import DEFAULT_WEIGHTS, check_probe_output, untrained

    neuralizer.load(checkpoint)  # random initialisation (c = 4)
    check_probe_output(untrained(), "untrained")
    if DEFAULT_WEIGHTS.is_file():
        neuralizer.load()


# ---- 2. a tiny file forces a huge working grid ---------------------------------------------


@pytest.mark.parametrize("voxel_mm", [1e5, 2000.0, 150.0])
def test_absurd_voxel_sizes_are_refused_from_the_header(voxel_mm, tmp_path, capsys, checkpoint,
                                                        protect):  # fmt: skip
    """A 24³ volume of huge voxels (and a mask on its grid) with --align none: one line, fast;
    the API and the app refuse it likewise."""
    image, mask = _volume(0, (24, 24, 24))
    target = _nifti(tmp_path / "huge.nii.gz", image, voxel_mm)
    context = _nifti(tmp_path / "huge_in.nii.gz", image, voxel_mm)
    labels = _nifti(tmp_path / "huge_mask.nii.gz", mask, voxel_mm)
    protect(tmp_path)
    argv = ["-i", target, "-o", tmp_path / "out.nii.gz", "--context-in", context,
            "--context-out", labels]  # fmt: skip
    err = _predict(argv, capsys, checkpoint)
    assert "more than any scan (2000 mm)" in err and "pixdim" in err
    import neuralizer
    from neuralizer.app.core import run_prediction

    started = time.perf_counter()
    with pytest.raises(ValueError, match="more than any scan"):
        neuralizer.predict_volume(target, [context], [labels], model=checkpoint, align="none")
    with pytest.raises(ValueError, match="more than any scan"):
        run_prediction(neuralizer.load(checkpoint), target, [context], [labels], ensemble=1,
                       align="none", seed=0, folder=tmp_path)  # fmt: skip
    assert time.perf_counter() - started < FAST_S


# ---- 7. --max-memory counts the decoded inputs ---------------------------------------------


def _bomb(path: Path, shape=(256, 256, 256)) -> Path:
    """A NIfTI whose header promises ``shape`` uint8 voxels, all zero: a few KB compressed."""
    nib.save(nib.Nifti1Image(np.zeros(shape, np.uint8), np.eye(4)), str(path))
    return path


def test_max_memory_counts_the_inputs_before_decoding_them(tmp_path, capsys, checkpoint,
                                                           protect, monkeypatch):  # fmt: skip
    """64 pairs of 256³ volumes: about 8.6 GB once decoded, refused from the headers (the
    forward pass alone is estimated at under 2 GiB), without decoding any of them."""
    import neuralizer.infer.io as io

    one = _bomb(tmp_path / "big.nii.gz")
    data = one.read_bytes()
    names = [tmp_path / f"c{i:02d}{kind}.nii.gz" for i in range(64) for kind in ("", "_mask")]
    for name in names:
        name.write_bytes(data)
    protect(tmp_path)
    monkeypatch.setattr(io, "_read_nifti", lambda *a: pytest.fail("a volume was decoded"))
    argv = ["-i", one, "-o", tmp_path / "out.nii.gz", "--context-in", *names[::2],
            "--context-out", *names[1::2], "--max-memory", "4G"]  # fmt: skip
    err = _predict(argv, capsys, checkpoint)
    assert "decoded inputs" in err or "inputs" in err, err
    estimate = float(err.split("needs an estimated ")[1].split(" GiB")[0])
    assert estimate > 129 * 256**3 * 4 / 2**30  # every decoded float32 volume counted


# ---- 5. train never writes into a folder that is not a run of ours -------------------------

TINY_TRAIN = {"data": "phantom", "channels": 4, "stages": 2, "phantom_size": 16, "max_steps": 1,
              "val_batches": 1, "steps_per_epoch": 1, "n_train_subjects": 2,
              "n_val_subjects": 2, "batch_size": 2, "micro_batch_size": 1,
              "max_context": 2}  # fmt: skip


def _train(argv: list, capsys, status: int = 2) -> str:
    started = time.perf_counter()
    code = main(["train", *map(str, argv)])
    err = capsys.readouterr().err
    assert code == status, err
    if status == 2:
        assert err.count("\n") == 1 and err.startswith("neuralizer train: error:"), err
        assert time.perf_counter() - started < FAST_S
    return err


def test_train_refuses_a_folder_of_someone_elses_files(tmp_path, capsys, protect):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "settings"}')
    (folder / "log.jsonl").write_text('{"my": "log"}\n')
    (folder / "best.safetensors").write_bytes(b"my model")
    protect(folder)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({**TINY_TRAIN, "run_dir": str(folder)}))
    protect(config)
    assert "holds files but no training run" in _train([config], capsys)
    assert "holds files but no training run" in _train([config, "--run-dir", "/"], capsys)
    assert not (folder / ".neuralizer-run").exists()


def test_train_runs_in_a_new_or_empty_folder_and_resumes_its_own(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    config = tmp_path / "run.json"
    for name in ("empty", "new/deeper"):
        config.write_text(json.dumps({**TINY_TRAIN, "run_dir": str(tmp_path / name)}))
        _train([config], capsys, 0)
        assert (tmp_path / name / "state.safetensors").is_file()
    config.write_text(
        json.dumps({**TINY_TRAIN, "max_steps": 2, "run_dir": str(tmp_path / "new" / "deeper")})
    )
    _train([config, "--resume"], capsys, 0)


# ---- 6. the training memory check comes before the data sets are built ---------------------


def test_train_memory_is_planned_before_the_data_are_built(tmp_path, capsys, monkeypatch,
                                                          protect):  # fmt: skip
    import neuralizer.train.loop as loop

    monkeypatch.setattr(loop, "build_samplers", lambda cfg: pytest.fail("data were built"))
    config = tmp_path / "big.json"
    values = {**TINY_TRAIN, "batch_size": 200000, "micro_batch_size": 1, "max_context": 32,
              "phantom_size": 32, "run_dir": str(tmp_path / "run")}  # fmt: skip
    config.write_text(json.dumps(values))
    protect(config)
    err = _train([config, "--max-memory", "1G"], capsys)
    assert "validation set" in err and "training batches" in err and "GiB" in err
    assert not (tmp_path / "run").exists()


# ---- 3, 4. the app decodes uploads under a size bound and keeps nothing of a request -------


def _png(path: Path, side: int) -> Path:
    from PIL import Image

    Image.new("L", (side, side)).save(path)
    return path


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """A 512³ uint8 .nii.gz of zeros (~300 KB; 512 MiB once decoded as float32) and a 12000²
    PNG (~140 KB; 144 M pixels)."""
    folder = tmp_path_factory.mktemp("bombs")
    return {"nifti": _bomb(folder / "bomb.nii.gz", (512, 512, 512)),
            "png": _png(folder / "bomb.png", 12000)}  # fmt: skip


@pytest.mark.parametrize("kind", ["nifti", "png"])
def test_the_app_refuses_a_bomb_in_one_line_and_keeps_no_memory(kind, bombs, tmp_path, scans,
                                                                 protect):  # fmt: skip
    gr = pytest.importorskip("gradio")
    from neuralizer.app.core import AppModel
    from neuralizer.app.ui import handle_run

    protect(bombs[kind])
    app_model = AppModel(_tiny_model(), "tiny", True)
    if kind == "nifti":
        context = ([str(scans["a1"])], [str(scans["m1"])])
    else:
        context = ([str(bombs["png"])], [str(bombs["png"])])
    rss = []
    for _ in range(5):
        started = time.perf_counter()
        with pytest.raises(gr.Error) as caught:
            handle_run(app_model, tmp_path, str(bombs[kind]), *context, 1, "none", 0)
        assert time.perf_counter() - started < FAST_S
        rss.append(_rss())
        message = caught.value.message
        assert "\n" not in message and "the app takes at most 64 Mi per file" in message
        assert str(bombs[kind].parent) not in message
    assert rss[-1] - rss[0] < 200 * 2**20, [r / 2**20 for r in rss]


def test_the_cli_refuses_a_png_bomb_from_its_header(bombs, tmp_path, capsys, checkpoint,
                                                    protect):  # fmt: skip
    protect(bombs["png"])
    png = str(bombs["png"])
    argv = ["-i", png, "-o", tmp_path / "out.png", "--context-in", png, "--context-out", png]
    err = _predict(argv, capsys, checkpoint)
    assert "needs an estimated" in err and "inputs" in err


def test_the_app_reads_plus_and_brackets_in_upload_names(tmp_path, scans, protect):
    from neuralizer.app.core import run_prediction

    folder = tmp_path / "uploads"
    folder.mkdir()
    paths = {}
    for name, source in (("sub-01+T1.nii.gz", "target"), ("ex[1].nii.gz", "a1"),
                         ("ex[1]+mask.nii.gz", "m1")):  # fmt: skip
        paths[name] = folder / name
        paths[name].write_bytes(scans[source].read_bytes())
    protect(folder)
    prediction = run_prediction(_tiny_model(), paths["sub-01+T1.nii.gz"], [paths["ex[1].nii.gz"]],
                                [paths["ex[1]+mask.nii.gz"]], ensemble=1, align="none", seed=0,
                                folder=tmp_path)  # fmt: skip
    assert nib.load(prediction.downloads[0]).shape == (14, 14, 14)
    assert prediction.downloads[0].name == "sub-01+T1_prediction.nii.gz"


def test_app_output_names_stay_within_255_bytes():
    from neuralizer.app.core import output_name

    name = output_name("/uploads/" + "é" * 120 + ".nii.gz", "uncertainty")
    assert len(os.fsencode(name)) <= 255 and name.endswith("_uncertainty.nii.gz")
