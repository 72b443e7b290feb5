"""``neuralizer data gallery``: one picture of every source and of a grid of synthetic subjects."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from neuralizer.data.render import render, sample_profile
from neuralizer.data.space import coronal_view
from neuralizer.data.subjects import SynthConfig, SynthSliceSource, cached_anatomy
from neuralizer.model.checkpoint import write_atomically

_CONTRASTS = (("t1", False), ("t2", False), ("pd", False), ("flair", False), ("synthetic", False),
              ("t1", True), ("t2", True), ("synthetic", True))  # fmt: skip


def make_gallery(
    output: Path,
    *,
    voxel_size_mm: float = 2.0,
    n_subjects: int = 5,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> None:
    """Write a PNG: row 1, every source on the common grid (coronal paper slice); then one row per
    synthetic training subject: its tissue map, real images, and renders under named profiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = SynthConfig(voxel_size_mm=voxel_size_mm)
    source = SynthSliceSource("train", n_subjects, config, cache_dir=cache_dir)
    anatomy = cached_anatomy(config, source.cache_dir)
    y = int(round(np.mean(np.flatnonzero(np.isin(anatomy.tissue, (5, 8)).any(axis=(0, 2))))))
    panels = [(f"image: {k}", coronal_view(v, y), "gray") for k, v in anatomy.images.items()]
    panels.append(("tissue classes", coronal_view(anatomy.tissue, y), "nipy_spectral"))
    for name, labels in anatomy.labels.items():
        panels.append((f"labels: {name}", coronal_view(labels, y) % 64, "nipy_spectral"))
    n_cols = max(len(panels), 3 + len(_CONTRASTS))
    fig, axes = plt.subplots(1 + n_subjects, n_cols, figsize=(1.6 * n_cols, 1.8 * (1 + n_subjects)))
    for ax, (title, image, cmap) in zip(axes[0], panels, strict=False):
        ax.imshow(image, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=6)
    rng = np.random.default_rng(seed)
    for row, index in enumerate(range(n_subjects), start=1):
        position = source.paper_position(index) if row % 2 else float(rng.uniform(0.2, 0.8))
        s = source.get(index, position)
        cells = [
            ("tissue", s.tissue, "nipy_spectral"),
            ("real T1 (warped)", s.images["t1_brain"], "gray"),
            ("real head (warped)", s.images["head"], "gray"),
        ]
        for name, head in _CONTRASTS:
            image = render(s, sample_profile(name, rng), rng, head=head)
            cells.append((f"{name}{' head' if head else ''}", image, "gray"))
        for ax, (title, image, cmap) in zip(axes[row], cells, strict=False):
            ax.imshow(image, cmap=cmap, interpolation="nearest", vmin=0, vmax=None)
            ax.set_title(f"{title}" if row == 1 else "", fontsize=6)
        axes[row, 0].set_ylabel(f"seed {s.seed}\npos {position:.2f}", fontsize=6)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.set_axis_off()
    fig.suptitle("Sources on the common grid (row 1) and synthetic training subjects", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    plt.close(fig)
    write_atomically(output, buffer.getvalue())
