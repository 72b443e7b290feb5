"""Property-based tests of every file the public API and CLI read: checkpoints (ours and the
authors' layout), training configs, training logs and NIfTI scans for ``data import``.

Damaged, truncated or absurd files give a ValueError / FileNotFoundError (CLI: exit status 2 and
one line on stderr) and write no output; files that load give a usable result.
"""

import gzip
import io
import json
import math
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_bytes

import neuralizer
from neuralizer.cli import main
from neuralizer.data.importer import ScanFiles, check_scan
from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint
from neuralizer.model.metadata import FORMAT
from neuralizer.model.released import model_from_released
from neuralizer.train import TrainConfig

FEW = settings(max_examples=max(10, settings.default.max_examples // 4))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _cli_fails_cleanly(argv: list[str], capsys, *outputs: Path) -> str:
    """Run the CLI; assert exit status 2, one line on stderr, and none of ``outputs`` exists."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("neuralizer ") and "Traceback" not in err
    for output in outputs:
        assert not output.exists() or (output.is_dir() and not any(output.iterdir()))
    return err


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_checkpoint(path, Neuralizer(ModelConfig(channels=4, stages=2)))
    return path.read_bytes()


def _loads_or_value_error(path: Path) -> Neuralizer | None:
    try:
        model = neuralizer.load(path)
    except ValueError:
        return None
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    return model


@given(data=st.data())
def test_damaged_checkpoints_are_refused_or_load_whole(checkpoint_bytes, data):
    damage = data.draw(st.sampled_from(["truncate", "flip", "random", "append"]))
    raw = bytearray(checkpoint_bytes)
    if damage == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif damage == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    elif damage == "random":
        raw = bytearray(data.draw(st.binary(max_size=512)))
    else:
        raw += data.draw(st.binary(min_size=1, max_size=64))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        path.write_bytes(bytes(raw))
        model = _loads_or_value_error(path)
    if damage in ("truncate", "random"):
        assert model is None


def _checkpoint(tensors: dict, model_config, fmt: str = FORMAT) -> bytes:
    metadata = {"format": fmt, "train_config": "null", "provenance": "{}"}
    metadata["model_config"] = (
        model_config if isinstance(model_config, str) else json.dumps(model_config)
    )
    return safetensors_bytes(tensors, metadata=metadata)


@given(
    model_config=JSON
    | st.fixed_dictionaries(
        {},
        optional={
            k: JSON | st.integers(-(2**70), 2**70)
            for k in ("channels", "stages", "in_channels", "out_channels", "depth")
        },
    )
    | st.text(max_size=20)
)
def test_checkpoint_configs_with_any_json_are_refused_or_match(model_config):
    tensors = Neuralizer(ModelConfig(channels=4, stages=2)).state_dict()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        path.write_bytes(_checkpoint(tensors, model_config))
        model = _loads_or_value_error(path)
    if model is not None:
        assert model.config == ModelConfig(channels=4, stages=2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"channels": 10**9}, "beyond any sensible network"),
        ({"stages": 10**6}, "beyond any sensible network"),
        ({"channels": 4.0}, "positive integer"),
        ({"channels": True}, "positive integer"),
    ],
)
def test_absurd_configs_are_refused_before_allocating(tmp_path, change, message):
    tensors = Neuralizer(ModelConfig(channels=4, stages=2)).state_dict()
    path = tmp_path / "model.safetensors"
    path.write_bytes(_checkpoint(tensors, {"channels": 4, "stages": 2, **change}))
    with pytest.raises(ValueError, match=message):
        neuralizer.load(path)


@pytest.mark.parametrize("damage", ["nan", "int", "extra"])
def test_unusable_weights_are_refused(tmp_path, damage):
    tensors = Neuralizer(ModelConfig(channels=4, stages=2)).state_dict()
    if damage == "nan":
        tensors["out_conv.bias"] = torch.tensor([math.nan])
    elif damage == "int":
        tensors["out_conv.bias"] = torch.tensor([1])
    else:
        tensors["extra.weight"] = torch.zeros(1)
    path = tmp_path / "model.safetensors"
    path.write_bytes(_checkpoint(tensors, {"channels": 4, "stages": 2}))
    with pytest.raises(ValueError, match="NaN|dtype|unexpected extra.weight"):
        neuralizer.load(path)


class _Quiet(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing case
        return f"<state dict of {len(self)} tensors>"


@pytest.fixture(scope="module")
def released(golden):
    return _Quiet(golden[0])


@given(data=st.data())
def test_released_state_dicts_with_wrong_keys_or_shapes_are_refused(released, data):
    state_dict = dict(released)
    keys = sorted(state_dict)
    key = data.draw(st.sampled_from(keys))
    damage = data.draw(st.sampled_from(["drop", "rename", "reshape", "add", "rank"]))
    if damage == "drop":
        del state_dict[key]
    elif damage == "rename":
        state_dict[key + data.draw(st.sampled_from([".x", "_", "0"]))] = state_dict.pop(key)
    elif damage == "reshape":
        shape = list(state_dict[key].shape)
        dim = data.draw(st.integers(0, len(shape) - 1))
        shape[dim] += data.draw(st.integers(1, 3))
        state_dict[key] = torch.zeros(shape)
    elif damage == "add":
        state_dict["net." + data.draw(st.text(min_size=1, max_size=12))] = torch.zeros(2)
    else:
        state_dict[key] = state_dict[key][None]
    with pytest.raises(ValueError):
        model_from_released(state_dict)


@FEW
@given(data=st.data())
def test_convert_released_refuses_damaged_files_without_output(capsys, data):
    buffer = io.BytesIO()
    torch.save({"state_dict": {"net.target_embedding.weight": torch.zeros(4, 3, 1, 1)}}, buffer)
    raw = buffer.getvalue()
    damage = data.draw(st.sampled_from(["truncate", "random", "empty", "not-ours"]))
    raw = {
        "truncate": raw[: data.draw(st.integers(0, len(raw) - 1))],
        "random": data.draw(st.binary(max_size=256)),
        "empty": b"",
        "not-ours": raw,  # a readable file, but not the authors' layout
    }[damage]
    trust = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as folder:
        ckpt, out = Path(folder) / "in.ckpt", Path(folder) / "out.safetensors"
        ckpt.write_bytes(raw)
        argv = ["convert-released", str(ckpt), "-o", str(out)] + ["--trust-pickle"] * trust
        _cli_fails_cleanly(argv, capsys, out)


TINY_TRAIN = {"data": "phantom", "channels": 4, "stages": 2, "phantom_size": 16, "max_steps": 1}


@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(TrainConfig.__dataclass_fields__) + ["bogus"]),
        JSON | st.integers(-(10**12), 10**12),
        min_size=1,
        max_size=3,
    )
)
def test_train_configs_are_checked_before_training(capsys, monkeypatch, changes):
    """Any JSON values for the fields: exit 2 with one line, or a valid config reaches train()."""
    import neuralizer.train as train_package

    started = []
    monkeypatch.setattr(train_package, "train", lambda cfg, **kw: started.append(cfg) or _Done())
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.json"
        values = {**TINY_TRAIN, "run_dir": str(Path(folder) / "run"), **changes}
        config.write_text(json.dumps(values))
        code = main(["train", str(config)])
        err = capsys.readouterr().err
        assert code in (0, 2)
        if code == 2:
            assert err.count("\n") == 1 and not started and not (Path(folder) / "run").exists()
        else:
            assert len(started) == 1


class _Done:
    step, best_val, best_step = 1, 0.0, 1


@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_train_config_files_that_are_not_json_objects(capsys, raw):
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.json"
        config.write_bytes(raw)
        try:
            json.loads(raw)
            is_json = True
        except ValueError:
            is_json = False
        if is_json and isinstance(json.loads(raw), dict):
            return  # covered by the test above
        _cli_fails_cleanly(["train", str(config)], capsys, Path(folder) / "runs")


RECORD = st.fixed_dictionaries(
    {"step": st.integers(0, 10**6)},
    optional={"loss": st.floats(allow_infinity=False), "event": st.just("validation")},
).map(lambda r: {**r, "val_loss": 1.0} if r.get("event") else r)


@FEW
@given(
    lines=st.lists(
        RECORD.map(json.dumps) | JSON.map(json.dumps) | st.text(max_size=20), max_size=12
    ),
    torn=st.booleans(),
)
def test_plot_log_draws_or_refuses_cleanly(capsys, lines, torn):
    with tempfile.TemporaryDirectory() as folder:
        log, png = Path(folder) / "log.jsonl", Path(folder) / "curves.png"
        text = "\n".join(lines) + ("\n" if lines else "")
        log.write_text(text + ('{"step": 9, "lo' if torn else ""))
        code = main(["plot-log", str(log), "-o", str(png)])
        err = capsys.readouterr().err
        if code == 0:
            assert png.read_bytes().startswith(b"\x89PNG")
        else:
            assert code == 2 and err.count("\n") == 1 and not png.exists()


def test_plot_log_skips_only_a_torn_last_line(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo')
    assert main(["plot-log", str(log), "-o", str(tmp_path / "a.png")]) == 0
    log.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo\n{"step": 3, "loss": 0.4}\n')
    _cli_fails_cleanly(["plot-log", str(log), "-o", str(tmp_path / "b.png")], capsys)
    assert not (tmp_path / "b.png").exists()


def _head(size: int = 12) -> np.ndarray:
    grid = np.mgrid[:size, :size, :size] - (size - 1) / 2
    return (np.sqrt((grid**2).sum(0)) < size / 3).astype(np.float32) * 100


NIFTI_FAULTS = (
    "random", "truncate", "4d", "flat", "singular", "nan-affine", "nan-data", "empty",
    "complex", "labels-grid",
)  # fmt: skip


def _bad_nifti(fault: str, folder: Path, data) -> None:
    image, affine = _head(), np.diag([2.0, 2.0, 2.0, 1.0])
    suffix = data.draw(st.sampled_from([".nii", ".nii.gz"]))
    path = folder / f"scan{suffix}"
    if fault == "random":
        path.write_bytes(data.draw(st.binary(max_size=600)))
        return
    if fault == "4d":
        image = np.stack([image] * data.draw(st.integers(2, 4)), axis=-1)
    elif fault == "flat":
        image = image[:, :, : data.draw(st.integers(1, 7))]
    elif fault in ("singular", "nan-affine"):  # nibabel refuses to write these: patch the bytes
        bad = affine.copy()
        if fault == "singular":
            bad[:, data.draw(st.integers(0, 2))] = 0
        else:
            bad[data.draw(st.integers(0, 2)), 3] = data.draw(st.sampled_from([np.nan, np.inf]))
        raw = bytearray(nib.Nifti1Image(image, affine).to_bytes())
        raw[252:256] = np.array([0, 1], "<i2").tobytes()  # qform_code 0, sform_code 1
        raw[280:328] = bad[:3].astype("<f4").tobytes()  # srow_x, srow_y, srow_z
        path.write_bytes(gzip.compress(bytes(raw)) if suffix == ".nii.gz" else bytes(raw))
        return
    elif fault == "nan-data":
        image.flat[data.draw(st.integers(0, image.size - 1))] = np.nan
    elif fault == "empty":
        image[:] = 0
    elif fault == "complex":
        image = image.astype(np.complex64)
    elif fault == "labels-grid":
        nib.save(nib.Nifti1Image(image[:-1].astype(np.int16), affine), folder / "scan_labels.nii")
    nib.save(nib.Nifti1Image(image, affine), str(path))
    if fault == "truncate":  # of a .gz, only its first half: the rest may hold no voxels
        raw = path.read_bytes()
        end = len(raw) // 2 if suffix == ".nii.gz" else len(raw) - 1
        path.write_bytes(raw[: data.draw(st.integers(0, end))])


@given(fault=st.sampled_from(NIFTI_FAULTS), data=st.data())
def test_data_import_refuses_bad_scans_before_writing(capsys, fault, data):
    with tempfile.TemporaryDirectory() as folder:
        src, out = Path(folder) / "src", Path(folder) / "out"
        src.mkdir()
        _bad_nifti(fault, src, data)
        _cli_fails_cleanly(["data", "import", str(src), "-o", str(out)], capsys, out)


def test_valid_scan_passes_the_checks(tmp_path):
    image = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(_head(), np.diag([2.0, 2.0, 2.0, 1.0])), str(image))
    labels = tmp_path / "scan_labels.nii.gz"
    nib.save(nib.Nifti1Image((_head() > 0).astype(np.int16), np.diag([2.0, 2.0, 2.0, 1.0])), labels)
    check_scan(ScanFiles("scan", image, labels=labels))


@pytest.mark.parametrize("voxel", ["0", "-1", "nan", "inf", "0.001", "7"])
def test_data_import_refuses_absurd_voxel_sizes(tmp_path, capsys, voxel):
    src = tmp_path / "src"
    src.mkdir()
    nib.save(nib.Nifti1Image(_head(), np.eye(4)), str(src / "scan.nii"))
    argv = ["data", "import", str(src), "-o", str(tmp_path / "out"), "--voxel-size-mm", voxel]
    _cli_fails_cleanly(argv, capsys, tmp_path / "out")


def test_train_refuses_a_step_beyond_max_memory_before_the_first_step(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_TRAIN, "run_dir": str(tmp_path / "run")}))
    err = _cli_fails_cleanly(["train", str(config), "--max-memory", "1M"], capsys)
    assert "training step" in err and "MiB" in err
    assert not (tmp_path / "run").exists(), "a refused run must leave no run directory"
    _cli_fails_cleanly(["train", str(config), "--max-memory", "lots"], capsys)
