"""``--qc FILE.png``: the result over the target, so a user sees at once whether it went right.

Volumes: three orthogonal views (sagittal, coronal, axial) through the centre of the target's
foreground, shown in RAS; 2D: the image. Masks and label maps are drawn as coloured overlays, image
results beside the target. With ``--align affine`` the MNI152 brain's outline, carried into the
target through the registration that was found, is drawn over it (cyan), and the title states
the rotation found: a failed registration shows at a glance as an outline off the brain.
"""

from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np

from neuralizer.files import write_atomically
from neuralizer.infer.io import Loaded


def _views(target: Loaded, result) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """(target, result, template outline or None) 2D triples to draw, display-oriented
    (superior/anterior up)."""
    if target.image is None:
        return [(target.data[0], np.asarray(result.prediction, np.float32), None)]
    from neuralizer.data.space import foreground

    image = nib.as_closest_canonical(nib.Nifti1Image(target.data[0], target.image.affine))
    pred = nib.as_closest_canonical(result.prediction)
    data, out = np.asarray(image.dataobj), np.asarray(pred.dataobj, np.float32)
    alignment = getattr(result, "alignment", None)
    outline = None if alignment is None else template_brain(alignment.matrix, data.shape,
                                                            image.affine)  # fmt: skip
    centre = np.argwhere(foreground(data)).mean(axis=0).round().astype(int)
    views = []
    for axis in range(3):
        a = np.take(data, centre[axis], axis=axis).T[::-1]
        b = np.take(out, centre[axis], axis=axis).T[::-1]
        c = None if outline is None else np.take(outline, centre[axis], axis=axis).T[::-1]
        views.append((a, b, c))
    return views


def template_brain(to_target: np.ndarray, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """The MNI152 brain mask (uint8) on a target grid (``shape``, voxel-to-world ``affine``),
    through ``to_target`` (4×4, MNI world to the target's world)."""
    from scipy import ndimage

    from neuralizer.data.mni_templates import templates
    from neuralizer.data.space import Grid, resample_to_grid

    grid, template = templates()
    mask = ndimage.binary_fill_holes(template["brain"] > 0.02).astype(np.uint8)
    on_target = Grid(tuple(shape[:3]), np.linalg.inv(to_target) @ affine)  # type: ignore[arg-type]
    return resample_to_grid(mask, grid.affine, on_target, order=0)


def save_qc(path: str | Path, target: Loaded, result) -> None:
    """Write a PNG overlay of ``result`` (a :class:`PredictResult`) on ``target``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views = _views(target, result)
    image_task = result.task == "image"
    rows = 2 if image_task else 1
    fig, axes = plt.subplots(
        rows, len(views), figsize=(3.2 * len(views), 3.2 * rows), squeeze=False
    )
    for k, (background, overlay, outline) in enumerate(views):
        lo, hi = np.percentile(background, (0.5, 99.5))
        axes[0, k].imshow(background, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
        if image_task:
            lo, hi = np.percentile(overlay, (0.5, 99.5))
            axes[1, k].imshow(overlay, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
        else:
            shown = np.ma.masked_equal(overlay, 0)
            axes[0, k].imshow(shown, cmap="autumn" if result.task == "segmentation" else "tab20",
                              alpha=0.45, interpolation="nearest")  # fmt: skip
        if outline is not None and outline.any():
            axes[0, k].contour(outline, [0.5], colors="c", linewidths=0.7)
    for ax in axes.ravel():
        ax.set_axis_off()
    title = f"{Path(target.name).name}: {result.task}"
    alignment = getattr(result, "alignment", None)
    if alignment is not None:
        title += f"; MNI152 outline, rotation {alignment.rotation_deg:.1f}°"
    axes[0, 0].set_title(title, fontsize=9, loc="left")
    if image_task:
        axes[1, 0].set_title("prediction", fontsize=9, loc="left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    write_atomically(path, buffer.getvalue())
