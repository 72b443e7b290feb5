"""A folder written by ``neuralizer data import`` as a :class:`SliceSource` (users' own scans).

Each subject's ``image`` becomes ``images["image"]``; its label map (if any) the protocol
``"labels"``; its mask (if any) the brain mask — otherwise, for skull-stripped brains, the image's
non-zero voxels (heads without a mask get an empty brain mask: give ``NAME_mask`` for skull
stripping). The tissue map for rendering comes from the label map when it holds FreeSurfer aseg
labels, else it is the brain mask as one class (white matter), so synthetic contrasts of imported
scans are only meaningful with aseg-style labels.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from neuralizer.data.sources import tissue_from_aseg
from neuralizer.data.subject import SliceSubject
from neuralizer.data.subjects import AXES, slice_volume

_FREESURFER_MARKERS = (2, 41, 4, 43, 17, 53)  # cerebral WM, lateral ventricles, hippocampi


class DatasetSliceSource:
    """Slices of an imported dataset folder (see the module doc); volumes are read lazily.

    ``n_subjects``: only the first that many subjects of the manifest (default: all).
    """

    def __init__(
        self, folder: Path | str, *, axis: str = "coronal", n_subjects: int | None = None
    ) -> None:
        self.folder = Path(folder)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(
                f"{manifest_path} not found: make it with neuralizer data import"
            )
        manifest = json.loads(manifest_path.read_text())
        self.subjects: list[dict] = manifest["subjects"][:n_subjects]
        self.voxel_size_mm = float(manifest["voxel_size_mm"])
        if axis not in AXES:
            raise ValueError(f"unknown axis {axis!r}; choose one of {tuple(AXES)}")
        self.axis = AXES[axis]
        self._volumes = lru_cache(maxsize=8)(self._load)

    def __len__(self) -> int:
        return len(self.subjects)

    def _read(self, key: str, entry: dict) -> np.ndarray | None:
        if key not in entry:
            return None
        import nibabel as nib  # here: the other sources run without nibabel

        return np.asanyarray(nib.load(str(self.folder / entry[key])).dataobj)

    def _load(self, index: int) -> dict:
        entry = self.subjects[index]
        image = self._read("image", entry).astype(np.float32)
        labels = self._read("labels", entry)
        mask = self._read("mask", entry)
        if mask is not None:
            brain = mask > 0
        elif entry.get("kind") == "brain":
            brain = image > 0
        else:
            brain = np.zeros(image.shape, bool)
        if labels is not None and np.isin(_FREESURFER_MARKERS, labels).all():
            tissue = tissue_from_aseg(labels.astype(np.int32), brain | (labels > 0))
        else:
            tissue = (brain * 3).astype(np.int16)
        present = np.flatnonzero((brain if brain.any() else image > 0).any(
            axis=tuple(a for a in range(3) if a != self.axis)
        ))  # fmt: skip
        names = {int(x): str(x) for x in np.unique(labels)} if labels is not None else {}
        return {
            "image": image, "labels": labels, "names": names, "brain": brain, "tissue": tissue,
            "extent": (int(present[0]), int(present[-1])), "id": entry["id"],
        }  # fmt: skip

    def excluded(self, task: str) -> frozenset[int]:
        """Subjects never drawn for ``task``: segmentation needs a label map, skull stripping a
        brain mask (given, or a skull-stripped brain's own); a folder may mix both kinds."""
        if task == "segmentation":
            lacking = [i for i, e in enumerate(self.subjects) if "labels" not in e]
        elif task == "skull_stripping":
            lacking = [
                i for i, e in enumerate(self.subjects) if "mask" not in e and e["kind"] != "brain"
            ]
        else:
            lacking = []
        return frozenset(lacking)

    def get(self, index: int, position: float) -> SliceSubject:
        """Subject ``index`` at relative position ``position`` in [0, 1] along the slice axis."""
        if not 0.0 <= position <= 1.0:
            raise ValueError(f"position must lie in [0, 1], got {position}")
        v = self._volumes(index)
        lo, hi = v["extent"]
        k = int(round(lo + position * (hi - lo)))
        labels = {}
        names = {}
        if v["labels"] is not None:
            labels["labels"] = slice_volume(v["labels"], self.axis, k).astype(np.int32)
            names["labels"] = v["names"]
        return SliceSubject(
            subject_id=f"dataset/{v['id']}",
            tissue=slice_volume(v["tissue"], self.axis, k),
            brain_mask=slice_volume(v["brain"], self.axis, k),
            labels=labels,
            label_names=names,
            images={"image": slice_volume(v["image"], self.axis, k)},
            position=float(position),
            voxel_size_mm=self.voxel_size_mm,
        )
