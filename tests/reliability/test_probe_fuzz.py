"""Property-based tests of the classes behind the second probe (issue 28): outputs that are
inputs, absurd voxel sizes and shapes, compressed bombs, checkpoint metadata of any type and
depth, file names of any length and characters. Each property runs on the checks themselves
(no model, no prediction), so the default profile stays within seconds.
"""

import json
import math
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from neuralizer.files import NAME_MAX, temporary_prefix, write_atomically
from neuralizer.infer.paths import check_name, check_outputs
from neuralizer.infer.plan import PredictOptions
from neuralizer.infer.resources import (
    MAX_FIELD_OF_VIEW_MM,
    ModelSize,
    check_field_of_view,
    input_size,
    prediction_memory,
)
from neuralizer.model.config import ModelConfig
from neuralizer.model.limits import MemoryLimitError
from neuralizer.model.metadata import FORMAT, CheckpointMetadata, Geometry

FEW = settings(max_examples=max(10, settings.default.max_examples // 4))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)

# ---- same-path outputs -----------------------------------------------------------------------

OUTPUTS = ("the output", "--uncertainty", "--probabilities", "--qc")
ALIASES = ("same", "relative", "dotdot", "symlink", "hardlink")


@given(
    output=st.sampled_from(OUTPUTS),
    source=st.integers(0, 2),
    alias=st.sampled_from(ALIASES),
    other=st.sampled_from(OUTPUTS),
)
def test_no_output_can_name_an_input_or_another_output(output, source, alias, other):
    """However an output names an input file (the same path, relative, through ``..``, a
    symlink or a hard link), or another output, check_outputs refuses it."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        inputs = [root / f"in{i}.nii.gz" for i in range(3)]
        for i, path in enumerate(inputs):
            path.write_bytes(bytes([i]) * 10)
        chosen = inputs[source]
        alias_path = {
            "same": chosen,
            "relative": Path(os.path.relpath(chosen)),
            "dotdot": root / "sub" / ".." / chosen.name,
            "symlink": root / "link.nii.gz",
            "hardlink": root / "hard.nii.gz",
        }[alias]
        (root / "sub").mkdir()
        if alias == "symlink":
            alias_path.symlink_to(chosen)
        elif alias == "hardlink":
            os.link(chosen, alias_path)
        outputs = dict.fromkeys(OUTPUTS)
        outputs[output] = alias_path
        with pytest.raises(ValueError, match="would destroy the input"):
            check_outputs(outputs, inputs)
        if other != output:
            fresh = {output: root / "a.nii.gz", other: root / "sub" / ".." / "a.nii.gz"}
            with pytest.raises(ValueError, match="are the same file"):
                check_outputs(fresh, inputs)
        assert [p.read_bytes() for p in inputs] == [bytes([i]) * 10 for i in range(3)]


# ---- absurd spacings and sizes -------------------------------------------------------------

SPACING = st.floats(1e-3, 1e7, allow_nan=False)


@given(
    spacing=st.tuples(SPACING, SPACING, SPACING),
    shape=st.tuples(st.integers(1, 4096), st.integers(1, 4096), st.integers(1, 4096)),
    shear=st.floats(-1e3, 1e3, allow_nan=False),
    ensemble=st.integers(1, 4),
    axis=st.sampled_from(["coronal", "axial", "sagittal", "all"]),
)
def test_any_spacing_and_shape_is_refused_or_planned_within_bounds(spacing, shape, shear,
                                                                   ensemble, axis):  # fmt: skip
    """From a header alone: a field of view beyond 2 m is refused; anything else has a finite
    plan whose working grid stays within 2 m / voxel size (+5) slices per view."""
    from neuralizer.infer.resources import InputSize, working_slices

    affine = np.diag([*spacing, 1.0])
    affine[0, 1] = shear
    voxels = math.prod(shape)
    target = InputSize("t.nii.gz", shape, 1, affine, voxels * 4, voxels * 5)
    geometry = Geometry(image_size=(96, 96), voxel_size_mm=2.0)
    model = ModelSize(ModelConfig(channels=32), geometry, 10**6)
    options = PredictOptions(ensemble=ensemble, axis=axis)
    try:
        check_field_of_view(target)
    except ValueError as error:
        assert "more than any scan" in str(error)
        with pytest.raises(ValueError):
            prediction_memory(target, [(target, target)], model, options)
        return
    for axis_index in range(3):
        assert working_slices(target, 2.0, axis_index) <= MAX_FIELD_OF_VIEW_MM / 2.0 + 6
    plan = prediction_memory(target, [(target, target)], model, options)
    assert 0 < plan.total < 2**62 and plan.parts["inputs"] >= 3 * voxels * 4
    try:
        plan.check(2**30)
    except MemoryLimitError as error:
        assert "needs an estimated" in str(error) and "\n" not in str(error)


# ---- compressed bombs ----------------------------------------------------------------------


def _header_only(path: Path, shape, dtype) -> None:
    """A .nii.gz whose header promises ``shape`` values of ``dtype`` followed by a few bytes."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    import gzip

    path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 64))


@FEW
@given(
    shape=st.lists(st.integers(1, 32767), min_size=3, max_size=4),
    dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.float64]),
)
def test_a_header_is_judged_without_decoding(shape, dtype, monkeypatch):
    """Any promised size: the app's bound and the resource plan decide from the header alone
    (the data, a few bytes here, are never decompressed)."""
    import neuralizer.infer.io as io
    from neuralizer.app.core import MAX_UPLOAD_VALUES, check_upload_size

    monkeypatch.setattr(io, "_read_nifti", lambda *a: pytest.fail("decoded"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bomb.nii.gz"
        _header_only(path, tuple(shape), dtype)
        size = input_size(str(path))
        assert size.held == 4 * math.prod(shape)
        if math.prod(shape) > MAX_UPLOAD_VALUES:
            with pytest.raises(ValueError, match="the app takes at most"):
                check_upload_size(str(path))
        else:
            check_upload_size(str(path))


# ---- checkpoint metadata: any type, any depth ----------------------------------------------

FIELDS = ("model_config", "geometry", "train_config", "provenance")


@given(
    values=st.dictionaries(st.sampled_from(FIELDS), JSON | st.integers(1, 40), min_size=1),
    nested=st.sampled_from(["", "[", '{"a":']),
)
def test_metadata_of_any_type_and_depth_is_checked_naming_file_and_field(values, nested):
    """Any JSON (or nesting up to 40 levels) in any field: a checked record, or one ValueError
    line naming the file; never another exception."""
    raw = CheckpointMetadata(ModelConfig(channels=4, stages=2), Geometry()).to_strings()
    for key, value in values.items():
        if nested and isinstance(value, int) and not isinstance(value, bool):
            closing = "]" if nested == "[" else "}"
            raw[key] = nested * value + "1" + closing * value
        else:
            raw[key] = json.dumps(value)
    assert raw["format"] == FORMAT
    try:
        metadata = CheckpointMetadata.from_strings(raw, "/models/m.safetensors")
    except ValueError as error:
        message = str(error)
        assert message.startswith("/models/m.safetensors") and "\n" not in message
        return
    assert isinstance(metadata.geometry, Geometry)
    assert 0.25 <= metadata.geometry.voxel_size_mm <= 32


# ---- names: any length, any character ------------------------------------------------------

NAME = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1,
    max_size=300,
).filter(lambda n: n not in (".", ".."))  # fmt: skip


@given(stem=NAME)
def test_any_name_is_written_or_refused_in_one_line(stem):
    """A name within 255 bytes is written (its temporary file's name fits too) and read back
    literally, ``+``, ``[``, ``*`` and all; a longer one is a ValueError before any work."""
    name = stem + ".npy"
    assert len(os.fsencode(temporary_prefix(name))) + 8 + 4 <= NAME_MAX
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        if len(os.fsencode(name)) > NAME_MAX:
            with pytest.raises(ValueError, match="longer than the 255"):
                check_name(path)
            with pytest.raises(ValueError, match="longer than the 255"):
                check_outputs({"the output": path}, [])
            return
        check_outputs({"the output": path}, [])
        assume(not name.startswith("-"))
        from neuralizer.infer.io import encode, read_input

        write_atomically(path, encode(path, np.arange(12, dtype=np.float32).reshape(3, 4)))
        assert sorted(p.name for p in Path(folder).iterdir()) == [name]
        assert read_input(str(path)).data.shape == (1, 3, 4)
