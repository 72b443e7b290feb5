"""Data augmentation per pair: random affine, elastic deformation and sagittal flip (paper §4.3).

A flipped pair also swaps the names of its lateralised labels (Left-X <-> Right-X), as SynthSeg
does: after the mirror, the structure labelled Left-X sits where a right one would, and with flips
drawn per pair a context would otherwise show Left-X on the left in some pairs and on the right
in others, an ambiguous task for almost every label (most protocols name both hemispheres). With
the swap, Left-X is always the structure on the image's left-hemisphere side.

One spatial transform is drawn per (input, output) pair and applied to the *subject* before the
task renders the pair (tissue classes, label maps and brain mask with nearest neighbour, real
images bilinearly), so both images of the pair move together and every task property (k-space,
masks, ...) holds exactly on the transformed subject.

The transform maps each output pixel ``o`` (row, col) to the source position
``o' = flip(o) -> A (o' - c) + c + t + d(o)``: ``flip`` mirrors the columns (``flip_axis``, the
left-right axis of the data engine's slices), ``A`` (2×2) and ``t`` are the affine part about the
image centre ``c``, and ``d`` is a smooth displacement field upsampled (cubic) from a coarse grid.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from neuralizer.data.subject import SliceSubject
from neuralizer.tasks.fields import upsample_coarse

#: A left/right token in a label name: "Left-Hippocampus", "ctx-lh-insula", "Left_Frontal_Pole",
#: "GM_..._hIP1_L" (group 1: the separator before it).
SIDE = re.compile(r"(?i)(^|[-_. ])(left|right|lh|rh|l|r)(?=$|[-_. ])")
_OTHER_SIDE = {"left": "right", "right": "left", "lh": "rh", "rh": "lh", "l": "r", "r": "l"}


def side_free(name: str) -> str:
    """A label name without its side, lower case: the key shared by left and right twins."""
    return SIDE.sub(r"\1", name).strip("-_. ").lower()


def _other_side(match: re.Match) -> str:
    token = match.group(2)
    other = _OTHER_SIDE[token.lower()]
    if token.isupper():
        other = other.upper()
    elif token[0].isupper():
        other = other.capitalize()
    return match.group(1) + other


def mirrored_labels(names: Mapping[int, str]) -> dict[int, int]:
    """Label value -> the value of the same structure on the other side (lateralised labels
    whose twin is in ``names``; other labels are left out: they map to themselves)."""
    return dict(_mirrored(tuple(sorted((int(v), str(n)) for v, n in names.items()))))


@functools.lru_cache(maxsize=64)
def _mirrored(names: tuple[tuple[int, str], ...]) -> tuple[tuple[int, int], ...]:
    by_name = {name: value for value, name in names}
    out = []
    for value, name in names:
        swapped = SIDE.sub(_other_side, name)
        if swapped == name:
            continue
        twin = by_name.get(swapped)
        if twin is None:  # atlases' own misspellings (Harvard-Oxford: "Left_Lateral_Ventrical")
            match = difflib.get_close_matches(swapped, by_name, n=1, cutoff=0.9)
            twin = by_name[match[0]] if match else None
        if twin is not None and twin != value:
            out.append((value, twin))
    return tuple(out)


def relabel(labels: np.ndarray, table: Mapping[int, int]) -> np.ndarray:
    """``labels`` with every value ``v`` in ``table`` replaced by ``table[v]`` (same dtype)."""
    values, inverse = np.unique(labels, return_inverse=True)
    mapped = np.array([table.get(int(v), v) for v in values], dtype=labels.dtype)
    return mapped[inverse].reshape(labels.shape)


@dataclass(frozen=True)
class SpatialConfig:
    """Ranges of the per-pair spatial augmentation (``enabled=False`` turns it off)."""

    enabled: bool = True
    rotation_deg: float = 10.0
    log_scale: float = 0.08  # scale = exp(U(-log_scale, log_scale))
    shear: float = 0.05
    translation_frac: float = 0.04  # of the image size
    p_elastic: float = 0.5
    elastic_grid: int = 5
    elastic_frac: float = 0.015  # displacement s.d. at the control points, of the image size
    p_flip: float = 0.5
    flip_axis: int = 1


@dataclass(frozen=True)
class SpatialParams:
    flip: bool = False
    flip_axis: int = 1
    matrix: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.0), (0.0, 1.0))
    translation: tuple[float, float] = (0.0, 0.0)
    elastic: tuple[tuple[tuple[float, ...], ...], ...] = ()  # 2×g×g displacements (px), or ()

    @property
    def is_identity(self) -> bool:
        return self == SpatialParams(flip_axis=self.flip_axis)


def sample_spatial(
    shape: tuple[int, int], config: SpatialConfig, rng: np.random.Generator
) -> SpatialParams:
    """Draw one pair's spatial transform for images of ``shape``."""
    if not config.enabled:
        return SpatialParams(flip_axis=config.flip_axis)
    a = np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    scale = np.diag(np.exp(rng.uniform(-config.log_scale, config.log_scale, 2)))
    shear = np.array([[1.0, rng.uniform(-config.shear, config.shear)], [0.0, 1.0]])
    matrix = rot @ scale @ shear
    translation = rng.uniform(-1, 1, 2) * config.translation_frac * np.array(shape)
    elastic = ()
    if rng.uniform() < config.p_elastic:
        g = config.elastic_grid
        d = rng.normal(0.0, config.elastic_frac * min(shape), (2, g, g))
        elastic = tuple(tuple(tuple(float(v) for v in row) for row in comp) for comp in d)
    return SpatialParams(
        flip=bool(rng.uniform() < config.p_flip),
        flip_axis=config.flip_axis,
        matrix=tuple(tuple(float(v) for v in row) for row in matrix),  # type: ignore[arg-type]
        translation=(float(translation[0]), float(translation[1])),
        elastic=elastic,
    )


def source_coordinates(shape: tuple[int, int], params: SpatialParams) -> np.ndarray:
    """2×H×W source positions (row, col) of every output pixel (see module doc)."""
    grid = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    if params.flip:
        ax = params.flip_axis
        grid[ax] = shape[ax] - 1 - grid[ax]
    centre = (np.array(shape, np.float64) - 1) / 2
    rel = grid - centre[:, None, None]
    coords = np.einsum("ij,jhw->ihw", np.asarray(params.matrix), rel)
    coords += (centre + np.asarray(params.translation))[:, None, None]
    if params.elastic:
        coarse = np.asarray(params.elastic)
        for i in range(2):
            coords[i] += upsample_coarse(coarse[i], shape)
    return coords


class Warper:
    """Resamples H×W arrays at fixed source coordinates (2×H×W), zero outside the image.

    Integer and bool arrays (labels, masks) by nearest neighbour (``floor(x + 0.5)``), float
    arrays bilinearly (corners outside the image count as 0). Indices and weights are computed
    once and reused for every array of a subject.
    """

    def __init__(self, coords: np.ndarray, shape: tuple[int, int]):
        h, w = shape
        nearest = np.floor(coords + 0.5).astype(np.intp)
        self._nn_inside = (
            (nearest[0] >= 0) & (nearest[0] < h) & (nearest[1] >= 0) & (nearest[1] < w)
        )
        self._nn = (np.clip(nearest[0], 0, h - 1), np.clip(nearest[1], 0, w - 1))
        base = np.floor(coords).astype(np.intp)
        frac = coords - base
        self._corners = []
        for di in (0, 1):
            for dj in (0, 1):
                i, j = base[0] + di, base[1] + dj
                weight = (frac[0] if di else 1 - frac[0]) * (frac[1] if dj else 1 - frac[1])
                weight = np.where((i >= 0) & (i < h) & (j >= 0) & (j < w), weight, 0.0)
                self._corners.append((np.clip(i, 0, h - 1), np.clip(j, 0, w - 1), weight))

    def __call__(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            out = sum(wt * array[i, j].astype(np.float64) for i, j, wt in self._corners)
            return out.astype(array.dtype)
        return np.where(self._nn_inside, array[self._nn], np.zeros((), array.dtype))


class _WarpedMapping(Mapping):
    """A read-only mapping whose arrays are warped on first access (tasks use few of them);
    ``tables``: key -> relabelling applied after the warp (a flip's side swap)."""

    def __init__(self, source: Mapping, warper: Warper, tables: Mapping | None = None):
        self._source, self._warper, self._done = source, warper, {}
        self._tables = tables or {}

    def __getitem__(self, key):
        if key not in self._done:
            warped = self._warper(self._source[key])
            table = self._tables.get(key)
            self._done[key] = relabel(warped, table) if table else warped
        return self._done[key]

    def __iter__(self):
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)


def _warp_value(value, warper: Warper, shape: tuple[int, int]):
    if isinstance(value, np.ndarray) and value.shape == shape:
        return warper(value)
    if isinstance(value, Mapping) and value:
        if all(isinstance(v, np.ndarray) and v.shape == shape for v in value.values()):
            return _WarpedMapping(value, warper)
    return value


def transform_subject(subject: SliceSubject, params: SpatialParams) -> SliceSubject:
    """``subject`` with every H×W array resampled by ``params`` (identity: ``subject`` itself).

    Every field that is an H×W array, or a mapping of them (tissue, brain mask, label maps, real
    images, and any such field the data contract adds), is moved by the same transform (see
    :class:`Warper`); arrays inside mappings are resampled lazily, when a task reads them. A flip
    swaps left and right labels (module doc).
    """
    if params.is_identity:
        return subject
    shape = subject.shape
    warper = Warper(source_coordinates(shape, params), shape)
    changes = {
        f.name: _warp_value(getattr(subject, f.name), warper, shape)
        for f in dataclasses.fields(subject)
    }
    if params.flip and isinstance(changes["labels"], _WarpedMapping):
        tables = {p: mirrored_labels(n) for p, n in subject.label_names.items()}
        changes["labels"] = _WarpedMapping(subject.labels, warper, tables)
    return dataclasses.replace(subject, **changes)
