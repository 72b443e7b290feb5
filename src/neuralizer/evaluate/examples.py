"""Qualitative grid: for each task of a configuration, one target with every method's prediction.

Rows: tasks (instance 0, target 0); columns: target input, ground truth, then each method at the
largest context size (the U-Net at its largest training set). Written next to the score figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuralizer.evaluate.config import EvalConfig
from neuralizer.evaluate.metrics import score
from neuralizer.evaluate.run import applies, make_predictors
from neuralizer.evaluate.sets import build_instances


def plot_examples(config: EvalConfig, path: str | Path, methods: Sequence[str] = ()) -> None:
    """Save the grid as a PNG (``methods``: a subset of ``config.methods``; default all)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predictors = make_predictors(config, methods or config.methods)
    names = ["input", "truth", *predictors]
    fig, axes = plt.subplots(
        len(config.tasks), len(names), figsize=(1.6 * len(names), 1.7 * len(config.tasks)),
        squeeze=False,
    )  # fmt: skip
    for row, task in zip(axes, config.tasks, strict=True):
        inst = build_instances(config, task, 0)[0]
        images = [inst.target_in[0, 0], inst.target_out[0, 0]]
        titles = [f"{task}\n{inst.modalities[0]}", inst.label[:18] or "truth"]
        for method, predict in predictors.items():
            if not applies(method, inst):
                images.append(np.zeros_like(images[0]))
                titles.append(f"{method}\n(not for masks)")
                continue
            n = max(config.unet.train_sizes if method == "unet" else config.context_sizes)
            pred = predict(inst, n, [0])
            value = score(pred, inst.target_out[:1], inst.segmentation_like)[0]
            images.append(np.clip(pred[0, 0], 0, 1))
            titles.append(f"{method} n={n}\n{value:.3g}")
        for ax, image, title in zip(row, images, titles, strict=True):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=6)
            ax.axis("off")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
