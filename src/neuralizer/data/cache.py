"""Disk cache for expensive 3D work, keyed by a hash of its configuration.

A cache entry is a directory of ``.npy`` files (memory-mappable, read with
``allow_pickle=False``) plus ``meta.json``; it is written to a temporary directory and renamed into
place, so a reader never sees half an entry. Nothing is ever pickled.

Every read refreshes the time stamp of the entry's ``meta.json``, so that ``neuralizer data
cache --prune-unused DAYS`` can delete what no configuration has used for a while (a new data
engine version, or another voxel size, makes new keys and leaves the old entries behind).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
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
            _discard(path, path.name)
        try:
            os.replace(tmp, path)
        except OSError:  # another writer won the race
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _discard(path: Path, name: str) -> None:
    """Rename ``path`` to ``.trash-<name>.<random>/old`` beside it (readers see it gone at
    once), then delete that; a path another process has just removed is fine."""
    trash = Path(tempfile.mkdtemp(prefix=f".trash-{name}.", dir=path.parent))
    try:
        os.replace(path, trash / "old")
    except FileNotFoundError:
        pass
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def read_entry(path: Path, *, mmap: bool = True) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, meta) of a complete entry, or None if absent. Arrays are memory-mapped."""
    meta_path = path / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    try:
        os.utime(meta_path)  # "last used", for pruning; a read-only cache is fine
    except OSError:
        pass
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


# Top-level entries are "<kind>-<16 hex digits>" (anatomy, subjects, templates, ...); what an
# interrupted writer or remover leaves starts with a dot: ".<name>.<random>" or
# ".trash-<name>.<random>".
_NAME = re.compile(r"^(\.(?:trash-)?)?([a-z][a-z0-9_]*)-[0-9a-f]{16}(\..+)?$")
_DAY = 86400.0


@dataclass(frozen=True)
class CacheEntry:
    """One top-level cache folder: its kind, size in bytes and last use (POSIX time)."""

    path: Path
    kind: str
    size: int
    last_used: float
    leftover: bool = False  # half-written or half-deleted by an interrupted process


def cache_entries(cache_dir: Path | None = None) -> list[CacheEntry]:
    """The entries in ``cache_dir`` (default: :func:`default_cache_dir`), least recently used
    first. Only folders named like the cache's own are listed; nothing else is ever touched."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not root.is_dir():
        return []
    entries = []
    for path in root.iterdir():
        match = _NAME.match(path.name)
        if match is None or path.is_symlink() or not path.is_dir():
            continue
        leftover = match.group(1) is not None
        if leftover != (match.group(3) is not None):
            continue  # not a name this module makes
        size, last_used = 0, 0.0
        for folder, _, files in os.walk(path):
            for name in files:
                stat = os.lstat(os.path.join(folder, name))
                size += stat.st_size
                if name == "meta.json" or leftover:
                    last_used = max(last_used, stat.st_mtime)
        if leftover or not last_used:  # a leftover, or no complete entry inside: the folder too
            last_used = max(last_used, path.lstat().st_mtime)
        entries.append(CacheEntry(path, match.group(2), size, last_used, leftover))
    return sorted(entries, key=lambda entry: (entry.last_used, entry.path.name))


def remove_entry(entry: CacheEntry) -> None:
    """Delete a cache folder: renamed away first (readers see it gone at once), then removed;
    if interrupted, what is left is itself a leftover that :func:`prune` removes later."""
    _discard(entry.path, re.sub(r"^\.(trash-)?|\..*$", "", entry.path.name))  # "<kind>-<key>"


def prune(
    cache_dir: Path | None = None, *, unused_days: float | None = None, dry_run: bool = False
) -> list[CacheEntry]:
    """Remove the entries not used for ``unused_days`` days (``None``: every entry); leftovers
    of interrupted writers go once they are a day old (a writer may still be at work). Returns
    what was removed (with ``dry_run``: what would be)."""
    if unused_days is not None and not (0 <= unused_days < float("inf")):
        raise ValueError(f"days must be a number >= 0, not {unused_days}")
    now = time.time()
    removed = []
    for entry in cache_entries(cache_dir):
        idle_days = (now - entry.last_used) / _DAY
        limit = 0.0 if unused_days is None else unused_days
        if entry.leftover:
            limit = max(limit, 1.0)
        if idle_days >= limit:
            if not dry_run:
                remove_entry(entry)
            removed.append(entry)
    return removed
