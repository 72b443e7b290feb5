"""``--statistics FILE.tsv``: the volume of every structure of every target, with QC flags.

One row per target and structure: the volume in mL (voxel count × voxel volume, on the result's
own grid), the mean uncertainty (s.d. across ensemble passes) inside the structure when an
ensemble ran, and flags that point a person at results to look at:

- ``empty``: the structure was not found (0 voxels);
- ``volume_outlier``: the volume lies more than :data:`MAD_LIMIT` median absolute deviations
  from the cohort's median for that structure (needs :data:`MIN_COHORT` targets);
- ``high_uncertainty``: the mean uncertainty lies more than :data:`MAD_LIMIT` MADs above the
  cohort's median, or above :data:`UNCERTAINTY_LIMIT` (an s.d. of probabilities is at most 0.5).

A median absolute deviation is floored at a fraction of the median (a cohort of equal volumes
would otherwise flag the smallest difference): 2 % for volumes, 25 % for uncertainties, whose
spread across a cohort is small next to what marks a failure. Torch-free; the table is written
atomically.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

MAD_LIMIT = 3.0
MIN_COHORT = 3
UNCERTAINTY_LIMIT = 0.2
_VOLUME_MAD_FLOOR = 0.02
_UNCERTAINTY_MAD_FLOOR = 0.25
COLUMNS = ("target", "structure", "label", "volume_ml", "voxels", "mean_uncertainty", "flags")


@dataclass(frozen=True)
class StructureVolume:
    """One row of the table: ``structure`` (its name) with value ``label`` in ``target``."""

    target: str
    structure: str
    label: int
    voxels: int
    volume_ml: float
    mean_uncertainty: float | None = None
    flags: tuple[str, ...] = ()

    def cells(self) -> list[str]:
        uncertainty = "n/a" if self.mean_uncertainty is None else f"{self.mean_uncertainty:.6g}"
        return [self.target, self.structure, str(self.label), f"{self.volume_ml:.6g}",
                str(self.voxels), uncertainty, ",".join(self.flags) or "none"]  # fmt: skip


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in mL (1 mL = 1000 mm³) of a voxel-to-world ``affine`` in mm."""
    return abs(float(np.linalg.det(np.asarray(affine, np.float64)[:3, :3]))) / 1000.0


def read_label_names(path: str | Path) -> dict[int, str]:
    """Label value -> name from a TSV with ``index`` and ``name`` columns (a BIDS ``dseg.tsv``);
    ValueError naming the file for anything else."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{path}: cannot read the label names ({error.strerror})") from None
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    if not reader.fieldnames or not {"index", "name"} <= set(reader.fieldnames):
        raise ValueError(f"{path}: a label-name table needs 'index' and 'name' columns (TSV)")
    names = {}
    for number, row in enumerate(reader, start=2):
        try:
            names[int(row["index"])] = (row["name"] or "").strip() or f"label-{row['index']}"
        except (TypeError, ValueError):
            raise ValueError(
                f"{path} line {number}: index {row['index']!r} is not a whole number"
            ) from None
    return names


def structure_volumes(
    target: str,
    prediction: np.ndarray,
    affine: np.ndarray,
    labels: Sequence[int],
    names: Mapping[int, str],
    uncertainty: np.ndarray | None = None,
) -> list[StructureVolume]:
    """Rows of one target: the voxels of ``prediction`` (X×Y×Z mask or label map) equal to each
    of ``labels``, their volume on the grid of ``affine``, and the mean of ``uncertainty``
    (same grid) over them (None without an ensemble, or for an empty structure)."""
    unit = voxel_volume_ml(affine)
    rows = []
    for label in labels:
        inside = np.asarray(prediction) == label
        count = int(inside.sum())
        mean = None
        if uncertainty is not None and count:
            mean = float(np.asarray(uncertainty, np.float64)[inside].mean())
        name = names.get(label, f"label-{label}")
        rows.append(StructureVolume(target, name, int(label), count, count * unit, mean))
    return rows


def _deviation(values: np.ndarray, floor: float) -> tuple[float, float]:
    """(median, median absolute deviation floored at ``floor`` × |median|) of ``values``."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return median, max(mad, floor * abs(median), 1e-12)


def flag_cohort(rows: Iterable[StructureVolume]) -> list[StructureVolume]:
    """``rows`` with their QC flags (module docstring), judged per structure across targets."""
    rows = list(rows)
    flags: list[list[str]] = [["empty"] if r.voxels == 0 else [] for r in rows]
    for structure in {r.structure for r in rows}:
        index = [i for i, r in enumerate(rows) if r.structure == structure]
        if len(index) >= MIN_COHORT:
            volumes = np.array([rows[i].volume_ml for i in index])
            median, mad = _deviation(volumes, _VOLUME_MAD_FLOOR)
            for i, value in zip(index, volumes, strict=True):
                if abs(value - median) > MAD_LIMIT * mad:
                    flags[i].append("volume_outlier")
        known = [i for i in index if rows[i].mean_uncertainty is not None]
        values = np.array([rows[i].mean_uncertainty for i in known], np.float64)
        median, mad = (
            _deviation(values, _UNCERTAINTY_MAD_FLOOR)
            if len(known) >= MIN_COHORT
            else (math.inf, 0.0)
        )
        for i, value in zip(known, values, strict=True):
            if value > UNCERTAINTY_LIMIT or value - median > MAD_LIMIT * mad:
                flags[i].append("high_uncertainty")
    return [replace(r, flags=tuple(f)) for r, f in zip(rows, flags, strict=True)]


def statistics_table(rows: Iterable[StructureVolume]) -> str:
    """The TSV text of ``rows`` (header first; missing values are ``n/a``, as BIDS writes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.cells())
    return buffer.getvalue()


def write_statistics(path: str | Path, rows: Iterable[StructureVolume]) -> None:
    """Write the table of ``rows`` to ``path`` atomically."""
    from neuralizer.files import write_atomically

    write_atomically(path, statistics_table(rows).encode("utf-8"))


def label_table(names: Mapping[int, str]) -> bytes:
    """A BIDS ``dseg.tsv`` (``index``, ``name``) of ``names``."""
    lines = ["index\tname", *(f"{value}\t{names[value]}" for value in sorted(names))]
    return ("\n".join(lines) + "\n").encode("utf-8")
