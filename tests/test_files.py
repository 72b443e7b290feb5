"""The ground floor's atomic writer and its clean-up of a killed write's leftovers."""

from __future__ import annotations

import os

import pytest

from neuralizer.files import remove_stale_temporaries, write_atomically


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "out.bin", b"data")
    finally:
        os.umask(umask)
    assert (tmp_path / "out.bin").read_bytes() == b"data"
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [path]


def test_stale_temporaries_of_the_named_files_only_are_removed(tmp_path):
    names = ["scan[1].nii.gz", "state.safetensors"]  # glob characters in a name are literal
    stale = [tmp_path / ".scan[1].nii.gz.abc123.tmp", tmp_path / ".state.safetensors.x.tmp"]
    kept = [tmp_path / ".scan1.nii.gz.abc.tmp", tmp_path / ".other.tmp", tmp_path / "state.tmp"]
    for path in stale + kept:
        path.write_bytes(b"half a file")
    remove_stale_temporaries(tmp_path, names)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
