"""Reading and writing the files ``neuralizer predict`` takes: NIfTI, NPY and PNG, and (read
only) a folder holding one DICOM series (:mod:`neuralizer.infer.dicom`).

A file may hold up to three input channels (NIfTI with a 4th dimension ≤ 3, NPY C×H×W, RGB PNG),
or several files may be joined into them (``infer.paths``: ``-i T1.nii.gz + T2.nii.gz``, a tuple
of paths, or ``T1.nii.gz+T2.nii.gz`` when no file has that literal name). Every check a user's file
can fail raises ValueError/FileNotFoundError with the file's name, before any heavy work.
"""

from __future__ import annotations

import gzip
import io
import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from neuralizer.infer.paths import Spec, check_name, input_files, spec_name

NIFTI = (".nii", ".nii.gz")
SUFFIXES = (*NIFTI, ".npy", ".png")
MAX_CHANNELS = 3


@dataclass(frozen=True)
class Loaded:
    """One loaded input: ``data`` is C×(spatial) float32, ``image`` the NIfTI it came from or None.

    Spatial dimensions are H×W for 2D files and X×Y×Z (the file's own voxel order) for NIfTI.
    """

    name: str
    data: np.ndarray
    image: nib.Nifti1Image | None = None
    #: the files it was read from (none for arrays, images and built-in examples)
    files: tuple[Path, ...] = ()

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])


def suffix(path: str | Path) -> str:
    name = str(path).lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def real_float32(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as float32; ValueError for complex, text, date, object or structured values
    (which a plain cast would silently mangle: complex numbers lose their imaginary part)."""
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} holds {array.dtype} values; give real numbers (bool, integer or float)"
        )
    return array.astype(np.float32, copy=False)


def check_affine(affine: np.ndarray, name: str) -> None:
    """ValueError unless the voxel-to-world ``affine`` is finite and invertible: resampling and
    registration would otherwise fail deep inside SciPy/SimpleITK, or silently give NaN."""
    linear = np.asarray(affine, np.float64)[:3, :3]
    finite = bool(np.isfinite(np.asarray(affine, np.float64)).all())
    if not finite or abs(np.linalg.det(linear)) < 1e-6 * max(1.0, np.abs(linear).max() ** 3):
        raise ValueError(
            f"{name} has an unusable affine (voxel-to-world matrix "
            f"{'with NaN/Inf' if not finite else 'that is singular'}); fix its header "
            "(qform/sform), e.g. by re-saving it from the scanner's DICOM"
        )


def check_file(path: Path) -> None:
    """FileNotFoundError or ValueError unless ``path`` is a readable file of a type we read
    (or a folder holding DICOM files)."""
    check_name(path, "input")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        from neuralizer.infer.dicom import is_dicom_folder

        if is_dicom_folder(path):
            return
        raise ValueError(f"{path} is a folder, not an image file (nor a DICOM series)")
    if suffix(path) not in SUFFIXES:
        raise ValueError(f"{path}: unsupported file type; use one of {', '.join(SUFFIXES)}")
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror or error})") from None


def _read_nifti(path: Path) -> tuple[np.ndarray, nib.Nifti1Image]:
    try:
        image = nib.load(str(path))
        data = real_float32(np.asarray(image.dataobj), str(path))
    except Exception as error:  # nibabel raises many types for damaged files
        raise ValueError(f"{path} is not a readable NIfTI file ({error})") from None
    if data.ndim == 4 and data.shape[3] > MAX_CHANNELS:
        raise ValueError(
            f"{path} is 4D with {data.shape[3]} volumes; at most {MAX_CHANNELS} are allowed (the "
            "channels of one input). Split a time series and predict its volumes separately."
        )
    if data.ndim not in (3, 4) or (data.ndim == 4 and data.shape[3] < 1):
        raise ValueError(f"{path}: expected a 3D image (or 4D with ≤ 3 volumes), got {data.shape}")
    check_affine(image.affine, str(path))
    channels = data[None] if data.ndim == 3 else np.moveaxis(data, 3, 0)
    return channels, image


def check_npy_size(path: Path) -> None:
    """ValueError if the NPY header promises more bytes than the file holds: NumPy would first
    allocate the promised array (any size a crafted header names), then find the data short."""
    with open(path, "rb") as file:
        version = np.lib.format.read_magic(file)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            return  # a newer format: np.load checks it
        shape, _, dtype = read_header(file)
        promised = math.prod(shape) * dtype.itemsize
        held = path.stat().st_size - file.tell()
    if promised > held:
        raise ValueError(
            f"truncated: its header promises {shape} {dtype} values, {held} bytes follow"
        )


def _read_2d(path: Path) -> np.ndarray:
    try:
        if suffix(path) == ".npy":
            check_npy_size(path)
            data = real_float32(np.load(path, allow_pickle=False), str(path))
        else:
            from PIL import Image

            with Image.open(path) as picture:
                if picture.mode not in ("L", "I", "I;16", "F"):  # keep 16-bit and float greys
                    picture = picture.convert("RGB")
                data = np.asarray(picture, np.float32)
            data = data[None] if data.ndim == 2 else np.moveaxis(data, 2, 0)
            if data.shape[0] == 3 and (data[0] == data[1]).all() and (data[0] == data[2]).all():
                data = data[:1]  # a grey picture saved as RGB is one channel
    except Exception as error:
        raise ValueError(f"{path} is not a readable {suffix(path)} file ({error})") from None
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.shape[0] > MAX_CHANNELS:
        raise ValueError(f"{path}: expected H×W or C×H×W with C ≤ {MAX_CHANNELS}, got {data.shape}")
    return data


def read_input(spec: Spec) -> Loaded:
    """Read one input: a file, or files joined into channels (:func:`infer.paths.input_files`).
    Checks finiteness."""
    parts = input_files(spec)
    spec = spec_name(spec)
    arrays, image = [], None
    for path in parts:
        check_file(path)
        if path.is_dir():  # a DICOM series (check_file)
            from neuralizer.infer.dicom import read_dicom_series

            volume, nifti = read_dicom_series(path)
            data = real_float32(volume, str(path))[None]
            check_affine(nifti.affine, str(path))
            image = image or nifti
        elif suffix(path) in NIFTI:
            data, nifti = _read_nifti(path)
            image = image or nifti
        else:
            data = _read_2d(path)
        if arrays and data.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(f"{spec}: the joined files have different shapes")
        arrays.append(data)
    data = np.concatenate(arrays)
    if data.shape[0] > MAX_CHANNELS:
        raise ValueError(f"{spec} has {data.shape[0]} channels; at most {MAX_CHANNELS} are allowed")
    if not np.isfinite(data).all():
        raise ValueError(f"{spec} contains NaN or Inf values; replace them (e.g. by 0) first")
    return Loaded(spec, data, image, tuple(parts))


def nifti_like(data: np.ndarray, reference: nib.Nifti1Image) -> nib.Nifti1Image:
    """A NIfTI image of ``data`` (X×Y×Z) on ``reference``'s grid, keeping its header.

    The affine, qform/sform and their codes, units and orientation are the reference's; the data
    type is ``data``'s (float32 images, uint8/int16 labels) with no intensity scaling.
    """
    header = reference.header.copy()
    out = nib.Nifti1Image(data, reference.affine, header=header)
    qform, qcode = reference.get_qform(coded=True)
    sform, scode = reference.get_sform(coded=True)
    out.set_qform(qform if qform is not None else reference.affine, code=int(qcode or 0))
    out.set_sform(sform if sform is not None else reference.affine, code=int(scode or 0))
    out.set_data_dtype(data.dtype)
    out.header.set_slope_inter(1.0, 0.0)
    out.header["cal_min"], out.header["cal_max"] = 0.0, 0.0
    out.header.set_intent("none")
    return out


def encode(path: str | Path, data: np.ndarray | nib.Nifti1Image) -> bytes:
    """The bytes of ``data`` in the format ``path``'s extension names."""
    kind = suffix(path)
    if kind in NIFTI:
        if not isinstance(data, nib.Nifti1Image):
            data = nib.Nifti1Image(np.asarray(data), np.eye(4))
        raw = data.to_bytes()
        return gzip.compress(raw, compresslevel=6) if kind == ".nii.gz" else raw
    array = np.asarray(data.dataobj if isinstance(data, nib.Nifti1Image) else data)
    buffer = io.BytesIO()
    if kind == ".npy":
        np.save(buffer, array, allow_pickle=False)
    elif kind == ".png":
        from PIL import Image

        if array.ndim != 2:
            raise ValueError(f"{path}: PNG output needs a 2D result, got shape {array.shape}")
        if array.dtype.kind == "f":  # images: full grey range over the result's own range
            lo, hi = float(array.min()), float(array.max())
            array = np.round(255 * (array - lo) / max(hi - lo, 1e-12))
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    else:
        raise ValueError(f"{path}: unsupported output type; use one of {', '.join(SUFFIXES)}")
    return buffer.getvalue()


def check_output_path(path: str | Path) -> None:
    """ValueError unless ``path``'s extension is a format we write (checked before any work)."""
    if suffix(path) not in SUFFIXES:
        raise ValueError(f"{path}: unsupported output type; use one of {', '.join(SUFFIXES)}")


def write_output(path: str | Path, data: np.ndarray | nib.Nifti1Image) -> None:
    """Write ``data`` atomically (temporary file, then rename) in ``path``'s format."""
    from neuralizer.files import write_atomically

    write_atomically(path, encode(path, data))
