"""DICOM input: a folder holding one DICOM series is read wherever a NIfTI volume is accepted.

The series is read with SimpleITK's series reader (GDCM sorts the slices by position along
their normal), and its geometry is kept: SimpleITK describes voxels in DICOM's LPS world
coordinates, NIfTI (and everything here) in RAS, so the voxel-to-world affine is
``diag(-1, -1, 1) · [direction · diag(spacing) | origin]``. The result is written as NIfTI on
that grid. Sizes for the memory plan come from the headers of the first and last slice alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: LPS (DICOM, ITK) to RAS (NIfTI): x and y change sign.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_PREAMBLE = 128  # a DICOM Part 10 file: 128 bytes, then "DICM"


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            file.seek(_PREAMBLE)
            return file.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder whose (non-hidden) files include a DICOM Part 10 file."""
    path = Path(path)
    try:
        if not path.is_dir():
            return False
        return any(
            p.is_file() and not p.name.startswith(".") and _is_dicom_file(p)
            for p in sorted(path.iterdir())
        )
    except OSError:
        return False


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError:
        raise ValueError(
            "reading DICOM needs SimpleITK: pip install 'neuralizer[data]', or convert the series "
            "to NIfTI first (e.g. with dcm2niix)"
        ) from None
    return sitk


def series_files(folder: Path) -> list[str]:
    """The slice files of the one series in ``folder``, in GDCM's order; ValueError when the
    folder holds no series or several (give one series' folder)."""
    sitk = _sitk()
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not ids:
        raise ValueError(f"{folder} holds no readable DICOM series")
    if len(ids) > 1:
        raise ValueError(
            f"{folder} holds {len(ids)} DICOM series; give the folder of one series "
            "(move each series into a folder of its own)"
        )
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), ids[0]))
    if not files:
        raise ValueError(f"{folder}: its DICOM series has no readable slices")
    return files


def ras_affine(spacing, direction, origin) -> np.ndarray:
    """The 4×4 RAS voxel-to-world affine of an ITK image's LPS ``spacing``, ``direction``
    (row-major 3×3, flattened) and ``origin``."""
    linear = np.asarray(direction, np.float64).reshape(3, 3) * np.asarray(spacing, np.float64)
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ linear
    affine[:3, 3] = LPS_TO_RAS @ np.asarray(origin, np.float64)
    return affine


def read_dicom_series(folder: str | Path):
    """(data X×Y×Z float32, NIfTI image on the series' grid) of the one series in ``folder``."""
    import nibabel as nib

    sitk = _sitk()
    folder = Path(folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(series_files(folder))
    try:
        image = reader.Execute()
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown error"
        raise ValueError(f"{folder}: its DICOM series cannot be read ({first})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"{folder}: expected a 3D single-channel DICOM series, got {image.GetDimension()}D "
            f"with {image.GetNumberOfComponentsPerPixel()} component(s) per voxel"
        )
    array = sitk.GetArrayFromImage(image)  # Z×Y×X: ITK index (i, j, k) is array[k, j, i]
    data = np.ascontiguousarray(np.transpose(array, (2, 1, 0)))
    affine = ras_affine(image.GetSpacing(), image.GetDirection(), image.GetOrigin())
    nifti = nib.Nifti1Image(data, affine)
    nifti.set_qform(affine, code=1)  # scanner coordinates
    nifti.set_sform(affine, code=1)
    return data, nifti


def dicom_header(folder: str | Path) -> tuple[tuple[int, int, int], np.ndarray]:
    """(spatial shape X×Y×Z, RAS affine) of the series in ``folder``
    from the headers of its first and last slice (no pixel data decoded)."""
    sitk = _sitk()
    folder = Path(folder)
    files = series_files(folder)
    infos = []
    for name in (files[0], files[-1]):
        reader = sitk.ImageFileReader()
        reader.SetFileName(name)
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise ValueError(f"{name}: not a readable DICOM file") from None
        infos.append(reader)
    first, last = infos
    size = first.GetSize()
    spacing = first.GetSpacing()
    direction = np.asarray(first.GetDirection(), np.float64).reshape(3, 3)
    shape = (int(size[0]), int(size[1]), len(files))
    affine = ras_affine((spacing[0], spacing[1], 1.0), direction.ravel(), first.GetOrigin())
    if len(files) > 1:  # the slice step: from the first slice's position to the last's
        step = np.subtract(last.GetOrigin(), first.GetOrigin()) / (len(files) - 1)
        affine[:3, 2] = LPS_TO_RAS @ step
    else:
        affine[:3, 2] = LPS_TO_RAS @ direction[:, 2] * (spacing[2] if len(spacing) > 2 else 1.0)
    return shape, affine
