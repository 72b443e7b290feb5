"""Virtual subjects of real anatomy: one of the twenty people, moved by a random affine and
elastic deformation (the SynthSeg recipe), as a :class:`~neuralizer.data.subject.SliceSource`.

Unlike the MNI-based subjects (:mod:`neuralizer.data.subjects`), the anatomy is a real person's
own shape (affinely aligned to the common space, never warped to MNI), so subjects differ from
each other as people do. Subject ``index`` of a split is person
``PEOPLE_SPLITS[split][index % n_people]`` with the deformation of its own seed; splits are
disjoint by person, so test people never reach training or validation.

A subject carries the labels "aseg" (FreeSurfer brain structures, CSF included) and "tissue"
(the tissue classes inside the brain mask), its render classes (one per structure and head
tissue, :func:`neuralizer.data.render.real_class_map`), the coarse tissue map with the real
head's tissues, the brain mask made from its brain labels, and the mask "fov" of its field of
view. People whose field of view cuts within :data:`FOV_MARGIN_MM` of the brain inside the common
grid are never used for skull stripping (:meth:`PeopleSliceSource.excluded`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from neuralizer.data.cache import config_key, read_checked, write_entry
from neuralizer.data.people import (
    ASEG_NAMES,
    HEAD_LABELS,
    PEOPLE_DIR,
    PEOPLE_SPLITS,
    brain_mask_from_labels,
    load_person,
    person_file,
)
from neuralizer.data.render import BRAIN_CLASSES, TISSUE_CLASSES, head_tissue_class, real_class_map
from neuralizer.data.sources import SULCAL_CSF, tissue_from_aseg
from neuralizer.data.space import common_grid
from neuralizer.data.subjects import SynthSliceSource, subject_seed
from neuralizer.data.synth import DeformationConfig, Sampler, sample_deformation

CACHE_VERSION = 1
#: A person whose field of view ends this close to the brain (inside the grid) is not used for
#: skull stripping: its brain mask would end at the crop, not at the brain's edge.
FOV_MARGIN_MM = 3.0
#: Label protocols of every real subject, with their names.
PEOPLE_PROTOCOLS: dict[str, dict[int, str]] = {
    "aseg": {0: "background", **ASEG_NAMES},
    "tissue": {k: v for k, v in TISSUE_CLASSES.items() if k in (0, *BRAIN_CLASSES, SULCAL_CSF)},
}
_CSF_LABEL = 24


@dataclass(frozen=True)
class PeopleConfig:
    """Everything that determines the cached subjects of real anatomy (part of the cache key).

    ``people``: which people a split draws on (default :data:`PEOPLE_SPLITS`).
    """

    voxel_size_mm: float = 2.0
    subject_deformation: DeformationConfig = field(
        default_factory=lambda: DeformationConfig(
            rotation_deg=10.0, scaling=0.08, shear=0.03, translation_mm=6.0,
            elastic_mm=2.5, elastic_grid=(6, 7, 6),
        )
    )  # fmt: skip
    people: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(PEOPLE_SPLITS))

    def __post_init__(self) -> None:
        train_val = set(self.people.get("train", ())) | set(self.people.get("val", ()))
        test = set(self.people.get("test", ())) | set(PEOPLE_SPLITS["test"])
        if train_val & test:
            raise ValueError(
                f"people {sorted(train_val & test)} are test people: they may never be used "
                "for training or validation"
            )
        if set(self.people.get("train", ())) & set(self.people.get("val", ())):
            raise ValueError("training and validation people must differ")


def _derivative_hash(numbers: tuple[int, ...], root: Path) -> str:
    digest = hashlib.sha256()
    for number in numbers:
        digest.update(person_file(number, root).read_bytes())
    return digest.hexdigest()[:16]


def person_volumes(number: int, root: Path = PEOPLE_DIR) -> dict[str, np.ndarray]:
    """Person ``number`` on the 1 mm grid: "labels" int16, "brain_mask", "fov" (bool) and
    "fov_near_brain" (0-d bool: the field of view ends within :data:`FOV_MARGIN_MM` of the
    brain inside the grid)."""
    labels, fov = load_person(number, root)
    brain = brain_mask_from_labels(labels)
    if fov.all():
        near = False
    else:
        margin = ndimage.binary_dilation(~fov, iterations=int(np.ceil(FOV_MARGIN_MM)))
        near = bool((margin & brain).any())
    return {"labels": labels, "brain_mask": brain, "fov": fov, "fov_near_brain": np.array(near)}


def synthesize_person_subject(
    person: dict[str, np.ndarray], config: PeopleConfig, seed: int
) -> dict[str, np.ndarray]:
    """Deform a person (see :func:`person_volumes`) into virtual subject ``seed`` on the grid of
    ``config.voxel_size_mm``. Names as in :func:`neuralizer.data.subjects.synthesize_subject`,
    plus "render_classes" (int16). Same inputs, same arrays."""
    grid = common_grid(config.voxel_size_mm)
    fine = common_grid(1.0)
    center = grid.affine[:3, :3] @ (np.asarray(grid.shape) - 1) / 2 + grid.affine[:3, 3]
    deformation = sample_deformation(
        config.subject_deformation, np.random.default_rng([3, seed]), center
    )
    sample = Sampler(deformation.source_points(grid), fine)  # 1 mm maps at the grid's points
    labels = sample.nearest(np.asarray(person["labels"]))
    brain = sample.nearest(np.asarray(person["brain_mask"]))
    fov = sample.nearest(np.asarray(person["fov"]))
    tissue = tissue_from_aseg(labels.astype(np.int32), brain)
    tissue[~brain & (labels == _CSF_LABEL)] = SULCAL_CSF  # CSF around the brain
    for label in HEAD_LABELS:
        tissue[labels == label] = head_tissue_class(label)
    classes = real_class_map(labels)
    classes[brain & (classes == 0)] = real_class_map(np.array(_CSF_LABEL))
    return {
        "tissue": tissue,
        "render_classes": classes,
        "brain_mask": brain,
        "labels__aseg": np.where(labels < 100, labels, 0).astype(np.int16),
        "labels__tissue": np.where(brain, tissue, 0).astype(np.int16),
        "masks__fov": fov,
    }


class PeopleSliceSource(SynthSliceSource):
    """A split of virtual subjects of real anatomy (a :class:`SliceSource`; see the module doc).

    Same interface as :class:`~neuralizer.data.subjects.SynthSliceSource` (``get``,
    ``volumes``, ``paper_position``), built once per subject and cached on disk.
    """

    cache_kind = "people"

    def __init__(
        self,
        split: str,
        n_subjects: int,
        config: PeopleConfig | None = None,
        *,
        axis: str = "coronal",
        cache_dir: Path | str | None = None,
        people_dir: Path = PEOPLE_DIR,
    ) -> None:
        self.people_config = config or PeopleConfig()
        subject_seed(split, 0)  # validates the split
        self.people = tuple(self.people_config.people[split])
        if not self.people:
            raise ValueError(f"split {split!r} has no people")
        self.people_dir = Path(people_dir)
        for number in self.people:  # a clear error before any work if the derivative is gone
            if not person_file(number, self.people_dir).exists():
                load_person(number, self.people_dir)
        super().__init__(split, n_subjects, axis=axis, cache_dir=cache_dir)
        self._excluded: frozenset[int] | None = None

    @property
    def synthesis_config(self) -> dict:
        return {
            "what": "people",
            "config": dataclasses.asdict(self.people_config),
            "derivative": _derivative_hash(self.people, self.people_dir),
            "cache_version": CACHE_VERSION,
        }

    def _make_key(self) -> str:
        return config_key(self.synthesis_config)

    def _label_names(self) -> dict[str, dict[int, str]]:
        return PEOPLE_PROTOCOLS  # the MNI protocols' names (atlas packages) are not needed

    @property
    def voxel_size_mm(self) -> float:
        return self.people_config.voxel_size_mm

    def person(self, index: int) -> int:
        """The person (1-based number of the original map) of subject ``index``."""
        return self.people[index % len(self.people)]

    def _person_entry(self, number: int) -> dict[str, np.ndarray]:
        # Depends on the person's file only, so every config and split shares the entry.
        key = config_key({"what": "person", "number": number, "cache_version": CACHE_VERSION,
                          "derivative": _derivative_hash((number,), self.people_dir)})  # fmt: skip
        path = self.cache_dir / f"person-{key}"
        entry = read_checked(path, key)
        if entry is None:
            write_entry(path, person_volumes(number, self.people_dir), {"key": key})
            entry = read_checked(path, key)
        assert entry is not None
        return entry[0]

    def _synthesize(self, index: int, seed: int) -> dict[str, np.ndarray]:
        person = self._person_entry(self.person(index))
        return synthesize_person_subject(person, self.people_config, seed)

    def _subject_id(self, index: int, seed: int) -> str:
        return f"person-{self.person(index):02d}/{self.split}/seed={seed}"

    def excluded(self, task: str) -> frozenset[int]:
        """Subjects never drawn for ``task``: for skull stripping, those whose person's field of
        view ends near the brain (a crop must not serve as a skull-stripping truth)."""
        if task != "skull_stripping":
            return frozenset()
        if self._excluded is None:
            cropped = {n for n in set(self.people) if self._person_entry(n)["fov_near_brain"]}
            self._excluded = frozenset(i for i in range(len(self)) if self.person(i) in cropped)
        return self._excluded
