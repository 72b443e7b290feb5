"""Property-based tests of prediction: ``neuralizer.predict`` (2D arrays) and ``neuralizer
predict`` (NPY, PNG and NIfTI files) with generated bad inputs, and ``--max-memory``.

A bad input gives a ValueError (API) or exit status 2 with one line on stderr (CLI), and no output
file, not even a temporary one; generated valid inputs give finite results of the right shape.
"""

import gzip
import io
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import neuralizer
from neuralizer.cli import main
from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint
from neuralizer.model.limits import MemoryLimitError

GEOMETRY = {"voxel_size_mm": 2.0, "image_size": [16, 16]}
#: Per fault (every fault is a parametrised case): 10 examples by default, 80 in the long profile.
PER_FAULT = settings(max_examples=max(10, settings.default.max_examples // 5))
FEW = settings(max_examples=max(10, settings.default.max_examples // 4))


def _tiny_model() -> Neuralizer:
    torch.manual_seed(0)
    model = Neuralizer(ModelConfig(channels=4, stages=2)).eval()
    model.provenance = dict(GEOMETRY)
    return model


@pytest.fixture(scope="module")
def model() -> Neuralizer:
    return _tiny_model()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, _tiny_model(), provenance=GEOMETRY)
    return path


def _no_files(folder: Path, *names: str) -> None:
    """None of ``names`` (nor a temporary file of them) exists in ``folder``."""
    left = [p.name for p in folder.iterdir() if any(n in p.name for n in names)]
    assert not left, left


def _cli_fails_cleanly(argv: list[str], capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("neuralizer predict: error:"), err
    return err


def _image(rng: np.random.Generator, shape) -> np.ndarray:
    """A random image with a bright disc: never constant."""
    *_, height, width = shape
    yy, xx = np.mgrid[:height, :width]
    disc = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 3) ** 2
    return (rng.random(shape) * 0.2 + disc).astype(np.float32)


# ---- the 2D API ------------------------------------------------------------------------------

VALID_2D = st.fixed_dictionaries(
    {
        "height": st.integers(4, 40),
        "width": st.integers(4, 40),
        "channels": st.sampled_from([0, 1, 2, 3]),  # 0: H×W without a channel axis
        "n_context": st.integers(1, 3),
        "outputs": st.sampled_from(["mask", "empty-mask", "image", "labels"]),
        "spacing": st.none() | st.floats(0.5, 3.0),
        "stacked": st.booleans(),  # L×… arrays rather than lists
        "ensemble": st.sampled_from([1, 2]),
        "seed": st.integers(0, 2**16),
    }
)


def _valid_2d(case: dict):
    rng = np.random.default_rng(case["seed"])
    lead = () if case["channels"] == 0 else (case["channels"],)
    shape = (*lead, case["height"], case["width"])
    target = _image(rng, shape)
    c_in = [_image(rng, shape) for _ in range(case["n_context"])]
    c_out = []
    for c in c_in:
        grey = c if c.ndim == 2 else c[0]
        c_out.append(
            {
                "mask": (grey > 0.5).astype(np.float32),
                "empty-mask": np.zeros(grey.shape, np.uint8),
                "image": grey * 30 - 5,
                "labels": (grey > 0.5).astype(np.int16) * 4,
            }[case["outputs"]]
        )
    if case["stacked"]:
        c_in, c_out = np.stack(c_in), np.stack(c_out)
    return target, c_in, c_out


@given(case=VALID_2D)
def test_predict_2d_valid_inputs_give_finite_results_of_the_right_shape(model, case):
    target, c_in, c_out = _valid_2d(case)
    labels = [4] if case["outputs"] == "labels" else None
    result = neuralizer.predict(
        target, c_in, c_out, model=model, spacing=case["spacing"], ensemble=case["ensemble"],
        labels=labels, seed=case["seed"], device="cpu",
    )  # fmt: skip
    assert result.prediction.shape == (case["height"], case["width"])
    assert np.isfinite(result.prediction).all()
    if result.uncertainty is not None:
        assert result.uncertainty.shape == result.prediction.shape
        assert np.isfinite(result.uncertainty).all()


BAD_2D = (
    "rank", "channels", "context-shape", "output-shape", "nan", "inf", "constant-target",
    "complex", "text", "none", "object", "count", "empty-context", "non-binary-segmentation",
    "zero-size", "spacing", "ensemble", "task", "labels",
)  # fmt: skip


def _bad_2d(fault: str, data, rng):
    """(target, context_in, context_out, keyword arguments) with one ``fault``."""
    height, width = data.draw(st.integers(4, 24)), data.draw(st.integers(4, 24))
    n = data.draw(st.integers(1, 3))
    target = _image(rng, (height, width))
    c_in = [_image(rng, (height, width)) for _ in range(n)]
    c_out = [(c > 0.5).astype(np.float32) for c in c_in]
    kwargs: dict = {}
    which = data.draw(st.sampled_from(["target", "context_in", "context_out"]))
    if fault == "rank":
        extra = data.draw(st.sampled_from([(), (2, 1, 1), (1, 1, 1, 1)]))
        bad = np.ones(extra + ((height, width) if extra else (height * width,)), np.float32)
        target = bad + rng.random(bad.shape, dtype=np.float32)
    elif fault == "channels":
        target = _image(rng, (data.draw(st.integers(4, 6)), height, width))
    elif fault == "context-shape":
        c_in[data.draw(st.integers(0, n - 1))] = _image(rng, (height + 1, width))
    elif fault == "output-shape":
        c_out[data.draw(st.integers(0, n - 1))] = np.zeros((height, width + 2), np.float32)
    elif fault in ("nan", "inf"):
        value = np.nan if fault == "nan" else data.draw(st.sampled_from([np.inf, -np.inf]))
        arrays = {"target": [target], "context_in": c_in, "context_out": c_out}[which]
        arrays[data.draw(st.integers(0, len(arrays) - 1))][
            data.draw(st.integers(0, height - 1)), data.draw(st.integers(0, width - 1))
        ] = value
    elif fault == "constant-target":
        target = np.full((height, width), data.draw(st.floats(-1e3, 1e3)), np.float32)
    elif fault in ("complex", "text", "none", "object"):
        bad = {
            "complex": (target + 1j * target).astype(np.complex64),
            "text": np.full((height, width), "a"),
            "none": None,
            "object": np.array([[object()] * width] * height, dtype=object),
        }[fault]
        if which == "target":
            target = bad
        else:
            {"context_in": c_in, "context_out": c_out}[which][0] = bad
    elif fault == "count":
        (c_in if data.draw(st.booleans()) else c_out).append(np.zeros((height, width), np.float32))
    elif fault == "empty-context":
        c_in, c_out = [], []
    elif fault == "non-binary-segmentation":
        c_out[0] = c_out[0] * data.draw(st.sampled_from([2.0, 0.5, -1.0, 255.0]))
        kwargs["task"] = "segmentation"
    elif fault == "zero-size":
        target = np.zeros((0, width), np.float32)
    elif fault == "spacing":
        kwargs["spacing"] = data.draw(st.sampled_from([0.0, -1.0, np.nan]))
    elif fault == "ensemble":
        kwargs["ensemble"] = data.draw(st.sampled_from([0, -1, 1.5, "2"]))
    elif fault == "task":
        kwargs["task"] = data.draw(st.text(max_size=6).filter(lambda t: t not in ("auto", "image")))
        kwargs["task"] = kwargs["task"] if kwargs["task"] != "segmentation" else "seg"
    elif fault == "labels":
        kwargs["labels"] = data.draw(st.sampled_from([[99], "some", []]))
    return target, c_in, c_out, kwargs


@pytest.mark.parametrize("fault", BAD_2D)
@PER_FAULT
@given(data=st.data())
def test_predict_2d_bad_inputs_raise_value_errors(model, fault, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    target, c_in, c_out, kwargs = _bad_2d(fault, data, rng)
    with pytest.raises(ValueError) as error:
        neuralizer.predict(target, c_in, c_out, model=model, device="cpu", **kwargs)
    assert str(error.value) and "\n" not in str(error.value).strip()


# ---- the command line ------------------------------------------------------------------------


def _head(size: int = 12) -> np.ndarray:
    grid = np.mgrid[:size, :size, :size] - (size - 1) / 2
    radius = np.sqrt((grid**2).sum(0))
    return ((radius < size / 3) * (50 + grid[0] * 2)).astype(np.float32)


AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _save_nifti(path: Path, data: np.ndarray, affine=AFFINE) -> None:
    nib.save(nib.Nifti1Image(data, affine), str(path))


def _patch_affine(path: Path, image: np.ndarray, bad: np.ndarray) -> None:
    """nibabel refuses to write singular or non-finite affines: patch the sform bytes."""
    raw = bytearray(nib.Nifti1Image(image, AFFINE).to_bytes())
    raw[252:256] = np.array([0, 1], "<i2").tobytes()  # qform_code 0, sform_code 1
    raw[280:328] = bad[:3].astype("<f4").tobytes()  # srow_x, srow_y, srow_z
    path.write_bytes(gzip.compress(bytes(raw)) if path.name.endswith(".gz") else bytes(raw))


def _write_2d(path: Path, data: np.ndarray) -> None:
    if path.suffix == ".npy":
        np.save(path, data)
    else:
        Image.fromarray(np.clip(data * 255, 0, 255).astype(np.uint8)).save(path)


def _valid_files(folder: Path, kind: str, n: int, rng) -> tuple[str, list[str], list[str]]:
    """A target and ``n`` context pairs (binary masks) of ``kind`` in ``folder``."""
    names = []
    for i in range(n + 1):
        if kind == "nifti":
            image = _head() * (1 + 0.1 * rng.random())
            paths = folder / f"img{i}.nii.gz", folder / f"mask{i}.nii.gz"
            _save_nifti(paths[0], image)
            _save_nifti(paths[1], (image > 55).astype(np.uint8))
        else:
            image = _image(rng, (20, 24))
            paths = folder / f"img{i}.{kind}", folder / f"mask{i}.{kind}"
            _write_2d(paths[0], image)
            _write_2d(paths[1], (image > 0.6).astype(np.float32))
        names.append(tuple(str(p) for p in paths))
    return names[0][0], [a for a, _ in names[1:]], [b for _, b in names[1:]]


BAD_FILES = (
    "random", "truncate", "empty", "4d", "singular", "nan-affine", "nan-data", "npy-rank",
    "npy-dtype", "npy-header", "png-truncate", "count", "non-binary-segmentation",
    "blank-target", "kind-mix", "max-memory", "zero-size", "huge-header",
)  # fmt: skip


def _break(fault: str, folder: Path, files, data, rng) -> tuple[list[str], str]:
    """Damage one of ``files`` (target, context_in, context_out) for ``fault``; returns the extra
    command-line arguments the case needs."""
    target, c_in, c_out = files
    victim = Path(data.draw(st.sampled_from([target, *c_in, *c_out])))
    extra: list[str] = []
    if fault == "random":
        victim.write_bytes(data.draw(st.binary(max_size=400)))
    elif fault == "truncate" or fault == "png-truncate":
        raw = victim.read_bytes()
        end = len(raw) // 2 if victim.name.endswith((".gz", ".png")) else len(raw) - 1
        victim.write_bytes(raw[: data.draw(st.integers(0, end))])
    elif fault == "empty":
        victim.write_bytes(b"")
    elif fault == "4d":
        _save_nifti(victim, np.stack([_head()] * data.draw(st.integers(4, 6)), axis=-1))
    elif fault in ("singular", "nan-affine"):
        bad = AFFINE.copy()
        if fault == "singular":
            bad[:, data.draw(st.integers(0, 2))] = 0
        else:
            bad[data.draw(st.integers(0, 2)), data.draw(st.integers(0, 3))] = data.draw(
                st.sampled_from([np.nan, np.inf, -np.inf])
            )
        _patch_affine(victim, _head(), bad)
    elif fault == "nan-data":
        image = np.load(victim) if victim.suffix == ".npy" else _head()
        image.flat[data.draw(st.integers(0, image.size - 1))] = np.nan
        np.save(victim, image) if victim.suffix == ".npy" else _save_nifti(victim, image)
    elif fault == "npy-rank":
        shape = data.draw(st.sampled_from([(20 * 24,), (1, 1, 20, 24), (4, 20, 24), (2, 2)]))
        np.save(victim, rng.random(shape).astype(np.float32))
    elif fault == "npy-dtype":
        bad = data.draw(st.sampled_from(["complex", "text", "datetime", "void"]))
        array = {
            "complex": (rng.random((20, 24)) * (1 + 1j)).astype(np.complex64),
            "text": np.full((20, 24), "ab"),
            "datetime": np.zeros((20, 24), "datetime64[s]"),
            "void": np.zeros((20, 24), "V4"),
        }[bad]
        np.save(victim, array)
    elif fault == "npy-header":
        raw = bytearray(victim.read_bytes())
        start = data.draw(st.integers(8, 60))
        raw[start : start + 4] = data.draw(st.binary(min_size=4, max_size=4))
        victim.write_bytes(bytes(raw))
    elif fault == "count":
        extra = ["--context-out", *c_out[: len(c_out) - 1]] if len(c_out) > 1 else []
        extra = extra or ["--context-out", *c_out, c_out[0]]
    elif fault == "non-binary-segmentation":
        mask = Path(data.draw(st.sampled_from(c_out)))
        scale = data.draw(st.sampled_from([2.0, 0.5, 3.0]))
        if mask.suffix == ".npy":
            np.save(mask, np.load(mask) * scale)
        elif mask.name.endswith(".nii.gz"):
            _save_nifti(mask, np.asarray(nib.load(mask).dataobj, np.float32) * scale)
        else:
            _write_2d(mask, np.asarray(Image.open(mask), np.float32) / 255 * 0.5)
        extra = ["--task", "segmentation"]
    elif fault == "blank-target":
        if Path(target).suffix == ".npy":
            np.save(target, np.full((20, 24), data.draw(st.floats(-10, 10)), np.float32))
        else:
            _save_nifti(Path(target), np.full((12, 12, 12), 7.0, np.float32))
    elif fault == "kind-mix":
        other = folder / "other.npy"
        np.save(other, _image(rng, (12, 12)))
        extra = ["--context-in", str(other), *c_in[1:]]
    elif fault == "zero-size":
        shape = data.draw(st.sampled_from([(0, 12, 12), (12, 0, 12), (12, 12, 0)]))
        if victim.suffix == ".npy":
            np.save(victim, np.zeros(shape[1:], np.float32))
        else:
            _save_nifti(victim, np.zeros(shape, np.float32))
    elif fault == "huge-header":  # a header promising terabytes, followed by a few bytes
        side = data.draw(st.sampled_from([10**5, 10**6, 2**31 - 1]))
        if victim.suffix == ".npy":
            header = {"descr": "<f4", "fortran_order": False, "shape": (side, side)}
            buffer = io.BytesIO()
            np.lib.format.write_array_header_1_0(buffer, header)
            victim.write_bytes(buffer.getvalue() + b"\0" * 64)
        else:
            raw = bytearray(nib.Nifti1Image(_head(), AFFINE).to_bytes())
            raw[42:48] = np.array([min(side, 32767)] * 3, "<i2").tobytes()  # dim[1:4]
            victim.write_bytes(gzip.compress(bytes(raw[:400])))
    elif fault == "max-memory":
        extra = ["--max-memory=" + data.draw(st.sampled_from(["1K", "100", "2M", "lots", "-1G"]))]
    return extra


KINDS = {
    "4d": ["nifti"], "singular": ["nifti"], "nan-affine": ["nifti"], "npy-rank": ["npy"],
    "npy-dtype": ["npy"], "npy-header": ["npy"], "png-truncate": ["png"],
    "nan-data": ["npy", "nifti"], "blank-target": ["npy", "nifti"],
    "kind-mix": ["nifti"], "zero-size": ["npy", "nifti"], "huge-header": ["npy", "nifti"],
}  # fmt: skip


@pytest.mark.parametrize("fault", BAD_FILES)
@PER_FAULT
@given(data=st.data())
def test_predict_cli_bad_files_exit_2_without_output(checkpoint, capsys, fault, data):
    kind = data.draw(st.sampled_from(KINDS.get(fault, ["npy", "png", "nifti"])))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        files = _valid_files(folder, kind, data.draw(st.integers(1, 2)), rng)
        extra = _break(fault, folder, files, data, rng)
        output = folder / ("result.nii.gz" if kind == "nifti" else "result.npy")
        argv = ["predict", "-i", files[0], "-o", str(output), "--model", str(checkpoint),
                "--device", "cpu", "--context-in", *files[1], "--context-out", *files[2],
                *extra]  # fmt: skip
        _cli_fails_cleanly(argv, capsys)
        _no_files(folder, "result")


@FEW
@given(
    kind=st.sampled_from(["npy", "png", "nifti"]),
    n=st.integers(1, 3),
    out=st.sampled_from([".npy", ".png", ".nii.gz", ".nii"]),
    seed=st.integers(0, 2**16),
)
def test_predict_cli_valid_files_give_finite_results(checkpoint, capsys, kind, n, out, seed):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        target, c_in, c_out = _valid_files(folder, kind, n, rng)
        if kind == "nifti" and out in (".png",):
            out = ".npy"  # a volume is not a picture
        output = folder / f"result{out}"
        argv = ["predict", "-i", target, "-o", str(output), "--model", str(checkpoint),
                "--device", "cpu", "--context-in", *c_in, "--context-out", *c_out,
                "--align", "none"]  # 12³ noise is no head to register  # fmt: skip
        assert main(argv) == 0, capsys.readouterr().err
        if out == ".png":
            result = np.asarray(Image.open(output))
        elif out == ".npy":
            result = np.load(output)
        else:
            result = np.asarray(nib.load(output).dataobj)
        assert result.shape == ((12, 12, 12) if kind == "nifti" else (20, 24))
        assert np.isfinite(result).all()
        _no_files(folder, ".tmp")


# ---- --max-memory ----------------------------------------------------------------------------


def test_max_memory_refuses_with_the_estimate_and_writes_nothing(tmp_path, checkpoint, capsys):
    rng = np.random.default_rng(0)
    target, c_in, c_out = _valid_files(tmp_path, "npy", 2, rng)
    output = tmp_path / "result.npy"
    argv = ["predict", "-i", target, "-o", str(output), "--model", str(checkpoint),
            "--context-in", *c_in, "--context-out", *c_out]  # fmt: skip
    err = _cli_fails_cleanly([*argv, "--max-memory", "1M"], capsys)
    assert "needs an estimated" in err and "MiB" in err and "--max-memory" in err
    assert err.split("error: ")[1].startswith("prediction of ")  # the resource plan
    assert "inputs" in err and "forward pass" in err
    _no_files(tmp_path, "result")
    err = _cli_fails_cleanly([*argv, "--max-memory", "lots"], capsys)
    assert "cannot read the memory size" in err
    for limit in ("8G", "inf"):
        assert main([*argv, "--max-memory", limit]) == 0
        assert np.isfinite(np.load(output)).all()


def test_max_memory_in_the_api(model, tmp_path):
    rng = np.random.default_rng(1)
    target, c_in, c_out = _image(rng, (16, 16)), [_image(rng, (16, 16))], [np.eye(16)]
    with pytest.raises(MemoryLimitError, match=r"^prediction of target_in .* needs an estimated"):
        neuralizer.predict(target, c_in, c_out, model=model, max_memory="1M")
    with pytest.raises(MemoryLimitError):
        neuralizer.predict(target, c_in, c_out, model=model, max_memory=1000)
    assert neuralizer.predict(target, c_in, c_out, model=model, max_memory="8G").task
    image = tmp_path / "img.nii.gz"
    mask = tmp_path / "mask.nii.gz"
    _save_nifti(image, _head())
    _save_nifti(mask, (_head() > 55).astype(np.uint8))
    with pytest.raises(
        MemoryLimitError,
        match=r"^prediction of .*img.nii.gz \(1 context pairs, ensemble 1, 8 slice\(s\) of 16×16",
    ):
        neuralizer.predict_volume(image, [image], [mask], model=model, max_memory="1M")
    result = neuralizer.predict_volume(image, [image], [mask], model=model, max_memory="inf",
                                       align="none")  # fmt: skip
    assert result.prediction.shape == (12, 12, 12)
