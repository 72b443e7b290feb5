"""``neuralizer data gallery``: one picture of every source and of a grid of synthetic subjects."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from neuralizer.data.render import render, sample_profile
from neuralizer.data.space import coronal_view
from neuralizer.data.subjects import SynthConfig, SynthSliceSource, cached_anatomy
from neuralizer.files import write_atomically

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


def make_people_gallery(output: Path, *, people: tuple[int, ...] = (1, 2, 6, 11, 14, 17, 18, 20),
                        seed: int = 0) -> None:  # fmt: skip
    """Write a PNG of real people side by side at 1 mm (one column each, coronal slice through
    the thalami): their aseg label map and renders under a T1 and a T2 profile, with and without
    the head. Shows the variability the MNI-based subjects lack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralizer.data.people import brain_mask_from_labels, load_person
    from neuralizer.data.render import real_class_map, render_volume

    rng = np.random.default_rng(seed)
    profiles = {name: sample_profile(name, rng) for name in ("t1", "t2")}
    rows = ["aseg labels", "T1 head", "T1 brain", "T2 head", "T2 brain"]
    fig, axes = plt.subplots(len(rows), len(people), figsize=(1.7 * len(people), 2.0 * len(rows)))
    for column, number in enumerate(people):
        labels, _ = load_person(number)
        # The coronal slice through the middle of the thalami (aseg 10 and 49).
        y = int(np.median(np.flatnonzero(np.isin(labels, (10, 49)).any(axis=(0, 2)))))
        plane = labels[:, y : y + 1, :]
        brain, classes = brain_mask_from_labels(labels)[:, y : y + 1], real_class_map(plane)
        cells = [coronal_view(np.where(labels[:, y : y + 1] < 100, plane, 0) % 37, 0)]
        for name in ("t1", "t2"):
            for head in (True, False):
                image = render_volume(classes, brain, profiles[name], 1.0, head=head)
                cells.append(coronal_view(image, 0))
        for row, image in enumerate(cells):
            ax = axes[row, column]
            ax.imshow(image, cmap="tab20b" if row == 0 else "gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(rows[row], fontsize=8)
        axes[0, column].set_title(f"person {number:02d}", fontsize=8)
    fig.suptitle("Real people of the embedded data (SynthSeg label maps, affinely aligned to MNI)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    plt.close(fig)
    write_atomically(output, buffer.getvalue())
