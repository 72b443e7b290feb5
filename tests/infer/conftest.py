"""Fixtures for the prediction tests: tiny models, oracle models and small synthetic volumes."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from neuralizer.model import ModelConfig, Neuralizer, save_checkpoint

#: A tiny field of view keeps mechanics tests fast: 32×32 pixels of 2 mm.
GEOMETRY = {"voxel_size_mm": 2.0, "image_size": [32, 32]}


def tiny_model(seed: int = 0) -> Neuralizer:
    torch.manual_seed(seed)
    model = Neuralizer(ModelConfig(channels=8)).eval()
    model.provenance = dict(GEOMETRY)
    return model


class IdentityModel(Neuralizer):
    """Returns channel 0 of the target input: 'the output looks like the input'."""

    def forward(self, target_in, context_in, context_out, *, fast=None, **kwargs):
        return target_in[:, :1].clone()


class ContextMeanModel(Neuralizer):
    """Returns the voxel-wise mean of the context outputs (the context-mean baseline)."""

    def forward(self, target_in, context_in, context_out, *, fast=None, **kwargs):
        return context_out.mean(dim=1)


def oracle(cls) -> Neuralizer:
    model = cls(ModelConfig(channels=1)).eval()
    model.provenance = dict(GEOMETRY)
    return model


def phantom_volume(shape=(24, 28, 24), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image, labels) X×Y×Z: an asymmetric ellipsoid 'brain' with two labelled blobs.

    The intensity ramps along every axis, so a flipped or permuted result would not match.
    """
    rng = np.random.default_rng(seed)
    idx = np.indices(shape).astype(np.float32)
    centre = (np.asarray(shape) - 1) / 2
    radius = np.asarray(shape) * 0.38
    inside = (((idx - centre[:, None, None, None]) / radius[:, None, None, None]) ** 2).sum(0) < 1
    ramp = 0.5 + 0.3 * idx[0] / shape[0] + 0.15 * idx[1] / shape[1] + 0.05 * idx[2] / shape[2]
    image = np.where(inside, ramp + 0.02 * rng.standard_normal(shape), 0).astype(np.float32)
    labels = np.zeros(shape, np.int16)

    def box(fractions):
        return tuple(
            slice(round(a * n), round(b * n)) for (a, b), n in zip(fractions, shape, strict=True)
        )

    labels[box(((6 / 24, 11 / 24), (8 / 28, 14 / 28), (9 / 24, 14 / 24)))] = 3
    labels[box(((14 / 24, 19 / 24), (12 / 28, 19 / 28), (8 / 24, 13 / 24)))] = 7
    labels[~inside] = 0
    image[labels == 3] *= 0.6
    image[labels == 7] *= 1.3
    return image, labels


def ras_affine(voxel_mm: float = 2.0, origin=(-24.0, -28.0, -24.0)) -> np.ndarray:
    affine = np.diag([voxel_mm] * 3 + [1.0])
    affine[:3, 3] = origin
    return affine


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, tiny_model(), provenance=GEOMETRY)
    return path


@pytest.fixture
def volume_files(tmp_path: Path):
    """Target and three context pairs (image, binary mask, label map) as NIfTI files."""
    files = {}
    for i in range(4):
        image, labels = phantom_volume(seed=i)
        affine = ras_affine()
        for kind, data in (("img", image), ("mask", (labels == 3).astype(np.uint8)),
                           ("lab", labels)):  # fmt: skip
            path = tmp_path / f"{kind}{i}.nii.gz"
            nib.save(nib.Nifti1Image(data, affine), path)
            files[f"{kind}{i}"] = path
    return files
