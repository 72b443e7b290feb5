"""Accuracy and consistency of the registration to MNI152 on real anatomy (issue 32).

For each test person, four clean renders (T1-like and T2-like, with and without skull), each
recorded at 2 mm in LPI order (:func:`neuralizer.data.motion.moved_scan`):

- accuracy: the render registered to MNI (:func:`neuralizer.data.mni.register_to_mni`), its brain
  mask carried into MNI space, Dice against the MNI152 brain mask (goal >= 0.90);
- consistency: ``--motions`` random rigid motions (up to ±25° about each axis, ±20 mm); the
  transform found for each moved copy against the motion composed with the unmoved one's, at
  the 8 corners of a 160 mm box centred on the brain (goal: within 2 mm).

    python scripts/alignment_check.py --output docs/checks/alignment-check.csv

Prints one line per registration and the worst cases (they go in docs/reliability.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path

import numpy as np

from neuralizer.data.mni import register_to_mni
from neuralizer.data.motion import (
    aligned_brain_dice,
    corner_error,
    moved_scan,
    person_scan,
    random_motion,
)
from neuralizer.data.people import PEOPLE_SPLITS
from neuralizer.files import write_atomically

RENDERS = (("t1", True), ("t1", False), ("t2", True), ("t2", False))


def render_name(profile: str, head: bool) -> str:
    """ "t1-head", "t1-brain", ...: a render's name on the command line."""
    return f"{profile}-{'head' if head else 'brain'}"


RENDER_NAMES = [render_name(*r) for r in RENDERS]


def check_render(number: int, profile: str, head: bool, n_motions: int) -> list[dict]:
    """Rows of one render: the unmoved registration, then one per motion."""
    volume, brain, affine = person_scan(number, profile, head=head)
    scan, scan_affine = moved_scan(volume, affine, np.eye(4))
    mask, _ = moved_scan(brain.astype(np.uint8), affine, np.eye(4), order=0)
    start = time.perf_counter()
    found = register_to_mni(scan, scan_affine)
    # The person's own alignment (the data lie in MNI space): the Dice a perfect affine
    # registration would get near, a ceiling for this render's "dice".
    own = aligned_brain_dice(mask, scan_affine, np.eye(4))
    base = {"person": number, "profile": profile, "skull": head, "own_alignment_dice": own}
    rows = [{**base, "motion": -1, "dice": aligned_brain_dice(mask, scan_affine, found.matrix),
             "corner_error_mm": 0.0, "rotation_deg": found.rotation_deg,
             "seconds": time.perf_counter() - start}]  # fmt: skip
    rng = np.random.default_rng([32, number, int(head), RENDERS.index((profile, head))])
    for k in range(n_motions):
        motion = random_motion(rng)
        moved, moved_affine = moved_scan(volume, affine, motion)
        moved_mask, _ = moved_scan(brain.astype(np.uint8), affine, motion, order=0)
        start = time.perf_counter()
        again = register_to_mni(moved, moved_affine)
        seconds = time.perf_counter() - start
        error = corner_error(motion @ found.matrix, again.matrix)
        rows.append({**base, "motion": k, "seconds": seconds, "rotation_deg": again.rotation_deg,
                     "dice": aligned_brain_dice(moved_mask, moved_affine, again.matrix),
                     "corner_error_mm": error})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, help="CSV of every registration")
    parser.add_argument("--motions", type=int, default=10)
    parser.add_argument("--people", type=int, nargs="*", default=list(PEOPLE_SPLITS["test"]))
    parser.add_argument("--renders", nargs="*", choices=RENDER_NAMES, default=RENDER_NAMES,
                        help="which renders (default: all four)")  # fmt: skip
    args = parser.parse_args()
    rows: list[dict] = []
    for number in args.people:
        for profile, head in RENDERS:
            if render_name(profile, head) not in args.renders:
                continue
            for row in check_render(number, profile, head, args.motions):
                rows.append(row)
                print(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in row.items()), flush=True)  # fmt: skip
            if args.output:  # after every render, so a long run leaves its rows behind
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
                write_atomically(args.output, buffer.getvalue().encode())
    worst_dice = min(rows, key=lambda r: r["dice"])
    worst_corner = max(rows, key=lambda r: r["corner_error_mm"])
    print(f"{len(rows)} registrations; lowest brain-mask Dice {worst_dice['dice']:.3f} "
          f"(person {worst_dice['person']}, {worst_dice['profile']}, skull {worst_dice['skull']}); "
          f"largest corner error {worst_corner['corner_error_mm']:.2f} mm (person "
          f"{worst_corner['person']}, {worst_corner['profile']}, skull {worst_corner['skull']}); "
          f"median {np.median([r['seconds'] for r in rows]):.1f} s per registration")  # fmt: skip


if __name__ == "__main__":
    main()
