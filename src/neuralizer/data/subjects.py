"""Virtual subjects, splits and the :class:`SynthSliceSource` the tasks draw slices from.

A virtual subject is (anatomy, seed). An *anatomy* is the MNI152 anatomy warped by a large random
deformation drawn from an anatomy seed; a *subject* adds a random affine + small elastic deformation
and random extra-cerebral layers drawn from its own seed. Splits are disjoint in subject seeds, and
the test split also draws its anatomies from a pool never used by train/validation.

Every subject volume is built once and cached on disk (see :mod:`neuralizer.data.cache`) under a
hash of the configuration, the source package versions and :data:`CACHE_VERSION`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuralizer.data.bundle import write_bundle
from neuralizer.data.cache import config_key, default_cache_dir, read_checked, write_entry
from neuralizer.data.sources import (
    HELDOUT_PROTOCOLS,
    TRAIN_PROTOCOLS,
    Anatomy,
    check_protocols,
    label_names,
    load_anatomy,
    source_versions,
)
from neuralizer.data.space import Grid, common_grid
from neuralizer.data.subject import SliceSubject
from neuralizer.data.synth import (
    DeformationConfig,
    Sampler,
    add_extracerebral_layers,
    sample_deformation,
)

CACHE_VERSION = 5
SPLITS: tuple[str, ...] = ("train", "val", "test")
_SEED_BASE = {"train": 0, "val": 100_000_000, "test": 200_000_000}
_ANATOMY_POOL = {"train": 0, "val": 0, "test": 1}
AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines the cached volumes of a split (part of the cache key)."""

    voxel_size_mm: float = 2.0
    protocols: tuple[str, ...] = TRAIN_PROTOCOLS
    n_anatomies: int = 16  # per pool; anatomy of subject seed s is s % n_anatomies
    with_head: bool = True
    anatomy_deformation: DeformationConfig = field(
        default_factory=lambda: DeformationConfig(
            rotation_deg=0.0, scaling=0.08, shear=0.03, translation_mm=0.0,
            elastic_mm=5.0, elastic_grid=(4, 5, 4),
        )
    )  # fmt: skip
    subject_deformation: DeformationConfig = field(
        default_factory=lambda: DeformationConfig(
            rotation_deg=10.0, scaling=0.05, shear=0.02, translation_mm=6.0,
            elastic_mm=2.0, elastic_grid=(6, 7, 6),
        )
    )  # fmt: skip


def subject_seed(split: str, index: int) -> int:
    """Synthesis seed of subject ``index`` of ``split`` (disjoint ranges per split)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    return _SEED_BASE[split] + int(index)


def anatomy_id(config: SynthConfig, split: str, seed: int) -> tuple[int, int]:
    """(pool, index) of the anatomy deformation of subject ``seed``: pool 0 for train and val,
    pool 1 for test, so test anatomies are never seen in training."""
    return _ANATOMY_POOL[split], seed % config.n_anatomies


def _cache_key(config: SynthConfig, what: str) -> str:
    return config_key(
        {"what": what, "config": dataclasses.asdict(config), "versions": source_versions(),
         "cache_version": CACHE_VERSION}
    )  # fmt: skip


def cached_anatomy(config: SynthConfig, cache_dir: Path, *, evaluation: bool = False) -> Anatomy:
    """The MNI152 anatomy on the config's grid, loaded from the packages once and then cached."""
    grid = common_grid(config.voxel_size_mm)
    key = _cache_key(config, "anatomy")
    path = cache_dir / f"anatomy-{key}"
    entry = read_checked(path, key)
    if entry is None:
        anatomy = load_anatomy(
            grid, protocols=config.protocols, with_head=config.with_head, evaluation=evaluation
        )
        arrays = _anatomy_arrays(anatomy)
        write_entry(path, arrays, {"key": key, "protocols": list(config.protocols)})
        return anatomy
    arrays, _ = entry
    group = _split_groups(arrays)
    return Anatomy(
        name="mni152",
        grid=grid,
        tissue=np.asarray(arrays["tissue"]),
        brain_mask=np.asarray(arrays["brain_mask"]),
        labels={k: np.asarray(v) for k, v in group["labels"].items()},
        label_names={p: label_names(p) for p in config.protocols},
        images={k: np.asarray(v) for k, v in group["images"].items()},
        masks={k: np.asarray(v) for k, v in group["masks"].items()},
    )


def _anatomy_arrays(anatomy: Anatomy) -> dict[str, np.ndarray]:
    """The arrays of ``anatomy`` by their names in the cache and in an anatomy bundle."""
    arrays = {"tissue": anatomy.tissue, "brain_mask": anatomy.brain_mask}
    arrays |= {f"labels__{k}": v for k, v in anatomy.labels.items()}
    arrays |= {f"images__{k}": v for k, v in anatomy.images.items()}
    return arrays | {f"masks__{k}": v for k, v in anatomy.masks.items()}


def write_anatomy_bundle(config: SynthConfig, folder: Path, cache_dir: Path | None = None) -> None:
    """Write the anatomy of ``config`` (its grid, protocols and head), the protocols' label names
    and the packages' versions as an anatomy bundle (:mod:`neuralizer.data.bundle`) in
    ``folder``. Reads the packages (the data extra) unless the anatomy is cached already."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    anatomy = cached_anatomy(config, cache_dir)
    write_bundle(
        Path(folder),
        _anatomy_arrays(anatomy),
        voxel_size_mm=config.voxel_size_mm,
        protocols=config.protocols,
        with_head=config.with_head,
        versions=source_versions(),
        label_names=anatomy.label_names,
    )


def _split_groups(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    groups: dict[str, dict[str, np.ndarray]] = {"labels": {}, "images": {}, "masks": {}}
    for name, array in arrays.items():
        if "__" in name:
            group, key = name.split("__", 1)
            groups[group][key] = array
    return groups


def synthesize_subject(
    anatomy: Anatomy, config: SynthConfig, split: str, seed: int
) -> dict[str, np.ndarray]:
    """Warp every volume of ``anatomy`` into virtual subject ``seed``; returns named 3D arrays.

    Names: "tissue" (int16, with extra-cerebral layers), "brain_mask" (bool), "labels__P" (int16
    where the values fit, else int32),
    "images__N" (float16 in [0, 1]), "masks__N" (bool). Same inputs, same arrays, bit for bit.
    """
    grid = anatomy.grid
    center = grid.affine[:3, :3] @ (np.asarray(grid.shape) - 1) / 2 + grid.affine[:3, 3]
    anatomy_rng = np.random.default_rng([2, *anatomy_id(config, split, seed)])
    subject_rng = np.random.default_rng([1, seed])
    anat_def = sample_deformation(config.anatomy_deformation, anatomy_rng, center)
    subj_def = sample_deformation(config.subject_deformation, subject_rng, center)
    # Output point -> subject transform -> anatomy transform -> MNI template point.
    points = subj_def.source_points(grid).reshape(3, -1).T
    points = anat_def.map_points(points, grid).T.reshape(3, *grid.shape)
    sample = Sampler(points, grid)
    brain = sample.nearest(anatomy.brain_mask)
    tissue = sample.nearest(anatomy.tissue)
    out = {
        "tissue": add_extracerebral_layers(tissue, brain, grid.voxel_size_mm, subject_rng),
        "brain_mask": brain,
    }
    for name, labels in anatomy.labels.items():
        warped = sample.nearest(labels.astype(np.int32))
        # int16 on disk where the values fit (halves the cache); slices are handed out as int32.
        out[f"labels__{name}"] = warped.astype(np.int16) if warped.max() < 2**15 else warped
    for name, image in anatomy.images.items():
        out[f"images__{name}"] = np.clip(sample.linear(image), 0, 1).astype(np.float16)
    for name, mask in anatomy.masks.items():
        out[f"masks__{name}"] = sample.nearest(mask)
    return out


def slice_volume(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """H×W slice, superior (or anterior, for axial) at the top, subject's left on the left."""
    plane = np.take(volume, index, axis=axis)  # 2D in the remaining axes' order
    return np.ascontiguousarray(plane.T[::-1])


class SynthSliceSource:
    """A split of virtual subjects (implements :class:`~neuralizer.data.subject.SliceSource`).

    ``get(index, position)`` returns subject ``index`` at relative position ``position`` in [0, 1]
    across the brain's extent along ``axis`` ("coronal" by default); ``paper_position(index)`` is
    the paper's coronal slice (through brainstem, hippocampus, thalamus and lateral ventricles).
    Volumes are synthesised on first use and cached on disk.
    """

    cache_kind = "subjects"  # the cache folder's name: "<cache_kind>-<key>"

    def __init__(
        self,
        split: str,
        n_subjects: int,
        config: SynthConfig | None = None,
        *,
        axis: str = "coronal",
        cache_dir: Path | str | None = None,
        evaluation: bool = False,
    ) -> None:
        self.config = config or SynthConfig()
        subject_seed(split, 0)  # validates the split
        if axis not in AXES:
            raise ValueError(f"unknown axis {axis!r}; choose one of {tuple(AXES)}")
        heldout = sorted(set(self.config.protocols) & set(HELDOUT_PROTOCOLS))
        if heldout and (split != "test" or not evaluation):
            raise ValueError(
                f"held-out protocols {heldout} are for evaluation only: use split='test' and "
                "evaluation=True"
            )
        check_protocols(self.config.protocols, evaluation=evaluation)
        self.split, self.n_subjects, self.axis = split, int(n_subjects), AXES[axis]
        self.evaluation = evaluation
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.key = self._make_key()
        self.root = self.cache_dir / f"{self.cache_kind}-{self.key}"
        self.label_names = self._label_names()
        self._anatomy: Anatomy | None = None
        self._entries: dict[int, tuple[dict[str, np.ndarray], dict]] = {}
        self._write_manifest()

    def _make_key(self) -> str:
        return _cache_key(self.config, "subjects")

    def _label_names(self) -> dict[str, dict[int, str]]:
        """{protocol: {label value: name}} of the subjects' label maps."""
        return {p: label_names(p) for p in self.config.protocols}

    @property
    def synthesis_config(self) -> dict:
        """What determines the subjects (saved in the cache's manifest)."""
        return dataclasses.asdict(self.config)

    @property
    def voxel_size_mm(self) -> float:
        return self.config.voxel_size_mm

    def _write_manifest(self) -> None:
        manifest = {"key": self.key, "split": self.split, "config": self.synthesis_config}
        write_entry(self.root / f"manifest-{self.split}", {}, manifest)

    def _synthesize(self, index: int, seed: int) -> dict[str, np.ndarray]:
        """The arrays of subject ``index`` (seed ``seed``), before caching."""
        if self._anatomy is None:
            self._anatomy = cached_anatomy(self.config, self.cache_dir, evaluation=self.evaluation)
        return synthesize_subject(self._anatomy, self.config, self.split, seed)

    def _subject_id(self, index: int, seed: int) -> str:
        return f"mni152/{self.split}/seed={seed}"

    def __len__(self) -> int:
        return self.n_subjects

    @property
    def grid(self) -> Grid:
        return common_grid(self.voxel_size_mm)

    def volumes(self, index: int) -> tuple[dict[str, np.ndarray], dict]:
        """(3D arrays, meta) of subject ``index`` (memory-mapped from the cache)."""
        if not 0 <= index < self.n_subjects:
            raise IndexError(f"subject {index} out of range for a split of {self.n_subjects}")
        if index not in self._entries:
            seed = subject_seed(self.split, index)
            path = self.root / f"{self.split}-{seed}"
            entry = read_checked(path, self.key)
            if entry is None:
                arrays = self._synthesize(index, seed)
                write_entry(path, arrays, {"key": self.key, "seed": seed, **_extents(arrays)})
                entry = read_checked(path, self.key)
            assert entry is not None
            self._entries[index] = entry
        return self._entries[index]

    def paper_position(self, index: int) -> float:
        """Relative coronal position of the paper's slice in subject ``index``."""
        return float(self.volumes(index)[1]["paper_position"])

    def get(self, index: int, position: float) -> SliceSubject:
        """Subject ``index`` at relative position ``position`` in [0, 1] along the slice axis."""
        if not 0.0 <= position <= 1.0:
            raise ValueError(f"position must lie in [0, 1], got {position}")
        arrays, meta = self.volumes(index)
        lo, hi = meta["extent"][self.axis]
        k = int(round(lo + position * (hi - lo)))
        groups = _split_groups(arrays)
        return SliceSubject(
            subject_id=self._subject_id(index, int(meta["seed"])),
            tissue=slice_volume(arrays["tissue"], self.axis, k),
            brain_mask=slice_volume(arrays["brain_mask"], self.axis, k),
            labels={
                p: slice_volume(v, self.axis, k).astype(np.int32)
                for p, v in groups["labels"].items()
            },
            label_names=self.label_names,
            images={
                n: slice_volume(v, self.axis, k).astype(np.float32)
                for n, v in groups["images"].items()
            },
            masks={n: slice_volume(v, self.axis, k) for n, v in groups["masks"].items()},
            position=float(position),
            seed=int(meta["seed"]),
            voxel_size_mm=self.voxel_size_mm,
            render_classes=(
                slice_volume(arrays["render_classes"], self.axis, k)
                if "render_classes" in arrays
                else None
            ),
        )


def _extents(arrays: dict[str, np.ndarray]) -> dict:
    """Brain extent per axis (first, last index) and the paper's relative coronal position."""
    brain = arrays["brain_mask"]
    extent = []
    for axis in range(3):
        present = np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != axis)))
        extent.append([int(present[0]), int(present[-1])])
    tissue = arrays["tissue"]
    # Coronal slices that cut ventricles (1), deep grey incl. thalamus (4), hippocampus (5) and
    # brainstem (8) at once; the paper's slice is the middle of that range.
    present = np.stack([(tissue == c).any(axis=(0, 2)) for c in (1, 4, 5, 8)]).all(axis=0)
    ys = np.flatnonzero(present)
    lo, hi = extent[1]
    mid = (ys[0] + ys[-1]) / 2 if ys.size else (lo + hi) / 2
    return {"extent": extent, "paper_position": float((mid - lo) / max(hi - lo, 1))}
