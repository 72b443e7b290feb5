"""Where subjects come from: a :class:`SourceConfig` and the one :func:`make_source` that builds it.

Training (each split) and evaluation (targets, context pool) and the task gallery all make their
slice sources here, from the same config kinds:

- "synth": virtual subjects synthesised from the MNI-based anatomy; with ``people_fraction`` f
  > 0, a mix: a fraction f of the episodes come from the twenty real people (each kind of
  subject makes its own episodes; f = 1: the people only).
- "people": the real people only.
- "phantom": geometric phantoms (tests).
- "dataset": a folder written by ``neuralizer data import`` (your own scans): ``path`` for the
  training split, ``val_path`` (default: ``path``) for the held-out splits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from neuralizer.data.dataset import DatasetSliceSource
from neuralizer.data.mixed import MixedSliceSource
from neuralizer.data.phantom import PhantomSource
from neuralizer.data.real import PeopleConfig, PeopleSliceSource
from neuralizer.data.subject import SliceSource
from neuralizer.data.subjects import AXES, SynthConfig, SynthSliceSource

SOURCE_KINDS = ("synth", "people", "phantom", "dataset")
#: the source fields of the configs written before the nesting (flat) -> their place now
FLAT_SOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    "data": ("source", "kind"),
    "voxel_size_mm": ("source", "voxel_size_mm"),
    "axis": ("source", "axis"),
    "people_fraction": ("source", "people_fraction"),
    "protocols": ("source", "protocols"),
    "phantom_size": ("source", "phantom_size"),
}
#: first phantom seed of a held-out split ("val", "test"): its subjects differ from training's
_HELD_OUT_PHANTOM_SEED = 10**7


@dataclass(frozen=True)
class SourceConfig:
    """The subjects of a run or an evaluation (kinds: see the module doc).

    ``protocols``: "synth" only, the synthesis protocols (empty: the training protocols);
    ``phantom_size``: "phantom" only, H = W of its slices.
    """

    kind: str = "synth"
    voxel_size_mm: float = 2.0
    axis: str = "coronal"
    people_fraction: float = 0.0
    protocols: tuple[str, ...] = ()
    phantom_size: int = 32
    path: str = ""
    val_path: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if self.axis not in AXES:
            raise ValueError(f"source axis must be one of {tuple(AXES)}, got {self.axis!r}")
        if not 0 < self.voxel_size_mm < 100:
            raise ValueError(
                f"source voxel_size_mm must be in (0, 100) mm, got {self.voxel_size_mm}"
            )
        if not 0 <= self.people_fraction <= 1:
            raise ValueError(
                f"source people_fraction must be in [0, 1], got {self.people_fraction}"
            )
        if self.people_fraction and self.kind != "synth":
            raise ValueError("source people_fraction mixes people into kind 'synth' only")
        if self.phantom_size < 1:
            raise ValueError(f"source phantom_size must be at least 1, got {self.phantom_size}")
        if (self.kind == "dataset") != bool(self.path) or (self.val_path and not self.path):
            raise ValueError(
                "source kind 'dataset' needs 'path' (a folder made by neuralizer data import), "
                "and only it takes path and val_path"
            )

    def part_weights(self) -> dict[str, float]:
        """How often each part of the mixed source is drawn (the sampler's ``source_weights``)."""
        return {"mni152": 1 - self.people_fraction, "people": self.people_fraction}


def make_source(config: SourceConfig, split: str, n_subjects: int) -> SliceSource:
    """The first ``n_subjects`` subjects of ``split`` ("train", "val" or "test"; a dataset has
    as many as it holds, at most ``n_subjects``). Test subjects of "synth" are drawn as
    evaluation subjects (``SynthSliceSource(evaluation=True)``)."""
    axis = config.axis
    if config.kind == "phantom":
        first = 0 if split == "train" else _HELD_OUT_PHANTOM_SEED
        return PhantomSource(n_subjects, config.phantom_size, first_seed=first)
    if config.kind == "dataset":
        folder = config.path if split == "train" else config.val_path or config.path
        return DatasetSliceSource(folder, axis=axis, n_subjects=n_subjects)
    people = PeopleConfig(voxel_size_mm=config.voxel_size_mm)
    if config.kind == "people":
        return PeopleSliceSource(split, n_subjects, people, axis=axis)
    parts: dict[str, SliceSource] = {}
    if config.people_fraction < 1:
        evaluation = split == "test"
        parts["mni152"] = SynthSliceSource(
            split, n_subjects, synth_config(config), axis=axis, evaluation=evaluation
        )
    if config.people_fraction > 0:
        parts["people"] = PeopleSliceSource(split, n_subjects, people, axis=axis)
    return next(iter(parts.values())) if len(parts) == 1 else MixedSliceSource(parts)


def synth_config(config: SourceConfig) -> SynthConfig:
    """The synthesis of the MNI-based subjects of a "synth" source."""
    kwargs = {"protocols": config.protocols} if config.protocols else {}
    return SynthConfig(voxel_size_mm=config.voxel_size_mm, **kwargs)


def check_source(config: SourceConfig) -> None:
    """The checks of ``config`` that read files (a dataset's manifest), before any heavy work:
    the folders exist and were imported at ``config.voxel_size_mm``."""
    for folder in {config.path, config.val_path} - {""}:
        manifest = Path(folder) / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found: make it with neuralizer data import")
        imported = json.loads(manifest.read_text()).get("voxel_size_mm")
        if imported != config.voxel_size_mm:
            raise ValueError(
                f"{folder} was imported at {imported} mm but the source's voxel_size_mm is "
                f"{config.voxel_size_mm}: set source.voxel_size_mm to {imported}"
            )
