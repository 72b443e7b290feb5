"""The contract between the data engine (``neuralizer.data``) and the tasks (``neuralizer.tasks``).

A task never sees 3D volumes or packages: it receives :class:`SliceSubject` objects — one subject
reduced to one 2D slice, every array H×W on the same grid — from a :class:`SliceSource`, and renders
images with :func:`neuralizer.data.render` under a :class:`ContrastProfile` drawn once per episode
(so every pair of an episode shares one intensity mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class ContrastProfile:
    """A modality: one intensity per tissue class (values in [0, 1]), fixed for a whole episode.

    ``name`` is one of ``PROFILE_NAMES`` ("t1", "t2", "pd", "flair", "synthetic").
    ``intensities[k]`` is the mean intensity of tissue class ``k`` (see ``TISSUE_CLASSES``).
    """

    name: str
    intensities: Mapping[int, float]


@dataclass(frozen=True)
class SliceSubject:
    """One (virtual) subject at one slice position. Every array is H×W on one grid.

    - ``tissue``: int16 tissue classes used for rendering (never the parcellation being segmented).
    - ``labels``: protocol name -> int32 label map (training protocols only, unless built for
      evaluation); ``label_names``: protocol name -> {label value: name}.
    - ``brain_mask``: bool brain mask.
    - ``images``: real intensity images, float32 in [0, 1], e.g. "t1_brain", "head" (may be empty).
    - ``subject_id``: stable identifier, e.g. "mni152/seed=123"; ``position``: relative slice
      position in [0, 1] along the slice axis; ``seed``: the subject's synthesis seed.
    - ``voxel_size_mm``: pixel spacing of the grid (renders scale their blurs by it).
    - ``masks``: extra bool masks, e.g. "head_brain" (the brain mask of the real "head" image,
      which is another person's brain than ``tissue``/``brain_mask``).
    - ``render_classes``: int16 render classes of real anatomy (one per aseg structure and head
      tissue, see :func:`neuralizer.data.render.real_class_map`); renders use them instead of
      ``tissue`` when present. None for the MNI-based subjects.
    """

    subject_id: str
    tissue: np.ndarray
    brain_mask: np.ndarray
    labels: Mapping[str, np.ndarray] = field(default_factory=dict)
    label_names: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    images: Mapping[str, np.ndarray] = field(default_factory=dict)
    position: float = 0.5
    seed: int = 0
    voxel_size_mm: float = 1.0
    masks: Mapping[str, np.ndarray] = field(default_factory=dict)
    render_classes: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.tissue.shape)  # type: ignore[return-value]


class SliceSource(Protocol):
    """A split of subjects from which slices can be drawn (what the episode sampler consumes)."""

    def __len__(self) -> int:
        """Number of subjects in this split."""

    def get(self, index: int, position: float) -> SliceSubject:
        """Subject ``index`` at relative slice position ``position`` in [0, 1]."""
