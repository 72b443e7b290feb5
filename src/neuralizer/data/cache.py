"""Disk cache for expensive 3D work, keyed by a hash of its configuration.

A cache entry is a directory of ``.npy`` files (memory-mappable, read with
``allow_pickle=False``) plus ``meta.json``; it is written to a temporary directory and renamed into
place, so a reader never sees half an entry. Nothing is ever pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    """``$NEURALIZER_CACHE`` or ``~/.cache/neuralizer``."""
    return Path(os.environ.get("NEURALIZER_CACHE", Path.home() / ".cache" / "neuralizer"))


def config_key(config: Mapping) -> str:
    """Stable short hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON-serialisable in a cache key: {value!r}")


def write_entry(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping) -> None:
    """Atomically write ``arrays`` (name -> array) and ``meta`` as the cache entry ``path``.

    Safe with concurrent writers (e.g. DataLoader workers): an entry is built in a temporary
    folder and renamed into place; a stale entry (other key) is first renamed away, then deleted;
    if another process has just put an entry in place, ours is dropped (same key, same content).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True, default=_jsonable))
        if path.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".trash-{path.name}.", dir=path.parent))
            try:
                os.replace(path, trash / "old")
            except FileNotFoundError:
                pass
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, path)
        except OSError:  # another writer won the race
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_entry(path: Path, *, mmap: bool = True) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, meta) of a complete entry, or None if absent. Arrays are memory-mapped."""
    meta_path = path / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    arrays = {
        f.stem: np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        for f in sorted(path.glob("*.npy"))
    }
    return arrays, meta


def read_checked(path: Path, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """Like :func:`read_entry`, but None (rebuild) unless the entry's recorded key is ``key``."""
    entry = read_entry(path)
    if entry is None or entry[1].get("key") != key:
        return None
    return entry
