import json

import numpy as np

from neuralizer.data.cache import config_key, read_checked, read_entry, write_entry


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
