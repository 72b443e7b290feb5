"""Hostile files: pickles crafted to run code are refused by every path that loads a file.

Each exploit, when unpickled, creates a marker file; the tests prove that it was never created.
A positive control shows that the exploit is real: with --trust-pickle (and only then) it runs.
The basic cases of ``neuralizer.load`` and ``convert-released`` are in
tests/model/test_checkpoint.py; here: the other loading paths and other ways to hide the code.
"""

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralizer.cli import main
from neuralizer.data.cache import read_entry
from neuralizer.model import read_checkpoint


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _payloads(marker: Path) -> dict[str, bytes]:
    """Ways to hide the exploit in a file that claims to be a checkpoint."""
    exploit = _Exploit(marker)
    tensors = {"net.target_embedding.weight": torch.zeros(4, 3, 1, 1)}

    def saved(obj, **kwargs) -> bytes:
        buffer = io.BytesIO()
        torch.save(obj, buffer, **kwargs)
        return buffer.getvalue()

    return {
        "zip, top level": saved({"state_dict": tensors, "hyper_parameters": exploit}),
        "zip, inside the state dict": saved({"state_dict": {**tensors, "net.x": exploit}}),
        "legacy torch format": saved(
            {"state_dict": tensors, "x": exploit}, _use_new_zipfile_serialization=False
        ),
        "raw pickle, protocol 0": pickle.dumps(exploit, protocol=0),
        "raw pickle, protocol 5": pickle.dumps({"state_dict": exploit}, protocol=5),
        "zip with a renamed data.pkl": _rezipped(saved({"state_dict": tensors, "x": exploit})),
    }


def _rezipped(raw: bytes) -> bytes:
    """The same archive under another top folder name (torch accepts any)."""
    source = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr("evil/" + item.filename.split("/", 1)[1], source.read(item))
    return out.getvalue()


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "code-ran"
    yield path
    assert not path.exists(), "the hostile file ran code"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_every_loader_refuses_every_hostile_file(tmp_path, marker, capsys):
    import neuralizer

    config = tmp_path / "config.json"
    run = tmp_path / "run"
    tiny = {"data": "phantom", "channels": 4, "stages": 2, "phantom_size": 16, "max_steps": 2}
    config.write_text(json.dumps({**tiny, "run_dir": str(run)}))
    run.mkdir()
    for name, raw in _payloads(marker).items():
        path = tmp_path / "hostile.safetensors"
        path.write_bytes(raw)
        with pytest.raises(ValueError, match="not a safetensors checkpoint"):
            neuralizer.load(path)
        with pytest.raises(ValueError):
            read_checkpoint(path)
        # the training state that --resume reads
        (run / "state.safetensors").write_bytes(raw)
        assert main(["train", str(config), "--resume"]) == 2, name
        assert "training state" in capsys.readouterr().err
        # the converter of the authors' .ckpt, without --trust-pickle
        ckpt, out = tmp_path / "hostile.ckpt", tmp_path / "out.safetensors"
        ckpt.write_bytes(raw)
        assert main(["convert-released", str(ckpt), "-o", str(out)]) == 2, name
        err = capsys.readouterr().err
        assert "--trust-pickle" in err and not out.exists(), (name, err)
        assert not marker.exists(), name


def test_hostile_cache_entry_is_refused(tmp_path, marker):
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "meta.json").write_text("{}")
    np.save(entry / "labels.npy", np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    for mmap in (True, False):
        with pytest.raises(ValueError):
            read_entry(entry, mmap=mmap)


def test_positive_control_the_exploit_runs_only_with_trust_pickle(tmp_path, capsys):
    """Without this, 'the marker was never created' could mean a broken exploit."""
    marker = tmp_path / "code-ran"
    ckpt = tmp_path / "hostile.ckpt"
    ckpt.write_bytes(_payloads(marker)["zip, top level"])
    assert main(["convert-released", str(ckpt), "-o", str(tmp_path / "a.safetensors")]) == 2
    assert not marker.exists()
    main(["convert-released", str(ckpt), "-o", str(tmp_path / "b.safetensors"), "--trust-pickle"])
    assert marker.exists()  # the user vouched for the file: it ran, as documented
