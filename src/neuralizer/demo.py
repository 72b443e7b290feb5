"""The README demo: five tasks on an embedded test person, each solved from a few examples.

A test person of the embedded real anatomy (:mod:`neuralizer.data.real`, never used in training)
is the scan, rendered T1-like; the examples are training people, as the presets give them,
registered to it once (affine, SimpleITK) and then used for every task. Each task runs through
:func:`neuralizer.predict_volume` exactly as a user's would, and the demo writes, per task, the
input, the prediction and the truth as NIfTI on the scan's grid, plus a figure (``demo.png``) and
a metrics table (``metrics.csv``) comparing the model with a simple baseline: the voxel-wise mean
of the (registered) example outputs for segmentation, the unchanged input for image tasks.

It runs the shipped model. In a checkout without the weights file the network runs with untrained
(random, seeded) weights and the demo says so plainly: its numbers then show the pipeline only.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from neuralizer.data.space import coronal_view
from neuralizer.files import write_atomically
from neuralizer.infer.presets import PRESETS
from neuralizer.model.checkpoint import DEFAULT_WEIGHTS, load, untrained
from neuralizer.model.network import Neuralizer
from neuralizer.tasks.losses import dice_score, psnr

Volumes = dict[str, np.ndarray]


def _t1_brain(volumes: Volumes, seed: int) -> np.ndarray:
    return np.asarray(volumes["t1_brain"], np.float32)


def _t2_like(volumes: Volumes, seed: int) -> np.ndarray:
    """A clean T2-like render of a person (skull-stripped, 2 mm grid)."""
    from neuralizer.data.render import render_volume, sample_profile

    profile = sample_profile("t2", np.random.default_rng([11, seed]))
    return render_volume(volumes["render_classes"], volumes["brain_mask"], profile, 2.0)


@dataclass(frozen=True)
class DemoTask:
    name: str
    make_in: Callable[[Volumes, int], np.ndarray]
    make_out: Callable[[Volumes, int], np.ndarray]
    segmentation: bool


def _preset(name: str, title: str) -> DemoTask:
    _, make_in, make_out = PRESETS[name]
    return DemoTask(title, make_in, make_out, name not in ("denoise",))


TASKS: tuple[DemoTask, ...] = (
    _preset("thalamus", "thalamus"),
    _preset("white-matter", "white matter"),
    _preset("skullstrip", "skull stripping"),
    DemoTask("T1 to T2", _t1_brain, _t2_like, False),
    _preset("denoise", "denoising"),
)


def _model(seed: int, path: Path | None) -> tuple[Neuralizer, str]:
    if path is not None:
        return load(path), f"model {path.name}"
    if DEFAULT_WEIGHTS.is_file():
        return load(), "shipped model"
    return untrained(seed=seed), "UNTRAINED weights (the shipped weights file is missing)"


def _score(prediction: np.ndarray, truth: np.ndarray, segmentation: bool, box) -> float:
    """Dice (threshold 0.5) over the volume, or PSNR (max 1) inside the head's bounding box."""
    if segmentation:
        pair = (torch.from_numpy(np.asarray(a, np.float32))[None] for a in (prediction, truth))
        return float(dice_score(*pair)[0])
    pair = (torch.from_numpy(np.asarray(a[box], np.float32))[None] for a in (prediction, truth))
    return float(psnr(*pair)[0])


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    index = np.argwhere(mask)
    return tuple(slice(lo, hi + 1) for lo, hi in zip(index.min(0), index.max(0), strict=True))


def _register(source, target: Volumes, subjects: list[Volumes], seed: int) -> list:
    """One affine transform per example subject, registering its T1 to the target's."""
    from neuralizer.infer.align import register_all
    from neuralizer.infer.io import Loaded

    affine = source.grid.affine
    moving = []
    for i, volumes in enumerate(subjects):
        t1 = _t1_brain(volumes, 0)
        moving.append(Loaded(f"example {i}", t1[None], nib.Nifti1Image(t1, affine)))
    print(f"registering {len(moving)} examples to the scan ...", flush=True)
    fixed = _t1_brain(target, 0)
    return register_all(fixed, affine, moving, seed=seed)


def run_demo(
    output: Path, *, seed: int = 0, n_context: int = 4, model: Path | None = None
) -> list[dict]:
    """Run every demo task; write NIfTI files, ``demo.png`` and ``metrics.csv`` into ``output``."""
    from neuralizer.data.register import resample_with_transform
    from neuralizer.infer.io import nifti_like, write_output
    from neuralizer.infer.presets import (
        MAX_EXAMPLES,
        example_indices,
        example_volumes,
        people_source,
    )
    from neuralizer.infer.volume import predict_volume

    if not 1 <= n_context <= MAX_EXAMPLES:
        raise ValueError(f"the demo uses 1 to {MAX_EXAMPLES} examples, not {n_context}")
    started = time.monotonic()
    net, state = _model(seed, model)
    # Examples: the skull-stripping preset's training people, for every task; the scan: test
    # person 5, never trained on.
    source = people_source("train", 2 * MAX_EXAMPLES)
    scan_source = people_source("test", 1)
    target, t_seed = example_volumes(scan_source, 0)
    indices = example_indices("skullstrip", source, n_context)
    subjects = [example_volumes(source, i) for i in indices]
    transforms = _register(source, target, [v for v, _ in subjects], seed)
    grid, affine = source.grid, source.grid.affine
    head = np.asarray(target["head"]) > 0
    box = _bounding_box(head)
    rows, panels = [], []
    output.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        order = 0 if task.segmentation else 1
        c_in, c_out = [], []
        for (volumes, s), transform in zip(subjects, transforms, strict=True):
            for items, make, o in ((c_in, task.make_in, 1), (c_out, task.make_out, order)):
                moved = resample_with_transform(make(volumes, s), affine, transform, grid, order=o)
                items.append(nib.Nifti1Image(moved.astype(np.float32), affine))
        scan = nib.Nifti1Image(task.make_in(target, t_seed), affine)
        truth = task.make_out(target, t_seed)
        result = predict_volume(scan, c_in, c_out, model=net, align="none", seed=seed,
                                task="segmentation" if task.segmentation else "image",
                                progress=True)  # fmt: skip
        prediction = np.asarray(result.prediction.dataobj, np.float32)
        if task.segmentation:
            baseline = np.mean([np.asarray(c.dataobj) for c in c_out], axis=0)
            baseline_name = "mean of the examples' outputs"
        else:
            baseline, baseline_name = np.asarray(scan.dataobj), "input unchanged"
        rows.append({
            "task": task.name,
            "metric": "Dice" if task.segmentation else "PSNR (dB)",
            "neuralizer": round(_score(prediction, truth, task.segmentation, box), 3),
            "baseline": round(_score(baseline, truth, task.segmentation, box), 3),
            "baseline method": baseline_name,
        })  # fmt: skip
        folder = output / task.name.replace(" ", "_")
        folder.mkdir(exist_ok=True)
        write_output(folder / "input.nii.gz", scan)
        write_output(folder / "prediction.nii.gz", result.prediction)
        truth_dtype = np.uint8 if task.segmentation else np.float32
        write_output(folder / "truth.nii.gz", nifti_like(truth.astype(truth_dtype), scan))
        panels.append((task, np.asarray(scan.dataobj), np.asarray(c_in[0].dataobj),
                       np.asarray(c_out[0].dataobj), prediction, truth))  # fmt: skip
    _figure(output / "demo.png", panels, f"Neuralizer demo, {n_context} examples, {state}")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(output / "metrics.csv", text.getvalue().encode())

    print(f"Neuralizer demo ({state}): test person {scan_source.person(0)}, "
          f"{n_context} examples from training people")  # fmt: skip
    print(f"{'task':<16} {'metric':<10} {'neuralizer':>10} {'baseline':>9}  baseline method")
    for r in rows:
        print(f"{r['task']:<16} {r['metric']:<10} {r['neuralizer']:>10} {r['baseline']:>9}  "
              f"{r['baseline method']}")  # fmt: skip
    print(f"wrote NIfTI files per task, demo.png and metrics.csv to {output} "
          f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    return rows


def _figure(path: Path, panels: list, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = ("scan", "example input", "example output", "prediction", "truth")
    figure, axes = plt.subplots(len(panels), 5, figsize=(11, 2.5 * len(panels)))
    for row, (task, *volumes) in zip(axes, panels, strict=True):
        truth = volumes[-1]
        # The coronal slice with the most of the structure, or the middle of the head.
        weight = truth.sum(axis=(0, 2)) if task.segmentation else (volumes[0] > 0).sum(axis=(0, 2))
        y = int(np.argmax(weight)) if task.segmentation else int(np.median(np.flatnonzero(weight)))
        for ax, volume, name in zip(row, volumes, titles, strict=True):
            ax.imshow(np.clip(coronal_view(volume, y), 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{task.name}: {name}" if name == "scan" else name, fontsize=9)
            ax.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    write_atomically(path, buffer.getvalue())
