"""Anatomical variability of the training subjects: mean pairwise Dice of two structures.

Real people: the embedded derivative (each person affinely aligned to MNI by ``neuralizer data
import-label-maps``; the 19 that pass its alignment check). Virtual subjects of the MNI-based
engine: ``SynthSliceSource("train")`` subjects, each affinely registered back to the MNI T1 brain
with the same registration, so that only what an affine cannot undo is left, as for the people.
Both on the 2 mm common grid. Lower Dice between subjects means more anatomical variability; the
coefficient of variation of a structure's volume says how much its size varies.

    python scripts/anatomical_variability.py            # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from neuralizer.data.people import PEOPLE_SPLITS, dice, load_person
from neuralizer.data.register import register_affine, resample_with_transform
from neuralizer.data.sources import load_templates
from neuralizer.data.space import common_grid, resample_to_grid
from neuralizer.data.subjects import SynthConfig, SynthSliceSource

STRUCTURES = {"lateral ventricles": (4, 43), "thalamus": (10, 49)}


def mean_pairwise_dice(label_maps: list[np.ndarray], labels: tuple[int, ...]) -> float:
    masks = [np.isin(m, labels) for m in label_maps]
    return float(np.mean([dice(a, b) for a, b in itertools.combinations(masks, 2)]))


def volume_cv(label_maps: list[np.ndarray], labels: tuple[int, ...]) -> float:
    """Coefficient of variation (%) of the structure's volume after the affine alignment (so
    relative to head size): how much its size varies from subject to subject."""
    volumes = np.array([np.isin(m, labels).sum() for m in label_maps], np.float64)
    return float(100 * volumes.std() / volumes.mean())


def people_maps(grid) -> list[np.ndarray]:
    fine = common_grid(1.0)
    out = []
    for number in sorted(n for split in PEOPLE_SPLITS.values() for n in split):
        labels, _ = load_person(number)
        out.append(resample_to_grid(labels.astype(np.int32), fine.affine, grid, order=0))
    return out


def virtual_maps(grid, n_subjects: int) -> list[np.ndarray]:
    fixed = load_templates(grid)["t1_brain"]
    source = SynthSliceSource("train", n_subjects, SynthConfig(voxel_size_mm=2.0))
    out = []
    for index in range(n_subjects):
        volumes, _ = source.volumes(index)
        moving = np.asarray(volumes["images__t1_brain"], np.float32)
        transform = register_affine(fixed, grid.affine, moving, grid.affine)
        labels = np.asarray(volumes["labels__desikan_killiany"], np.int32)
        out.append(resample_with_transform(labels, grid.affine, transform, grid, order=0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-virtual", type=int, default=19)
    args = parser.parse_args()
    grid = common_grid(2.0)
    kinds = {
        "19 real people": people_maps(grid),
        f"{args.n_virtual} virtual MNI-based subjects": virtual_maps(grid, args.n_virtual),
    }
    columns = [f"{name}: {what}" for what in ("mean pairwise Dice", "volume CV") for name in
               STRUCTURES]  # fmt: skip
    print("| subjects | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for kind, maps in kinds.items():
        values = [f"{mean_pairwise_dice(maps, labels):.3f}" for labels in STRUCTURES.values()]
        values += [f"{volume_cv(maps, labels):.0f} %" for labels in STRUCTURES.values()]
        print(f"| {kind} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main()
