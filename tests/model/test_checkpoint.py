import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import neuralizer
from neuralizer.cli import main
from neuralizer.model import ModelConfig, Neuralizer, read_checkpoint, save_checkpoint
from neuralizer.model.metadata import FORMAT


class _Exploit:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_round_trip_is_bit_exact(tmp_path, make_inputs):
    torch.manual_seed(3)
    model = Neuralizer(ModelConfig(channels=8, stages=3, out_channels=2))
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, train_config={"lr": 1e-4}, provenance={"data": ["mni152"]})
    loaded = neuralizer.load(path)
    assert not loaded.training and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.train_config == {"lr": 1e-4}
    assert loaded.provenance["data"] == ["mni152"] and "code_version" in loaded.provenance
    inputs = make_inputs(1, 2, 16, model.config)
    with torch.no_grad():
        assert torch.equal(model.eval()(*inputs), loaded(*inputs))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left


def test_pickle_bearing_file_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "code-ran"
    for name, payload in [
        ("torch-save.safetensors", None),
        ("raw.pt", pickle.dumps({"weights": _Exploit(marker)})),
    ]:
        path = tmp_path / name
        if payload is None:
            torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Exploit(marker)}, path)
        else:
            path.write_bytes(payload)
        with pytest.raises(ValueError, match="not a safetensors checkpoint"):
            neuralizer.load(path)
    assert not marker.exists()


def test_converter_refuses_pickled_code_without_the_flag(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    ckpt = tmp_path / "hostile.ckpt"
    torch.save(
        {"state_dict": {"net.x": torch.zeros(1)}, "hyper_parameters": _Exploit(marker)}, ckpt
    )
    assert main(["convert-released", str(ckpt), "-o", str(tmp_path / "out.safetensors")]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_converter_turns_released_ckpt_into_our_format(tmp_path, golden):
    from fractions import Fraction

    state_dict, t = golden
    ckpt = tmp_path / "released.ckpt"
    # A Lightning-like file: the state dict plus a non-tensor object that weights_only refuses.
    released = {"net." + k.removeprefix("net."): v for k, v in state_dict.items()}
    torch.save({"state_dict": released, "hyper_parameters": {"ratio": Fraction(1, 3)}}, ckpt)
    out = tmp_path / "converted.safetensors"
    assert main(["convert-released", str(ckpt), "-o", str(out)]) == 2
    assert main(["convert-released", str(ckpt), "-o", str(out), "--trust-pickle"]) == 0
    model = neuralizer.load(out)
    with torch.no_grad():
        result = model(t["target_in"], t["context_in"], t["context_out"])
    assert (result - t["expected_output"]).abs().max() <= 1e-5
    # A plain tensors-only file needs no flag.
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": released}, plain)
    assert main(["convert-released", str(plain), "-o", str(tmp_path / "plain.safetensors")]) == 0


def _write(path, tensors, config):
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(config),
        "train_config": "null",
        "provenance": "{}",
    }
    save_file(tensors, path, metadata=metadata)


def test_mismatched_shapes_and_unknown_fields_are_rejected(tmp_path):
    model = Neuralizer(ModelConfig(channels=8, stages=2))
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    _write(tmp_path / "bad-config.safetensors", tensors, {"channels": 8, "stages": 2, "depth": 9})
    with pytest.raises(ValueError, match="unknown ModelConfig field"):
        neuralizer.load(tmp_path / "bad-config.safetensors")
    tensors["out_conv.weight"] = torch.zeros(2, 8, 1, 1)
    _write(tmp_path / "bad-shape.safetensors", tensors, {"channels": 8, "stages": 2})
    with pytest.raises(ValueError, match=r"out_conv.weight: shape \(2, 8, 1, 1\)"):
        neuralizer.load(tmp_path / "bad-shape.safetensors")
    save_file(tensors, tmp_path / "foreign.safetensors")
    with pytest.raises(ValueError, match="not a neuralizer-checkpoint"):
        read_checkpoint(tmp_path / "foreign.safetensors")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        neuralizer.load(tmp_path / "absent.safetensors")


def test_untrained_network_depends_on_its_seed_alone_and_leaves_the_global_generator():
    from neuralizer.model.checkpoint import UNTRAINED_CHANNELS, untrained

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = untrained(seed=5)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is untouched
    b, other = untrained(seed=5), untrained(seed=6)
    assert a.config.channels == UNTRAINED_CHANNELS and not a.training
    weights = list(a.state_dict())
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in weights)
    assert not all(torch.equal(a.state_dict()[k], other.state_dict()[k]) for k in weights)
