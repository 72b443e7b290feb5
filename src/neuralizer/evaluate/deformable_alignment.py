"""Does ``--align deformable`` pay? Issue 32's comparison on real anatomy.

    .venv/bin/python -m neuralizer.evaluate.deformable_alignment   # from the checkout's root:
                                            # docs/results/deformable-alignment.csv

Each test person (never trained on) is rendered T1-like without skull
(:func:`neuralizer.data.motion.person_scan`) and recorded at 2 mm in LPI order, a scan on its own
grid; L = 8 training people rendered and recorded the same way, with their aseg label maps, are
the examples. The ten largest aseg structures (mean volume over the examples) are segmented
together, as one label map, three ways:

- ``neuralizer-affine``: ``predict_volume(..., align="affine")``, the default;
- ``neuralizer-deformable``: ``predict_volume(..., align="deformable")``;
- ``atlas-deformable``: the atlas baseline with the very registrations of the deformable mode
  (every scan affinely to MNI152, then each example B-spline-registered to the target on the
  working grid, :func:`neuralizer.infer.align.deform_pairs`): the examples' warped labels are
  fused by majority vote and carried back to the target's grid as the model's maps are.

Dice per structure against the person's own labels. ``seconds`` is one target's whole time
for that method, its registrations included: the MNI registration cache is emptied before
each. The B-spline registrations are the same computation for both deformable methods (same
images, same seed, single-threaded): the model's run records them and the atlas reuses them,
with their seconds added to its own (it registers them itself when there is no record, as
after a resumed run). A rerun keeps the rows already written and does the rest.
Rows follow the evaluation CSV layout, so ``python -m neuralizer.evaluate.report`` puts them on
docs/results.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import nibabel as nib
import numpy as np

NAME = "deformable-alignment"
N_CONTEXT = 8
N_STRUCTURES = 10
METHODS = ("neuralizer-affine", "neuralizer-deformable", "atlas-deformable")


def recorded_person(number: int) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """(T1-like brain image, aseg label map) of a person, both on one 2 mm LPI grid."""
    from neuralizer.data.motion import moved_scan, person_scan
    from neuralizer.data.people import load_person

    image, _, affine = person_scan(number, "t1", head=False)
    labels, _ = load_person(number)
    scan, scan_affine = moved_scan(image, affine, np.eye(4))
    label_scan, _ = moved_scan(labels.astype(np.float32), affine, np.eye(4), order=0)
    return (nib.Nifti1Image(scan.astype(np.float32), scan_affine),
            nib.Nifti1Image(np.rint(label_scan).astype(np.int16), scan_affine))  # fmt: skip


def largest_structures(label_maps: list[np.ndarray], n: int = N_STRUCTURES) -> tuple[int, ...]:
    """The ``n`` aseg labels of largest mean volume over ``label_maps`` (CSF around the brain
    and labels outside the aseg protocol left out), largest first."""
    from neuralizer.data.people import ASEG_NAMES

    candidates = [k for k in ASEG_NAMES if k != 24]
    volume = {k: np.mean([np.count_nonzero(m == k) for m in label_maps]) for k in candidates}
    return tuple(sorted(candidates, key=lambda k: -volume[k])[:n])


class _Recorder:
    """Stands in for :func:`~neuralizer.infer.align.deform_pairs`: runs it and keeps its target
    image, its result and its seconds; :meth:`replay` gives that result back for the same target
    image, so that the atlas baseline reuses the deformable mode's registrations."""

    def __init__(self) -> None:
        self.fixed: np.ndarray | None = None
        self.pairs: list | None = None
        self.seconds = 0.0
        self.replayed = 0.0

    def __call__(self, fixed, pairs, voxel_size_mm, **kwargs):
        from neuralizer.infer.align import deform_pairs

        start = time.perf_counter()
        self.fixed, self.pairs = fixed.copy(), deform_pairs(fixed, pairs, voxel_size_mm, **kwargs)
        self.seconds = time.perf_counter() - start
        return self.pairs

    def replay(self, fixed, pairs, voxel_size_mm, **kwargs):
        """The recorded pairs when ``fixed`` is the recorded target image (their seconds in
        ``replayed``), else :meth:`__call__`'s."""
        if self.fixed is not None and np.array_equal(self.fixed, fixed):
            self.replayed = self.seconds
            return self.pairs
        self.replayed = 0.0
        return self(fixed, pairs, voxel_size_mm, **kwargs)


def atlas_deformable(
    target: nib.Nifti1Image, c_in, c_out, structures, model, seed: int = 0, record=None
) -> tuple[np.ndarray, float]:
    """Majority vote of the examples' labels after the deformable mode's registrations, on the
    target's grid (label values, 0 where no structure has half the votes); and the seconds of
    the B-spline registrations replayed from ``record`` (a :class:`_Recorder`), 0 otherwise."""
    from neuralizer.infer.checks import as_loaded
    from neuralizer.infer.engine import model_geometry
    from neuralizer.infer.volume import _to_target, aligned_views

    target_l = as_loaded(target, "target")
    examples_in = [as_loaded(c, "context_in") for c in c_in]
    examples_out = [as_loaded(c, "context_out") for c in c_out]
    record = record or _Recorder()
    aligned = aligned_views(target_l, examples_in, examples_out, "deformable", seed,
                            model_geometry(model), ("coronal",), discrete=True,
                            deform=record.replay)  # fmt: skip
    votes = np.stack([np.mean([np.rint(out[0]) == k for _, out in aligned.pairs[0]], axis=0)
                      for k in structures]).astype(np.float32)  # fmt: skip
    maps = _to_target(votes, aligned.grids[0], target_l)
    values = np.asarray(structures)
    return np.where(maps.max(axis=0) >= 0.5, values[maps.argmax(axis=0)], 0), record.replayed


def _row(person: int, method: str, label: int, structures, value: float, seconds: float) -> dict:
    from neuralizer.data.people import ASEG_NAMES

    return {  # one task instance per structure: the results' key has no label
        "experiment": NAME, "method": method, "task": "segmentation",
        "instance": structures.index(label),
        "protocol": "aseg", "label": ASEG_NAMES[label], "modality": "t1", "n_context": N_CONTEXT,
        "target": person, "metric": "dice", "value": f"{value:.6g}", "seconds": f"{seconds:.4g}",
    }  # fmt: skip


def main(root: Path = Path(), people: tuple[int, ...] | None = None) -> None:
    """Segment, and write ``root``/docs/results/deformable-alignment.csv after each target."""
    import neuralizer
    from neuralizer.data.people import PEOPLE_SPLITS
    from neuralizer.evaluate.metrics import dice
    from neuralizer.evaluate.results import read_rows, write_rows
    from neuralizer.infer import align, volume

    model = neuralizer.load()
    examples = [recorded_person(n) for n in PEOPLE_SPLITS["train"][:N_CONTEXT]]
    c_in, c_out = [e[0] for e in examples], [e[1] for e in examples]
    structures = largest_structures([np.asarray(e[1].dataobj) for e in examples])
    print("structures:", structures, flush=True)
    path = root / "docs" / "results" / f"{NAME}.csv"
    rows = read_rows(path)
    done = {(int(r["target"]), r["method"]) for r in rows}
    for person in PEOPLE_SPLITS["test"] if people is None else people:
        target, truth = recorded_person(person)
        truth = np.asarray(truth.dataobj)
        record = _Recorder()
        for method in METHODS:
            if (person, method) in done:
                continue
            align.clear_cache()
            start, extra = time.perf_counter(), 0.0
            if method == "atlas-deformable":
                found, extra = atlas_deformable(target, c_in, c_out, structures, model,
                                                record=record)  # fmt: skip
            else:
                volume.deform_pairs = record  # the deformable mode's registrations, recorded
                try:
                    result = neuralizer.predict_volume(
                        target, c_in, c_out, model=model, labels=list(structures),
                        align=method.removeprefix("neuralizer-"),
                    )  # fmt: skip
                finally:
                    volume.deform_pairs = align.deform_pairs
                found = np.asarray(result.prediction.dataobj)
            seconds = time.perf_counter() - start + extra
            scores = [dice(found == k, truth == k) for k in structures]
            for label, value in zip(structures, scores, strict=True):
                rows.append(_row(person, method, label, structures, value, seconds))
            print(person, method, f"mean Dice {np.mean(scores):.3f}, {seconds:.0f} s", flush=True)
            write_rows(path, rows)


if __name__ == "__main__":
    main()
