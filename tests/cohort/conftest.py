"""Fixtures for the cohort tests: a tiny random checkpoint, small synthetic heads, DICOM series."""

import locale
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint

#: 32×32 pixels of 2 mm: a tiny field of view keeps the cohort tests fast.
GEOMETRY = {"voxel_size_mm": 2.0, "image_size": [32, 32]}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Neuralizer(ModelConfig(channels=4)).eval()
    save_checkpoint(path, model, provenance=GEOMETRY)
    return path


def head(shape=(20, 24, 20), seed: int = 0, radius: float = 0.36) -> tuple[np.ndarray, np.ndarray]:
    """(image int16, mask uint8) X×Y×Z: an ellipsoid 'head' with a ramp and a brighter 'brain'
    blob whose size follows ``radius``; integer intensities (as a scanner stores them)."""
    rng = np.random.default_rng(seed)
    idx = np.indices(shape).astype(np.float32)
    centre = (np.asarray(shape) - 1) / 2
    scale = np.asarray(shape, np.float32)[:, None, None, None]
    distance = (((idx - centre[:, None, None, None]) / (scale * 0.45)) ** 2).sum(0)
    inner = (((idx - centre[:, None, None, None]) / (scale * radius)) ** 2).sum(0) < 1
    image = np.where(distance < 1, 300 + 200 * idx[0] / shape[0], 0)
    image = image + 400 * inner + rng.normal(0, 10, shape) * (distance < 1)
    return np.round(image).astype(np.int16), inner.astype(np.uint8)


def write_dicom_series(image, folder: Path) -> Path:
    """Write a SimpleITK 3D image as a DICOM series (one file per slice) into ``folder``."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    d = image.GetDirection()
    series = "1.2.826.0.1.3680043.2.1125.1.42"
    shared = {
        "0008|0060": "MR",
        "0008|0021": "20260101",
        "0008|0031": "120000",
        "0020|000d": series + ".1",  # study
        "0020|000e": series + ".2",  # series
        "0020|0037": "\\".join(f"{v:.10g}" for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
        "0008|103e": "synthetic",
    }
    for k in range(image.GetDepth()):
        slice_k = image[:, :, k]
        for tag, value in shared.items():
            slice_k.SetMetaData(tag, value)
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        slice_k.SetMetaData("0020|0032", "\\".join(f"{v:.10g}" for v in position))
        slice_k.SetMetaData("0020|0013", str(k + 1))
        slice_k.SetMetaData("0008|0018", f"{series}.3.{k + 1}")
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        with kept_locale():
            writer.Execute(slice_k)
    return folder


@contextmanager
def kept_locale():
    """GDCM's DICOM writer sets the process's locale to "C" (Python then decodes text files as
    ASCII): put it back, or every later test in the process reads text differently. (Reading a
    series leaves the locale alone; only these tests write DICOM.)"""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


class IdentityModel(Neuralizer):
    """Returns channel 0 of the target input: a mask of its bright voxels, whatever the context."""

    def forward(self, target_in, context_in, context_out, *, fast=None, **kwargs):
        return target_in[:, :1].clone()


@pytest.fixture(scope="session")
def identity_model() -> Neuralizer:
    model = IdentityModel(ModelConfig(channels=1)).eval()
    model.provenance = dict(GEOMETRY)
    return model
