"""Twenty real people: SynthSeg's whole-head label maps, affinely aligned to the common space.

The originals (``../shared/data/synthseg-label-maps/``, Apache-2.0, see ``people/NOTICE``) are
256³ label maps at 1 mm in each person's own scanner space. :func:`import_label_maps` brings each
one into the common MNI space by an affine registration only (the person keeps their own shape):
a T1-like brain is rendered from the person's labels with SynthSeg's T1 priors and registered to
the MNI152 T1 brain with :func:`neuralizer.data.register.register_affine`. The alignment is
checked (brain-mask Dice against the MNI brain mask, :data:`MIN_ALIGNMENT_DICE`); a person that
fails is reported and not written.

The committed derivative (``people/person-NN.npy.xz``) holds, per person, one uint8 volume on
the 1 mm common grid: a code per voxel (``people/labels.json`` maps codes to FreeSurfer labels)
and :data:`OUTSIDE_FOV` where the original scan has no data (a cropped field of view). It is an
``.npy`` file compressed with xz (stdlib ``lzma``), read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import lzma
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from neuralizer.data.space import Grid, common_grid, load_nifti
from neuralizer.files import write_atomically

#: The committed derivative (inside the package, so a fresh clone needs no ``../shared``).
PEOPLE_DIR = Path(__file__).resolve().parent / "people"
N_PEOPLE = 20
#: People by split (1-based numbers of the original files). Test people never reach training
#: or validation; person 20 (cropped field of view) and the other maps cut through the
#: brainstem at the bottom of the grid are training people, so no test truth lies at a crop.
#: Person 16 fails the alignment check (:data:`FAILED_ALIGNMENT`) and is in no split.
PEOPLE_SPLITS: dict[str, tuple[int, ...]] = {
    "train": (1, 2, 3, 4, 6, 7, 9, 11, 13, 14, 15, 18, 20),
    "val": (8, 12),
    "test": (5, 10, 17, 19),
}
#: People whose aligned brain mask stays below :data:`MIN_ALIGNMENT_DICE` (their Dice): not in
#: the derivative. Person 16's brain is shaped unlike the MNI brain (the same transform from
#: three registration seeds; Dice 0.92 on the intracranial volume), but the check stands.
FAILED_ALIGNMENT: dict[int, float] = {16: 0.8845}
#: Code of a voxel outside the original scan's field of view.
OUTSIDE_FOV = 255
#: Minimum brain-mask Dice of an aligned person against the MNI brain mask.
MIN_ALIGNMENT_DICE = 0.90
#: Registration runs at this voxel size (mm); labels are resampled at 1 mm.
_REGISTRATION_MM = 2.0
#: A face of the labels' bounding box with at least this many labelled voxels is a flat cut of
#: the field of view (a natural head boundary touches its box in a few voxels).
_CUT_VOXELS = 500

#: FreeSurfer names of the aseg labels in the maps (left/right spelled as FreeSurfer does, so
#: that a flip swaps them, see :mod:`neuralizer.tasks.spatial`).
ASEG_NAMES: dict[int, str] = {
    2: "Left-Cerebral-White-Matter", 3: "Left-Cerebral-Cortex", 4: "Left-Lateral-Ventricle",
    5: "Left-Inf-Lat-Vent", 7: "Left-Cerebellum-White-Matter", 8: "Left-Cerebellum-Cortex",
    10: "Left-Thalamus", 11: "Left-Caudate", 12: "Left-Putamen", 13: "Left-Pallidum",
    14: "3rd-Ventricle", 15: "4th-Ventricle", 16: "Brain-Stem", 17: "Left-Hippocampus",
    18: "Left-Amygdala", 24: "CSF", 25: "Left-Lesion", 26: "Left-Accumbens-area",
    28: "Left-VentralDC", 30: "Left-vessel", 41: "Right-Cerebral-White-Matter",
    42: "Right-Cerebral-Cortex", 43: "Right-Lateral-Ventricle", 44: "Right-Inf-Lat-Vent",
    46: "Right-Cerebellum-White-Matter", 47: "Right-Cerebellum-Cortex", 49: "Right-Thalamus",
    50: "Right-Caudate", 51: "Right-Putamen", 52: "Right-Pallidum", 53: "Right-Hippocampus",
    54: "Right-Amygdala", 57: "Right-Lesion", 58: "Right-Accumbens-area", 60: "Right-VentralDC",
    62: "Right-vessel", 72: "5th-Ventricle", 85: "Optic-Chiasm",
}  # fmt: skip
#: Labels above 100: extra-cerebral head tissues without published names (SynthSeg's README).
HEAD_LABELS: tuple[int, ...] = (
    136, 137, 163, 164, 502, 506, 507, 508, 509, 511, 512, 514, 515, 516, 530,
)  # fmt: skip
#: Labels outside the brain mask although below 100: CSF around the brain.
_NON_BRAIN_ASEG = (24,)


def brain_mask_from_labels(labels: np.ndarray) -> np.ndarray:
    """Brain mask (bool, same shape) of an aseg-labelled head: every brain label (not CSF, not
    head tissue), closed and hole-filled, so sulcal CSF and the ventricles lie inside it."""
    labels = np.asarray(labels)
    brain = (labels > 0) & (labels < 100) & ~np.isin(labels, _NON_BRAIN_ASEG)
    return ndimage.binary_fill_holes(ndimage.binary_closing(brain, iterations=2))


def _t1_prior(labels: np.ndarray) -> np.ndarray:
    """A T1-like intensity per voxel (0–1) from the render table's T1 profile (for registration)."""
    from neuralizer.data.render import real_class_map, t1_like_values

    return t1_like_values()[real_class_map(labels)]


def field_of_view(labels: np.ndarray) -> np.ndarray:
    """Bool mask of the original grid's field of view: the whole box, limited on each face where
    the labels end in a flat cut (a face of their bounding box that many voxels touch)."""
    fov = np.ones(labels.shape, bool)
    present = labels > 0
    for axis in range(3):
        counts = present.sum(axis=tuple(a for a in range(3) if a != axis))
        nonzero = np.flatnonzero(counts)
        index = [slice(None)] * 3
        if counts[nonzero[0]] >= _CUT_VOXELS and nonzero[0] > 0:
            index[axis] = slice(0, nonzero[0])
            fov[tuple(index)] = False
        if counts[nonzero[-1]] >= _CUT_VOXELS and nonzero[-1] < labels.shape[axis] - 1:
            index[axis] = slice(nonzero[-1] + 1, None)
            fov[tuple(index)] = False
    return fov


def mni_brain_mask(grid: Grid) -> np.ndarray:
    """The MNI152 T1 brain's mask on ``grid`` (what the alignment check compares against)."""
    from neuralizer.data.sources import load_templates

    return brain_mask_of(load_templates(grid)["t1_brain"])


def brain_mask_of(t1_brain: np.ndarray) -> np.ndarray:
    """The mask of an MNI152 T1 brain image in [0, 1]: above 0.02, holes filled."""
    return ndimage.binary_fill_holes(t1_brain > 0.02)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two bool arrays (1 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


@dataclass(frozen=True)
class AlignedPerson:
    """One person on the 1 mm common grid: FreeSurfer labels (int32, 0 outside the field of
    view), the field of view (bool) and the alignment check's Dice."""

    number: int
    labels: np.ndarray
    fov: np.ndarray
    dice: float


def align_person(path: Path, number: int, *, seed: int = 0) -> AlignedPerson:
    """Affinely register one original label map to the MNI T1 brain; resample it at 1 mm."""
    from neuralizer.data.register import register_affine, resample_with_transform
    from neuralizer.data.sources import load_templates

    labels, affine = load_nifti(str(path))
    labels = np.rint(labels).astype(np.int32)
    coarse = common_grid(_REGISTRATION_MM)
    moving = _t1_prior(labels) * brain_mask_from_labels(labels)
    # Registration needs no 1 mm detail: smooth and halve the moving image first (4x faster).
    factor = _REGISTRATION_MM / float(np.linalg.norm(affine[:3, 0]))
    small = ndimage.zoom(ndimage.gaussian_filter(moving, factor / 2.5), 1 / factor, order=1)
    small_affine = affine.copy()
    small_affine[:3, :3] *= factor
    small_affine[:3, 3] += affine[:3, :3] @ np.full(3, (factor - 1) / 2)
    fixed = load_templates(coarse)["t1_brain"]
    transform = register_affine(fixed, coarse.affine, small, small_affine, seed=seed)
    grid = common_grid(1.0)
    aligned = resample_with_transform(labels, affine, transform, grid, order=0)
    fov = resample_with_transform(field_of_view(labels).astype(np.int32), affine, transform, grid,
                                  order=0).astype(bool)  # fmt: skip
    mask = resample_with_transform(brain_mask_from_labels(labels).astype(np.int32), affine,
                                   transform, coarse, order=0).astype(bool)  # fmt: skip
    return AlignedPerson(number, np.where(fov, aligned, 0), fov, dice(mask, mni_brain_mask(coarse)))


def label_codes() -> dict[int, int]:
    """Code (uint8) -> FreeSurfer label of the derivative (0 is background)."""
    labels = (0, *sorted(ASEG_NAMES), *HEAD_LABELS)
    return dict(enumerate(labels))


def encode(person: AlignedPerson) -> np.ndarray:
    """The uint8 code volume of an aligned person (:data:`OUTSIDE_FOV` outside its view)."""
    lut = np.zeros(int(max(HEAD_LABELS)) + 1, np.uint8)
    for code, label in label_codes().items():
        lut[label] = code
    unknown = set(np.unique(person.labels).tolist()) - set(label_codes().values())
    if unknown:
        raise ValueError(f"person {person.number}: labels {sorted(unknown)} are not in the table")
    codes = lut[person.labels]
    codes[~person.fov] = OUTSIDE_FOV
    return codes


def person_file(number: int, root: Path = PEOPLE_DIR) -> Path:
    return root / f"person-{number:02d}.npy.xz"


def write_person(codes: np.ndarray, path: Path) -> None:
    """Write a code volume as an xz-compressed ``.npy`` file, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(codes, np.uint8), allow_pickle=False)
    data = lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    write_atomically(path, data)


def read_codes(path: Path) -> np.ndarray:
    """The uint8 code volume of a derivative file (192×224×192, the 1 mm common grid)."""
    array = np.load(io.BytesIO(lzma.decompress(path.read_bytes())), allow_pickle=False)
    if array.dtype != np.uint8 or array.shape != common_grid(1.0).shape:
        raise ValueError(f"{path}: not a person volume (dtype {array.dtype}, shape {array.shape})")
    return array


def load_person(number: int, root: Path = PEOPLE_DIR) -> tuple[np.ndarray, np.ndarray]:
    """(FreeSurfer labels int16, field of view bool) of person ``number`` on the 1 mm grid."""
    if not 1 <= number <= N_PEOPLE:
        raise ValueError(f"people are numbered 1 to {N_PEOPLE}, got {number}")
    if number in FAILED_ALIGNMENT:
        raise ValueError(
            f"person {number} failed the alignment check (brain-mask Dice "
            f"{FAILED_ALIGNMENT[number]} < {MIN_ALIGNMENT_DICE}) and is not part of the data"
        )
    path = person_file(number, root)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; regenerate it with: neuralizer data import-label-maps "
            "../shared/data/synthseg-label-maps"
        )
    codes = read_codes(path)
    table = label_codes()
    lut = np.zeros(256, np.int16)
    for code, label in table.items():
        lut[code] = label
    return lut[codes], codes != OUTSIDE_FOV


def _original(src: Path, number: int) -> Path:
    path = src / f"training_seg_{number:02d}.nii.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: DIR must hold SynthSeg's training_seg_NN")
    return path


def import_label_maps(
    src: Path,
    output: Path = PEOPLE_DIR,
    *,
    people: Iterable[int] | None = None,
    check: bool = False,
    progress: bool = True,
) -> dict[int, Mapping]:
    """Align the original maps in ``src`` and write the derivative to ``output`` (``check``:
    compare with the files already there instead of writing). Returns, per person, the
    alignment Dice, "failed" (Dice below :data:`MIN_ALIGNMENT_DICE`: not written, not
    compared) and, with ``check``, the fraction of voxels equal to the stored file.
    """
    from tqdm import tqdm

    numbers = list(range(1, N_PEOPLE + 1) if people is None else people)
    paths = {n: _original(Path(src), n) for n in numbers}  # every file checked before work
    report: dict[int, dict] = {}
    for number in tqdm(numbers, desc="aligning people", unit="person", disable=not progress):
        person = align_person(paths[number], number)
        entry: dict = {"dice": round(person.dice, 4), "failed": person.dice < MIN_ALIGNMENT_DICE}
        if not entry["failed"]:
            codes = encode(person)
            if check:
                entry["equal"] = float(np.mean(read_codes(person_file(number, output)) == codes))
            else:
                write_person(codes, person_file(number, output))
        report[number] = entry
    if not check:
        table = {"codes": {str(k): v for k, v in label_codes().items()},
                 "outside_fov": OUTSIDE_FOV, "names": {str(k): v for k, v in ASEG_NAMES.items()},
                 "alignment_dice": {str(k): v["dice"] for k, v in report.items()},
                 "failed_alignment": [k for k, v in report.items() if v["failed"]]}  # fmt: skip
        manifest = output / "labels.json"
        if manifest.exists():  # keep the other people's results when importing a subset
            old = json.loads(manifest.read_text())
            table["alignment_dice"] = {**old.get("alignment_dice", {}), **table["alignment_dice"]}
            failed = set(old.get("failed_alignment", ())) - set(report)
            table["failed_alignment"] = sorted(failed | set(table["failed_alignment"]))
        text = json.dumps(table, indent=1, sort_keys=True) + "\n"
        write_atomically(manifest, text.encode())
    return report
