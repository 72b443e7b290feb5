"""Resident memory of the web app's handler over repeated requests (docs/reliability.md).

Runs ``neuralizer.app.ui.handle_run`` in this process, as the server does, N times in a row for
each case, and prints the resident memory (VmRSS) after each request:

- ``nifti-bomb``: a 512³ uint8 ``.nii.gz`` of zeros (~300 KB on disk, 512 MiB once decoded as
  float32) as the target;
- ``png-bomb``: a 12000² PNG (~140 KB, 144 M pixels) as target and context;
- ``late-failure``: the 256³ volume below as the target with a context mask on another grid:
  every file is decoded, then the request fails (the pair cannot be aligned);
- ``large``: a legitimate 256³ float32 volume at 0.5 mm (64 MiB), predicted end to end with a small
  untrained network (c = 8: the arrays, not the model, are measured).

    PYTHONPATH=src python scripts/app_memory.py [--repeats 5] [--cases nifti-bomb png-bomb large]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _volume(path: Path, shape, ball: bool, voxel_mm: float = 1.0) -> str:
    """A NIfTI of zeros (uint8), or of a two-level ball (float32), centred on the origin."""
    data = np.zeros(shape, np.float32 if ball else np.uint8)
    if ball:
        idx = np.indices(shape, dtype=np.float32)
        centre = (np.asarray(shape) - 1) / 2
        radius = (((idx - centre[:, None, None, None]) / (shape[0] * 0.35)) ** 2).sum(0)
        data = np.where(radius < 1, 0.5 + 0.5 * (radius < 0.3), 0).astype(np.float32)
    affine = np.diag([voxel_mm] * 3 + [1.0])
    affine[:3, 3] = -voxel_mm * np.asarray(shape) / 2
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+",
                        default=["nifti-bomb", "png-bomb", "late-failure", "large"])  # fmt: skip
    args = parser.parse_args()

    import gradio as gr
    import torch
    from PIL import Image

    from neuralizer.app.core import AppModel
    from neuralizer.app.ui import handle_run
    from neuralizer.model import ModelConfig, Neuralizer

    torch.manual_seed(0)
    app_model = AppModel(Neuralizer(ModelConfig(channels=8)).eval(), "c=8", False)
    folder = Path(tempfile.mkdtemp(prefix="app-memory-"))
    ctx_in = _volume(folder / "ctx.nii.gz", (64, 64, 64), True, 2.0)
    mask = nib.load(ctx_in)
    nib.save(nib.Nifti1Image((mask.get_fdata() > 0.7).astype(np.uint8), mask.affine),
             str(folder / "ctx_mask.nii.gz"))  # fmt: skip
    ctx_out = str(folder / "ctx_mask.nii.gz")
    Image.new("L", (12000, 12000)).save(folder / "bomb.png")
    large = _volume(folder / "large.nii.gz", (256, 256, 256), True, 0.5)
    other_grid = _volume(folder / "other_mask.nii.gz", (60, 60, 60), False, 2.0)
    files = {
        "nifti-bomb": (_volume(folder / "bomb.nii.gz", (512, 512, 512), False), [ctx_in],
                       [ctx_out]),
        "png-bomb": (str(folder / "bomb.png"), [str(folder / "bomb.png")],
                     [str(folder / "bomb.png")]),
        "late-failure": (large, [ctx_in], [other_grid]),
        "large": (large, [ctx_in], [ctx_out]),
    }  # fmt: skip
    print(f"start: {rss_mib():.0f} MiB resident")
    print("| case | request | outcome | seconds | resident MiB |")
    print("|---|---|---|---|---|")
    for case in args.cases:
        target, c_in, c_out = files[case]
        for repeat in range(1, args.repeats + 1):
            started = time.perf_counter()
            try:
                handle_run(app_model, folder, target, c_in, c_out, 1, "none", 0)
                outcome = "predicted"
            except gr.Error as error:
                outcome = f"refused: {error.message[:70]}…"
            seconds = time.perf_counter() - started
            print(f"| {case} | {repeat} | {outcome} | {seconds:.1f} | {rss_mib():.0f} |")


if __name__ == "__main__":
    main()
