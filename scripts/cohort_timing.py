"""Time a whole cohort on this machine (issue 30): 20 embedded test subjects as targets, L = 4
others as the examples (a thalamus + hippocampus mask), coronal, folder mode with the volume table
and the QC report, the default alignment (each scan registered once to MNI152).

    python scripts/cohort_timing.py --threads 2 --output benchmarks/results/cohort_timing.json

The scans are synthetic test subjects of the 2 mm MNI grid (``SynthSliceSource("test")``), written
as NIfTI files into a temporary folder; the command runs as a user would run it, in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

STRUCTURES = (10, 49, 17, 53)  # thalamus and hippocampus, both sides


def write_cohort(folder: Path, n_targets: int, n_examples: int) -> tuple[list[Path], list[Path]]:
    from neuralizer.data.subjects import SynthConfig, SynthSliceSource

    source = SynthSliceSource("test", n_targets + n_examples, SynthConfig(voxel_size_mm=2.0))
    (folder / "targets").mkdir(parents=True)
    (folder / "examples").mkdir()
    examples_in, examples_out = [], []
    for i in range(n_targets + n_examples):
        volumes = source.volumes(i)[0]
        image = nib.Nifti1Image(np.asarray(volumes["images__t1_brain"], np.float32),
                                source.grid.affine)  # fmt: skip
        if i < n_targets:
            nib.save(image, folder / "targets" / f"sub-{i:02d}.nii.gz")
            continue
        mask = np.isin(np.asarray(volumes["labels__desikan_killiany"]), STRUCTURES)
        examples_in.append(folder / "examples" / f"ex-{i:02d}_T1w.nii.gz")
        examples_out.append(folder / "examples" / f"ex-{i:02d}_mask.nii.gz")
        nib.save(image, examples_in[-1])
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), source.grid.affine), examples_out[-1])
    return examples_in, examples_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        examples_in, examples_out = write_cohort(root, args.targets, args.examples)
        out = root / "out"
        command = [
            sys.executable, "-m", "neuralizer", "predict", "-i", str(root / "targets"),
            "-o", str(out), "--context-in", *map(str, examples_in),
            "--context-out", *map(str, examples_out), "--axis", "coronal",
            "--statistics", str(root / "volumes.tsv"), "--report", str(root / "report.html"),
            "--threads", str(args.threads),
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - started
        rows = (root / "volumes.tsv").read_text().strip().splitlines()[1:]
        results = sorted(p.name for p in out.iterdir() if p.name.endswith(".nii.gz"))
    report = {
        "machine": platform.platform(),
        "threads": args.threads,
        "targets": args.targets,
        "examples": args.examples,
        "seconds": round(seconds, 1),
        "results_written": len(results),
        "table_rows": len(rows),
    }
    print(json.dumps(report))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
