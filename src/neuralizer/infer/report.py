"""``--report FILE.html``: one self-contained page to check a whole cohort by eye.

One row per target: an overlay mosaic (sagittal, coronal and axial slices through the centre of
the target's foreground, in RAS display orientation), the uncertainty map when an ensemble ran,
the volume of each structure and the QC flags of :mod:`neuralizer.infer.statistics`; failed
targets get a row with the reason. Pictures are embedded as base64 PNG, the styles and the small
sorting script inline: the file needs no network and opens from disk. The page is made with a
Jinja2 template (``templates/report.html``, HTML-escaped), never by joining strings.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from neuralizer.infer.statistics import StructureVolume

#: Height in pixels of each panel of a mosaic (voxels are drawn at their physical aspect).
PANEL_PIXELS = 120
_OVERLAY_ALPHA = 0.4


@dataclass(frozen=True)
class ReportRow:
    """What the report shows of one target (``error`` set for a target that failed)."""

    target: str
    task: str = ""
    mosaic: bytes | None = None
    uncertainty: bytes | None = None
    volumes: tuple[StructureVolume, ...] = ()
    error: str | None = None
    outputs: tuple[str, ...] = field(default_factory=tuple)

    @property
    def flags(self) -> tuple[str, ...]:
        if self.error is not None:
            return ("failed",)
        return tuple(dict.fromkeys(f for v in self.volumes for f in v.flags))


def _canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``data`` (X×Y×Z) reoriented to RAS+ voxel axes, and its voxel sizes (mm)."""
    image = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(data), affine))
    return np.asarray(image.dataobj), np.asarray(image.header.get_zooms()[:3], np.float64)


def _grey(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.5))
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)


def _colours(values: np.ndarray, task: str) -> np.ndarray:
    """RGB in [0, 1] for every non-zero value of a mask/label map (orange for a mask)."""
    import matplotlib

    palette = matplotlib.colormaps["tab20"]
    rgb = np.zeros((*values.shape, 3))
    labels = [v for v in np.unique(values) if v != 0]
    for k, value in enumerate(labels):
        colour = (1.0, 0.45, 0.0) if task == "segmentation" else palette(k % 20)[:3]
        rgb[values == value] = colour
    return rgb


def _panel(rgb: np.ndarray, zooms: tuple[float, float]) -> np.ndarray:
    """An H×W×3 slice scaled to :data:`PANEL_PIXELS` high at the physical aspect (uint8)."""
    from PIL import Image

    height_mm, width_mm = rgb.shape[0] * zooms[0], rgb.shape[1] * zooms[1]
    size = (max(1, round(PANEL_PIXELS * width_mm / height_mm)), PANEL_PIXELS)
    picture = Image.fromarray(np.round(255 * np.clip(rgb, 0, 1)).astype(np.uint8))
    return np.asarray(picture.resize(size, Image.Resampling.NEAREST))


def _slices(volume: np.ndarray, centre: np.ndarray) -> list[np.ndarray]:
    """Sagittal, coronal and axial slices of a RAS volume through ``centre``, superior (or
    anterior) up."""
    return [np.take(volume, int(centre[axis]), axis=axis).T[::-1] for axis in range(3)]


def _zooms(zooms: np.ndarray) -> list[tuple[float, float]]:
    """(height, width) voxel sizes of the panels of :func:`_slices`."""
    x, y, z = zooms
    return [(z, y), (z, x), (y, x)]


def _png(panels: Sequence[np.ndarray]) -> bytes:
    from PIL import Image

    gap = np.zeros((PANEL_PIXELS, 4, 3), np.uint8)
    row = np.concatenate([part for p in panels for part in (p, gap)][:-1], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(row).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _overlay(background: np.ndarray, shown: np.ndarray, task: str) -> np.ndarray:
    """RGB of a grey slice with the result drawn over it (an image result: below it)."""
    rgb = np.repeat(background[..., None], 3, axis=2)
    if task == "image":
        return np.concatenate([rgb, np.repeat(_grey(shown)[..., None], 3, axis=2)], axis=0)
    on = (shown != 0)[..., None]
    return np.where(on, (1 - _OVERLAY_ALPHA) * rgb + _OVERLAY_ALPHA * _colours(shown, task), rgb)


def _spread_png(slices: Sequence[np.ndarray], zooms: Sequence[tuple[float, float]]) -> bytes:
    import matplotlib

    top = max(max(float(s.max()) for s in slices), 1e-6)
    colour = matplotlib.colormaps["inferno"]
    return _png([_panel(colour(s / top)[..., :3], z) for s, z in zip(slices, zooms, strict=True)])


def mosaic_pictures(
    target: np.ndarray,
    affine: np.ndarray | None,
    prediction: np.ndarray,
    task: str,
    uncertainty: np.ndarray | None = None,
) -> tuple[bytes, bytes | None]:
    """(overlay mosaic PNG, uncertainty mosaic PNG or None): ``target`` (X×Y×Z, the first
    channel), ``prediction`` and ``uncertainty`` on the same grid of ``affine``; a 2D target
    (H×W, ``affine`` None) gives one panel."""
    from neuralizer.data.space import foreground

    if affine is None:
        slices, results, zooms = [_grey(target)], [np.asarray(prediction)], [(1.0, 1.0)]
        spreads = None if uncertainty is None else [np.asarray(uncertainty, np.float64)]
    else:
        image, voxel = _canonical(target, affine)
        mask = foreground(image)
        centre = (
            np.argwhere(mask).mean(axis=0) if mask.any() else (np.asarray(image.shape) - 1) / 2
        ).round()
        slices, zooms = _slices(_grey(image), centre), _zooms(voxel)
        results = _slices(_canonical(prediction, affine)[0], centre)
        spreads = None
        if uncertainty is not None:
            spreads = _slices(_canonical(uncertainty, affine)[0], centre)
    panels = [
        _panel(_overlay(background, shown, task), zoom)
        for background, shown, zoom in zip(slices, results, zooms, strict=True)
    ]
    return _png(panels), None if spreads is None else _spread_png(spreads, zooms)


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def render_report(rows: Sequence[ReportRow], title: str, notes: Sequence[str] = ()) -> str:
    """The HTML text of the report on ``rows``."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("neuralizer.infer", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = environment.get_template("report.html")
    structures = list(dict.fromkeys(v.structure for row in rows for v in row.volumes))
    shown = []
    for row in rows:
        volumes = {v.structure: v for v in row.volumes}
        shown.append(
            {
                "target": row.target,
                "task": row.task,
                "mosaic": _data_uri(row.mosaic),
                "uncertainty": _data_uri(row.uncertainty),
                "volumes": [volumes.get(s) for s in structures],
                "flags": row.flags,
                "error": row.error,
                "outputs": row.outputs,
            }
        )
    has_uncertainty = any(row.uncertainty is not None for row in rows)
    flagged = sum(bool(row.flags) for row in rows)
    return template.render(title=title, rows=shown, structures=structures, notes=list(notes),
                           has_uncertainty=has_uncertainty, flagged=flagged)  # fmt: skip


def write_report(
    path: str | Path, rows: Sequence[ReportRow], title: str, notes: Sequence[str] = ()
) -> None:
    """Write the report on ``rows`` to ``path`` atomically."""
    from neuralizer.files import write_atomically

    write_atomically(path, render_report(rows, title, notes).encode("utf-8"))
