"""``neuralizer data import``: users' own NIfTI scans into the common space (paper §4.1).

For each ``NAME.nii[.gz]`` in a folder (with optional ``NAME_labels`` / ``NAME_mask`` beside it):
reorient to RAS, register affinely to the matching template (the real head for heads with skull,
the MNI152 T1 brain for skull-stripped brains) with :func:`neuralizer.data.mni.register_to_mni`,
resample to the common grid (labels and masks by nearest neighbour), rescale intensities with
percentiles, and write NIfTI files with the MNI affine, a QC picture and ``manifest.json``. The
registration starts from the images' centres of mass and a coarse search over rotations, so
world offsets of hundreds of millimetres and tilted heads do not matter; it is the one
prediction uses (``--align affine``).
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from neuralizer.data.mni import KINDS, guess_kind, register_to_mni
from neuralizer.data.mni_templates import templates
from neuralizer.data.space import Grid, common_grid, percentile_rescale, resample_to_grid
from neuralizer.files import write_atomically

__all__ = ["KINDS", "ScanFiles", "check_scan", "find_scans", "guess_kind", "import_folder",
           "import_scan", "templates"]  # fmt: skip
# Larger than any brain MRI (1024³): a header claiming more is damaged or not a scan.
_MAX_VOXELS = 2**30
_MIN_SIDE = 8


@dataclass(frozen=True)
class ScanFiles:
    """One subject of a folder: the image and, where present, its label map and mask."""

    name: str
    image: Path
    labels: Path | None = None
    mask: Path | None = None


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else path.stem


def find_scans(folder: Path) -> list[ScanFiles]:
    """Every ``NAME.nii[.gz]`` of ``folder`` with its ``NAME_labels``/``NAME_mask`` companions."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of NIfTI images")
    files = {_stem(p): p for p in sorted(folder.iterdir()) if p.name.endswith((".nii", ".nii.gz"))}
    scans = [
        ScanFiles(name, path, files.get(f"{name}_labels"), files.get(f"{name}_mask"))
        for name, path in files.items()
        if not name.endswith(("_labels", "_mask"))
    ]
    if not scans:
        raise FileNotFoundError(f"no NAME.nii or NAME.nii.gz images in {folder}")
    return scans


def check_header(path: Path) -> nib.Nifti1Image:
    """The image behind ``path``, its header checked (no voxel data read); ValueError if unusable.

    nibabel raises many types for a damaged file (ImageFileError, EOFError, zlib and gzip errors,
    struct errors...): all become a ValueError naming the file.
    """
    try:
        img = nib.load(str(path))
        shape, affine = tuple(int(n) for n in img.shape), np.asarray(img.affine, dtype=float)
    except Exception as error:
        raise ValueError(f"{path} is not a readable NIfTI image ({error})") from None
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise ValueError(
            f"{path}: expected a 3D image (or 4D with one volume), got shape {shape}; "
            "split multi-volume files and import one volume at a time"
        )
    if min(shape) < _MIN_SIDE:
        raise ValueError(
            f"{path}: shape {shape} has fewer than {_MIN_SIDE} voxels along an axis; "
            "a brain or head scan is needed"
        )
    voxels = int(np.prod(shape, dtype=np.int64))
    if voxels > _MAX_VOXELS:
        raise ValueError(f"{path}: {voxels:,} voxels, more than the {_MAX_VOXELS:,} accepted")
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-6:
        raise ValueError(f"{path}: its affine is singular or not finite: {affine.tolist()}")
    return img


def load_ras(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(array, affine) reoriented to the closest RAS orientation; ValueError if unusable."""
    img = check_header(path)
    try:
        img = nib.as_closest_canonical(img)
        data = np.asanyarray(img.dataobj)
    except Exception as error:  # truncated data, damaged compression
        raise ValueError(f"{path} is not a readable NIfTI image ({error})") from None
    if data.ndim == 4:
        data = data[..., 0]
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise ValueError(f"{path}: voxel type {data.dtype} is not a real number type")
    if not np.isfinite(data).all():
        raise ValueError(f"{path} contains NaN or Inf voxels; replace them (e.g. by 0) first")
    return data, img.affine


def check_scan(scan: ScanFiles) -> None:
    """Everything about a scan that can fail, checked before any output is written."""
    data, affine = load_ras(scan.image)
    guess_kind(data, affine)
    for path in (scan.labels, scan.mask):
        if path is not None:
            values, values_affine = load_ras(path)
            if not np.allclose(values_affine, affine, atol=1e-3) or values.shape != data.shape:
                raise ValueError(
                    f"{path} is not on the grid of {scan.image}: same shape and affine needed"
                )


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write a gzipped NIfTI atomically (``write_atomically``: temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = nib.Nifti1Image(array, affine).to_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6)
    write_atomically(path, raw)


def import_scan(
    scan: ScanFiles,
    out_dir: Path,
    *,
    kind: str = "auto",
    voxel_size_mm: float = 1.0,
    cache_dir: Path | None = None,
) -> dict:
    """Import one subject into ``out_dir``; returns its manifest entry.

    The entry holds ``id``, ``image``, ``labels``/``mask`` where present (paths relative to
    ``out_dir``), ``kind``, ``qc`` and ``transform_ras``: the 4×4 map from common-space world
    coordinates (mm, RAS) to the source scan's world coordinates.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    data, affine = load_ras(scan.image)
    kind = guess_kind(data, affine) if kind == "auto" else kind
    reg_grid, template = templates(cache_dir)
    try:
        found = register_to_mni(data.astype(np.float32), affine, kind=kind, cache_dir=cache_dir)
    except (RuntimeError, ValueError) as error:  # SimpleITK's, or the check's refusal
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "no detail"
        raise ValueError(f"{scan.image}: {reason}") from None
    grid = common_grid(voxel_size_mm)
    on_scan = Grid(grid.shape, found.matrix @ grid.affine)  # the common grid in the scan's world
    image = resample_to_grid(data, affine, on_scan, order=1)
    image = percentile_rescale(image, image > 0, (0.5, 99.5))
    entry: dict = {"id": scan.name, "kind": kind, "image": f"images/{scan.name}.nii.gz"}
    _save_nifti(image, grid.affine, out_dir / entry["image"])
    for field, dtype in (("labels", np.int32), ("mask", np.uint8)):
        path = getattr(scan, field)
        if path is None:
            continue
        values, values_affine = load_ras(path)
        if not np.allclose(values_affine, affine, atol=1e-3) or values.shape != data.shape:
            raise ValueError(
                f"{path} is not on the grid of {scan.image}: same shape and affine needed"
            )
        values = np.rint(values).astype(np.int32)
        moved = resample_to_grid(values, affine, on_scan, order=0).astype(dtype)
        entry[field] = f"{field}/{scan.name}_{field}.nii.gz"
        _save_nifti(moved, grid.affine, out_dir / entry[field])
    entry["transform_ras"] = found.matrix.tolist()
    entry["alignment"] = found.describe()
    entry["qc"] = f"qc/{scan.name}.png"
    save_qc(
        image,
        template[kind],
        reg_grid,
        grid,
        out_dir / entry["qc"],
        title=f"{scan.name}: {found.describe()}",
    )
    return entry


def save_qc(
    image: np.ndarray, template: np.ndarray, template_grid: Grid, grid: Grid, path: Path, title: str
) -> None:
    """Three orthogonal mid slices of the imported image with the template's outline in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import ndimage

    outline = ndimage.zoom(template, np.divide(grid.shape, template_grid.shape), order=1) > 0.15
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    for axis, ax in enumerate(axes):
        k = image.shape[axis] // 2 if axis != 1 else int(image.shape[1] * 0.45)
        ax.imshow(np.take(image, k, axis=axis).T, origin="lower", cmap="gray", vmin=0, vmax=1)
        ax.contour(np.take(outline, k, axis=axis).T, [0.5], colors="r", linewidths=0.6)
        ax.set_axis_off()
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=80, format="png")
    plt.close(fig)
    write_atomically(path, buffer.getvalue())


def import_folder(
    src: Path,
    out_dir: Path,
    *,
    kind: str = "auto",
    voxel_size_mm: float = 1.0,
    cache_dir: Path | None = None,
) -> dict:
    """Import every scan of ``src`` into ``out_dir`` and write ``manifest.json``; returns it."""
    scans = find_scans(Path(src))
    common_grid(voxel_size_mm)  # fail on a bad voxel size before any heavy work
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    for scan in scans:  # a bad file anywhere stops the import before anything is written
        check_scan(scan)
    out_dir = Path(out_dir)
    entries = [
        import_scan(s, out_dir, kind=kind, voxel_size_mm=voxel_size_mm, cache_dir=cache_dir)
        for s in scans
    ]
    manifest = {"space": "MNI152 RAS", "voxel_size_mm": voxel_size_mm, "subjects": entries}
    write_atomically(out_dir / "manifest.json", json.dumps(manifest, indent=1).encode())
    return manifest
