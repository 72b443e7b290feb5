import json
import os
import time

import numpy as np
import pytest

from neuralizer.cli import main
from neuralizer.data.cache import (
    cache_entries,
    config_key,
    prune,
    read_checked,
    read_entry,
    write_entry,
)


def test_entry_roundtrip_without_pickle(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.int16).reshape(3, 4), "b": np.ones(3, bool)}
    write_entry(tmp_path / "e", arrays, {"key": "k1"})
    loaded, meta = read_entry(tmp_path / "e")
    assert meta == {"key": "k1"}
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_stale_key_is_not_trusted_and_is_replaced(tmp_path):
    write_entry(tmp_path / "e", {"a": np.zeros(2)}, {"key": "old"})
    assert read_checked(tmp_path / "e", "new") is None
    write_entry(tmp_path / "e", {"a": np.ones(2)}, {"key": "new"})
    arrays, meta = read_checked(tmp_path / "e", "new")
    np.testing.assert_array_equal(arrays["a"], np.ones(2))
    assert json.loads((tmp_path / "e" / "meta.json").read_text())["key"] == "new"


def test_config_key_is_stable_and_sensitive():
    a = config_key({"voxel_size_mm": 2.0, "protocols": ("x", "y")})
    assert a == config_key({"protocols": ["x", "y"], "voxel_size_mm": 2.0})
    assert a != config_key({"voxel_size_mm": 1.0, "protocols": ("x", "y")})


def _age(path, days):
    """Make every file under ``path`` (and ``path``) look ``days`` old."""
    stamp = time.time() - days * 86400
    for item in [path, *path.rglob("*")]:
        os.utime(item, (stamp, stamp))


def test_prune_removes_only_what_no_run_has_read_lately(tmp_path):
    key = "0123456789abcdef"
    for name in ("subjects", "anatomy", "templates"):
        write_entry(tmp_path / f"{name}-{key}", {"a": np.zeros(1000, np.uint8)}, {"key": name})
    for name in ("subjects", "anatomy", "templates"):
        _age(tmp_path / f"{name}-{key}", 10)
    read_checked(tmp_path / f"anatomy-{key}", "anatomy")  # a read marks it as used
    (tmp_path / "notes").mkdir()  # not the cache's: never listed, never removed
    _age(tmp_path / "notes", 100)
    (tmp_path / f".subjects-{key}.x1y2").mkdir()  # a writer still at work
    (tmp_path / f".trash-anatomy-{key}.z3").mkdir()  # an interrupted removal, long ago
    _age(tmp_path / f".trash-anatomy-{key}.z3", 10)

    entries = {e.path.name: e for e in cache_entries(tmp_path)}
    assert set(entries) == {f"{n}-{key}" for n in ("subjects", "anatomy", "templates")} | {
        f".subjects-{key}.x1y2", f".trash-anatomy-{key}.z3"}  # fmt: skip
    assert entries[f"subjects-{key}"].size > 1000 and entries[f"subjects-{key}"].kind == "subjects"
    assert entries[f".trash-anatomy-{key}.z3"].leftover

    planned = prune(tmp_path, unused_days=5, dry_run=True)
    assert {e.path.name for e in planned} == {
        f"subjects-{key}", f"templates-{key}", f".trash-anatomy-{key}.z3"}  # fmt: skip
    assert len(cache_entries(tmp_path)) == 5  # a dry run removes nothing
    prune(tmp_path, unused_days=5)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([f".subjects-{key}.x1y2", f"anatomy-{key}", "notes"])
    assert read_checked(tmp_path / f"anatomy-{key}", "anatomy") is not None

    prune(tmp_path)  # everything the cache made, except a write that may be in progress
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".subjects-{key}.x1y2", "notes"]
    with pytest.raises(ValueError, match="days"):
        prune(tmp_path, unused_days=-1)


def test_cache_command_lists_and_prunes(tmp_path, capsys):
    entry = tmp_path / "subjects-00000000000000ff"
    write_entry(entry, {"a": np.zeros(2000, np.uint8)}, {"key": "k"})
    _age(entry, 40)
    assert main(["data", "cache", "--cache-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "subjects-00000000000000ff" in listing and "40.0 days ago" in listing
    assert "1 entry, 2.1 KB" in listing
    assert main(["data", "cache", "--cache-dir", str(tmp_path), "--prune-unused", "30"]) == 0
    assert "removed 1 entry, 2.1 KB" in capsys.readouterr().out
    assert not entry.exists()
    with pytest.raises(SystemExit) as stop:
        main(["data", "cache", "--cache-dir", str(tmp_path), "--prune-unused", "soon"])
    assert stop.value.code == 2
