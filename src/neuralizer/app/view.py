"""Pictures for the web app: coronal slices of the target, the context pairs, the prediction and
its uncertainty, as RGB arrays (uint8 H×W×3) ready for the page.

Volumes are shown in RAS (closest canonical orientation), superior up and the subject's left on
the right, one coronal slice at a time; a 2D image is a volume of one coronal slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

DISPLAY_PIXELS = 288  # slices are enlarged (whole-pixel factors) to about this size
MASK_RGB = np.array([1.0, 0.35, 0.1])  # segmentation overlay colour (orange)
MASK_ALPHA = 0.55
OUTLINE_RGB = np.array([0.0, 0.85, 0.95])  # the MNI152 brain's outline after alignment (cyan)


@dataclass(frozen=True)
class Shown:
    """A volume ready to slice: X×Y×Z values in RAS and the affine of that voxel order."""

    data: np.ndarray
    affine: np.ndarray

    def slice_at(self, y_world: float) -> np.ndarray:
        """The coronal slice nearest to world coordinate ``y_world`` (clipped), H×W."""
        inverse = np.linalg.inv(self.affine)
        centre = self.affine @ [self.data.shape[0] / 2, 0, self.data.shape[2] / 2, 1]
        j = (inverse @ [centre[0], y_world, centre[2], 1])[1]
        j = int(np.clip(round(j), 0, self.data.shape[1] - 1))
        return self.data[:, j, :].T[::-1]


def shown(data: np.ndarray, image: nib.Nifti1Image | None) -> Shown:
    """X×Y×Z ``data`` on ``image``'s grid in RAS; 2D H×W ``data`` (no image) as one slice."""
    data = np.asarray(data, np.float32)
    if image is None:  # H×W -> X×1×Z whose coronal slice data[:, 0, :].T[::-1] is the image
        return Shown(np.ascontiguousarray(data[::-1].T[:, None, :]), np.eye(4))
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, image.affine))
    return Shown(np.asarray(canonical.dataobj, np.float32), canonical.affine)


@dataclass(frozen=True)
class View:
    """Everything the page draws of one prediction (kept per browser session)."""

    task: str
    target: Shown
    prediction: Shown
    uncertainty: Shown | None
    context: list[tuple[Shown, Shown]]
    #: The MNI152 brain mask carried into the target by the alignment found (None without one):
    #: drawn as an outline on the target, so that a failed registration shows at a glance.
    outline: Shown | None = None

    @property
    def n_slices(self) -> int:
        return self.target.data.shape[1]

    def y_world(self, index: int) -> float:
        index = int(np.clip(index, 0, self.n_slices - 1))
        return float((self.target.affine @ [0, index, 0, 1])[1])

    def centre_slice(self) -> int:
        """The coronal slice through the middle of the predicted structure (or of the target)."""
        data = self.prediction.data if self.task != "image" else self.target.data
        profile = np.abs(data).sum(axis=(0, 2))
        if profile.sum() == 0:
            return self.n_slices // 2
        return int(round(float((profile * np.arange(len(profile))).sum() / profile.sum())))


def view_of(prediction) -> View:
    """The :class:`View` of a :class:`neuralizer.app.core.Prediction`."""
    result, target = prediction.result, prediction.target

    def image_of(value) -> tuple[np.ndarray, nib.Nifti1Image | None]:
        if isinstance(value, nib.Nifti1Image):
            return np.asarray(value.dataobj, np.float32), value
        return np.asarray(value, np.float32), None

    uncertainty = None if result.uncertainty is None else shown(*image_of(result.uncertainty))
    pairs = [
        (shown(a.data[0], a.image), shown(b.data[0], b.image))
        for a, b in zip(prediction.context_in, prediction.context_out, strict=True)
    ]
    outline = None
    alignment = getattr(result, "alignment", None)
    if alignment is not None and target.image is not None:
        from neuralizer.infer.qc import template_brain

        brain = template_brain(alignment.matrix, target.data[0].shape, target.image.affine)
        outline = shown(brain, target.image)
    return View(
        result.task,
        shown(target.data[0], target.image),
        shown(*image_of(result.prediction)),
        uncertainty,
        pairs,
        outline,
    )


def grey(image: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """H×W -> H×W×3 floats in [0, 1], windowed to [lo, hi] (default: 0.5/99.5 percentiles)."""
    if lo is None or hi is None:
        lo, hi = (float(v) for v in np.percentile(image, (0.5, 99.5)))
    scaled = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.repeat(scaled[..., None], 3, axis=-1)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] -> uint8, enlarged by a whole factor to about DISPLAY_PIXELS."""
    factor = max(1, DISPLAY_PIXELS // max(rgb.shape[:2]))
    big = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    return np.round(255 * np.clip(big, 0, 1)).astype(np.uint8)


def overlay_mask(background: np.ndarray, labels: np.ndarray, task: str) -> np.ndarray:
    """Masks in orange, label maps in one colour per label, over a grey background."""
    rgb = background.copy()
    if task == "segmentation":
        colours = np.broadcast_to(MASK_RGB, rgb.shape)
    else:
        from matplotlib import colormaps

        colours = colormaps["tab20"]((labels.astype(np.int64) % 20) / 19)[..., :3]
    where = labels != 0
    rgb[where] = (1 - MASK_ALPHA) * rgb[where] + MASK_ALPHA * colours[where]
    return rgb


def overlay_heat(background: np.ndarray, values: np.ndarray, top: float) -> np.ndarray:
    """``values`` as a heat map over a grey background, opaque where they reach ``top``."""
    from matplotlib import colormaps

    strength = np.clip(values / max(top, 1e-12), 0, 1)
    heat = colormaps["inferno"](strength)[..., :3]
    alpha = np.sqrt(strength)[..., None]
    return (1 - alpha) * background + alpha * heat


def draw_outline(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``rgb`` with the boundary pixels of ``mask`` (inside pixels next to outside) in cyan."""
    from scipy import ndimage

    inside = mask > 0.5
    edge = inside & ~ndimage.binary_erosion(inside)
    out = rgb.copy()
    out[edge] = OUTLINE_RGB
    return out


def render(view: View, index: int) -> dict[str, object]:
    """Pictures of coronal slice ``index``: "target", "prediction", "uncertainty" (None for a
    single pass) as uint8 RGB, and "context": (picture, caption) per example pair."""
    y = view.y_world(index)
    target = view.target.slice_at(y)
    lo, hi = (float(v) for v in np.percentile(view.target.data, (0.5, 99.5)))
    background = grey(target, lo, hi)
    prediction = view.prediction.slice_at(y)
    if view.task == "image":
        p_lo, p_hi = (float(v) for v in np.percentile(view.prediction.data, (0.5, 99.5)))
        predicted = grey(prediction, p_lo, p_hi)
    else:
        predicted = overlay_mask(background, prediction, view.task)
    uncertainty = None
    if view.uncertainty is not None:
        top = float(np.percentile(view.uncertainty.data, 99.9))
        uncertainty = to_uint8(overlay_heat(background, view.uncertainty.slice_at(y), top))
    context = []
    for k, (c_in, c_out) in enumerate(view.context):
        a, b = c_in.slice_at(y), c_out.slice_at(y)
        shown_out = grey(b) if view.task == "image" else overlay_mask(grey(a), b, view.task)
        gap = np.ones((a.shape[0], 2, 3))
        picture = np.concatenate([grey(a), gap, shown_out], axis=1)
        context.append((to_uint8(picture), f"example {k + 1}: input | output"))
    shown_target = background
    if view.outline is not None:
        shown_target = draw_outline(background, view.outline.slice_at(y))
    return {
        "target": to_uint8(shown_target),
        "prediction": to_uint8(predicted),
        "uncertainty": uncertainty,
        "context": context,
    }
