"""A picture of every task family and every task augmentation (``neuralizer data tasks``).

One row per task (no task augmentation) and one row per task augmentation (applied to a task it
suits): target input, target output and two context pairs. A one-channel input is shown in grey;
a multi-channel input as RGB (channel 0 red, 1 green, 2 blue).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from neuralizer.data.subject import SliceSource
from neuralizer.tasks.augmentations import AUGMENTATION_NAMES
from neuralizer.tasks.episode import Episode
from neuralizer.tasks.registry import TASK_NAMES
from neuralizer.tasks.sampler import EpisodeSampler, SamplerConfig

#: the task each augmentation is shown on
AUGMENTATION_SHOWCASE: dict[str, str] = {
    "synthetic_modality": "segmentation",
    "intensity_mapping": "modality_transfer",
    "sobel_filter": "modality_transfer",
    "mask_dilation": "segmentation",
    "mask_contour": "segmentation",
    "mask_invert": "segmentation",
    "duplicate_channels": "denoising",
    "permute_channels": "inpainting",
}
N_CONTEXT_SHOWN = 2


def gallery_episodes(source: SliceSource, seed: int = 0) -> list[tuple[str, Episode]]:
    """(row title, episode) for every task and every task augmentation."""
    rows = []
    base = SamplerConfig(seed=seed, augmentation_probabilities={}, position_range=(0.45, 0.55))
    for i, name in enumerate((*TASK_NAMES, *AUGMENTATION_NAMES)):
        is_task = i < len(TASK_NAMES)
        task = name if is_task else AUGMENTATION_SHOWCASE[name]
        config = dataclasses.replace(
            base,
            task_weights={task: 1.0},
            augmentation_probabilities={} if is_task else {name: 1.0},
        )
        sampler = EpisodeSampler(source, config)
        episode = sampler.episode(np.random.default_rng([seed, i]), N_CONTEXT_SHOWN)
        rows.append((name if is_task else f"{name}\n(on {task})", episode))
    return rows


def _show_input(x: np.ndarray) -> tuple[np.ndarray, str | None]:
    used = [c for c in range(x.shape[0]) if x[c].any()]
    if used == [0] or not used:
        return x[0], "gray"
    return np.clip(np.moveaxis(x, 0, -1), 0, 1), None


def _describe(episode: Episode) -> str:
    params = episode.record.target.task_params
    bits = []
    for field in ("protocol", "labels", "factor", "axes", "acceleration", "n_segments", "mode"):
        if hasattr(params, field):
            value = getattr(params, field)
            bits.append(f"{field}={value:.1f}" if isinstance(value, float) else f"{field}={value}")
    for field in ("profile", "profile_in", "profile_out"):
        if hasattr(params, field):
            bits.append(f"{field}={getattr(params, field).name}")
    if getattr(params, "real_image", ""):
        bits.append(f"real image {params.real_image}")
    return ", ".join(bits)


def save_gallery(path: str | Path, source: SliceSource, seed: int = 0) -> Path:
    """Write the gallery PNG to ``path`` and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = gallery_episodes(source, seed)
    n_cols = 2 + 2 * N_CONTEXT_SHOWN
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.6 * n_cols + 1.6, 1.75 * len(rows)))
    headers = ["target in", "target out"]
    for k in range(N_CONTEXT_SHOWN):
        headers += [f"context {k + 1} in", f"context {k + 1} out"]
    for r, (title, ep) in enumerate(rows):
        images = [ep.target_in, ep.target_out]
        for k in range(N_CONTEXT_SHOWN):
            images += [ep.context_in[k], ep.context_out[k]]
        for c, image in enumerate(images):
            ax = axes[r, c]
            shown, cmap = _show_input(image) if c % 2 == 0 else (image[0], "gray")
            ax.imshow(shown, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(headers[c], fontsize=9)
        axes[r, 0].set_ylabel(title, fontsize=9)
        axes[r, 1].set_xlabel(_describe(ep), fontsize=6, loc="left")
    fig.suptitle("Neuralizer tasks (rows 1-8) and task augmentations (rows 9-16)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
