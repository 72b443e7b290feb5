"""Slice direction of 3D prediction: coronal, axial, sagittal slices, and the three averaged.

    .venv/bin/python -m neuralizer.evaluate.slice_directions   # from the checkout's root:
                                                # docs/results/slice-directions.csv + figure

The shipped model segments five deep structures (Desikan-Killiany labels, both sides) of four
embedded test subjects, each from the 4 first other test subjects as examples, registered once
to the target (affine, as ``--align affine`` does) and resampled onto its grid. Each structure is
predicted with coronal, axial and sagittal slices (``predict_volume(..., axis=A)``); "all" is the
mean of the three probability maps thresholded at 0.5, which is what ``axis="all"`` computes
(tests/infer/test_volume.py checks that identity). Rows follow the evaluation CSV layout, so
``python -m neuralizer.evaluate.report`` puts them on docs/results.md.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import nibabel as nib
import numpy as np

import neuralizer
from neuralizer.data.register import resample_with_transform
from neuralizer.data.space import Grid, coronal_view
from neuralizer.data.subjects import SynthConfig, SynthSliceSource
from neuralizer.evaluate.metrics import dice
from neuralizer.evaluate.results import write_rows
from neuralizer.files import write_atomically
from neuralizer.infer.align import register_all
from neuralizer.infer.checks import as_loaded
from neuralizer.infer.plan import ALL_VIEWS

NAME = "slice-directions"
TARGETS = (0, 5, 6, 7)
N_CONTEXT = 4
STRUCTURES = {
    "thalamus": (10, 49),
    "hippocampus": (17, 53),
    "caudate": (11, 50),
    "putamen": (12, 51),
    "lateral-ventricle": (4, 43),
}


def _row(target: int, method: str, label: str, value: float, seconds: float) -> dict:
    return {
        "experiment": NAME, "method": method, "task": "segmentation",
        "instance": list(STRUCTURES).index(label),  # one task instance per structure
        "protocol": "desikan_killiany", "label": label, "modality": "t1", "n_context": N_CONTEXT,
        "target": target, "metric": "dice", "value": f"{value:.6g}", "seconds": f"{seconds:.4g}",
    }  # fmt: skip


def _on_target(data: np.ndarray, affine, transform, target: nib.Nifti1Image, order: int):
    """``data`` (with its ``affine``) through ``transform`` onto the target's grid, as NIfTI."""
    grid = Grid(shape=target.shape, affine=target.affine)
    moved = resample_with_transform(data, affine, transform, grid, order=order)
    return nib.Nifti1Image(moved.astype(np.uint8) if order == 0 else moved, target.affine)


def _t1(volumes: dict, affine) -> nib.Nifti1Image:
    return nib.Nifti1Image(np.asarray(volumes["images__t1_brain"], np.float32), affine)


def main(root: Path = Path()) -> None:
    """Predict, write ``root``/docs/results/slice-directions.csv and the example figure."""
    subjects = SynthSliceSource("test", 10, SynthConfig(voxel_size_mm=2.0))
    affine = subjects.grid.affine
    model = neuralizer.load()
    rows, example = [], None
    for t in TARGETS:
        volumes, _ = subjects.volumes(t)
        target = _t1(volumes, affine)
        truth = np.asarray(volumes["labels__desikan_killiany"])
        others = [subjects.volumes(i)[0] for i in range(len(subjects)) if i != t][:N_CONTEXT]
        c_in = [as_loaded(_t1(v, affine), "context_in") for v in others]
        transforms = register_all(as_loaded(target, "target").data[0], affine, c_in)
        aligned = [_on_target(c.data[0], affine, tf, target, 1)
                   for c, tf in zip(c_in, transforms, strict=True)]  # fmt: skip
        for label, values in STRUCTURES.items():
            masks = [_on_target(np.isin(v["labels__desikan_killiany"], values).astype(np.float32),
                                affine, tf, target, 0)
                     for v, tf in zip(others, transforms, strict=True)]  # fmt: skip
            gt = np.isin(truth, values)
            maps, total = [], 0.0
            for axis in ALL_VIEWS:
                start = time.perf_counter()
                result = neuralizer.predict_volume(target, aligned, masks, model=model,
                                                   align="none", axis=axis)  # fmt: skip
                seconds = time.perf_counter() - start
                total += seconds
                maps.append(np.asarray(result.probabilities.dataobj))
                value = dice(maps[-1] >= 0.5, gt)
                rows.append(_row(t, f"neuralizer-{axis}", label, value, seconds))
            fused = np.mean(maps, axis=0)
            rows.append(_row(t, "neuralizer-all", label, dice(fused >= 0.5, gt), total))
            print(t, label, *(r["value"] for r in rows[-4:]), flush=True)
            if example is None:
                example = (np.asarray(target.dataobj), gt, [*maps, fused])
    write_rows(root / "docs" / "results" / f"{NAME}.csv", rows)
    _figure(*example, root / "docs" / "img" / f"{NAME}-examples.png")


def _figure(image: np.ndarray, truth: np.ndarray, maps: list[np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = int(np.argmax(truth.sum(axis=(0, 2))))  # the coronal slice with most of the structure

    titles = ["truth", *(f"{a} slices" for a in ALL_VIEWS), "all (mean)"]
    panels = [truth, *(m >= 0.5 for m in maps)]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.8))
    for ax, title, mask in zip(axes, titles, panels, strict=True):
        ax.imshow(coronal_view(image, y), cmap="gray")
        view = coronal_view(mask, y)
        ax.imshow(np.ma.masked_where(view < 0.5, view), cmap="autumn", alpha=0.6)
        ax.contour(coronal_view(truth, y), levels=[0.5], colors="cyan", linewidths=0.6)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("thalamus, test subject 0, 4 examples (cyan: truth outline)", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    write_atomically(path, buffer.getvalue())


if __name__ == "__main__":
    main()
