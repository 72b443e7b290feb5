"""The README demo: several tasks on embedded MNI152 slices, each solved from a few context pairs.

Until a trained model ships with the package, the network runs with untrained (random, seeded)
weights and the demo says so plainly: its numbers then show the pipeline, not the method.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from neuralizer.model.checkpoint import DEFAULT_WEIGHTS, load, write_atomically
from neuralizer.model.network import ModelConfig, Neuralizer

SIZE = 96  # coronal slices of the 2 mm template, padded/cropped to SIZE×SIZE
CONTEXT_OFFSETS = (-9, -6, -3, 3, 6, 9)  # context: coronal slices this many voxels from the target


def _coronal(volume: np.ndarray, y: int) -> np.ndarray:
    """Coronal slice y of an x×y×z RAS volume as a SIZE×SIZE image (superior up)."""
    image = np.rot90(volume[:, y, :]).astype(np.float32)
    out = np.zeros((SIZE, SIZE), np.float32)
    h, w = min(SIZE, image.shape[0]), min(SIZE, image.shape[1])
    out[:h, :w] = image[:h, :w]
    return out


def _embedded_tasks(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """task name -> (input volume, output volume, segmentation-like), from nilearn's MNI152."""
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=2).get_fdata()
    t1 = np.clip(t1 / np.percentile(t1, 99.5), 0, 1)
    wm = datasets.load_mni152_wm_template(resolution=2).get_fdata() > 0.5
    gm = datasets.load_mni152_gm_template(resolution=2).get_fdata() > 0.5
    noisy = np.clip(t1 + rng.normal(0, 0.1, t1.shape), 0, 1)
    return {
        "white matter": (t1, wm.astype(np.float32), True),
        "grey matter": (t1, gm.astype(np.float32), True),
        "brain mask": (t1, (t1 > 0.05).astype(np.float32), True),
        "denoising": (noisy, t1, False),
    }


def _score(prediction: np.ndarray, truth: np.ndarray, segmentation: bool) -> float:
    """Dice at threshold 0.5 for segmentation, PSNR (max 1) otherwise."""
    prediction = np.clip(prediction, 0, 1)
    if segmentation:
        p, t = prediction > 0.5, truth > 0.5
        total = p.sum() + t.sum()
        return 1.0 if total == 0 else float(2 * (p & t).sum() / total)
    mse = float(np.mean((prediction - truth) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1 / mse))


def _model(seed: int) -> tuple[Neuralizer, bool]:
    if DEFAULT_WEIGHTS.is_file():
        return load(), True
    torch.manual_seed(seed)
    return Neuralizer(ModelConfig(channels=32)).eval(), False


def run_demo(output: Path, *, seed: int = 0) -> list[dict]:
    """Run every embedded task, write ``demo.png`` and ``metrics.csv`` into ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    model, trained = _model(seed)
    tasks = _embedded_tasks(rng)
    target_y = 60
    rows, panels = [], []
    for name, (volume_in, volume_out, segmentation) in tasks.items():
        target_in, target_out = _coronal(volume_in, target_y), _coronal(volume_out, target_y)
        context_in = np.stack([_coronal(volume_in, target_y + d) for d in CONTEXT_OFFSETS])
        context_out = np.stack([_coronal(volume_out, target_y + d) for d in CONTEXT_OFFSETS])
        with torch.inference_mode():
            x = torch.zeros(1, 3, SIZE, SIZE)
            x[0, 0] = torch.from_numpy(target_in)
            c_in = torch.zeros(1, len(CONTEXT_OFFSETS), 3, SIZE, SIZE)
            c_in[0, :, 0] = torch.from_numpy(context_in)
            c_out = torch.from_numpy(context_out)[None, :, None]
            prediction = model(x, c_in, c_out)[0, 0].numpy()
        mean_baseline = context_out.mean(0)
        rows.append(
            {
                "task": name,
                "metric": "Dice" if segmentation else "PSNR (dB)",
                "neuralizer": round(_score(prediction, target_out, segmentation), 3),
                "context mean": round(_score(mean_baseline, target_out, segmentation), 3),
            }
        )
        panels.append((name, target_in, context_in[0], context_out[0], prediction, target_out))

    figure, axes = plt.subplots(len(panels), 5, figsize=(11, 2.3 * len(panels)))
    titles = ("target_in", "context_in[0]", "context_out[0]", "prediction", "truth")
    for row, (name, *images) in zip(axes, panels, strict=True):
        for ax, image, title in zip(row, images, titles, strict=True):
            ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{name}: {title}" if title == "target_in" else title, fontsize=9)
            ax.axis("off")
    state = "shipped model" if trained else "UNTRAINED weights (no trained model ships yet)"
    figure.suptitle(f"Neuralizer demo, {len(CONTEXT_OFFSETS)} context pairs, {state}")
    figure.tight_layout()
    output.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    write_atomically(output / "demo.png", buffer.getvalue())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(output / "metrics.csv", text.getvalue().encode())

    print(f"Neuralizer demo ({state})")
    print(f"{'task':<14} {'metric':<10} {'neuralizer':>10} {'context mean':>13}")
    for r in rows:
        print(f"{r['task']:<14} {r['metric']:<10} {r['neuralizer']:>10} {r['context mean']:>13}")
    print(f"wrote {output / 'demo.png'} and {output / 'metrics.csv'}")
    return rows
