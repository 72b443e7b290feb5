"""align="affine": context far away in world space and stored in another orientation is registered
to the target (SimpleITK, moments initialisation) before prediction."""

import nibabel as nib
import numpy as np

import neuralizer
from neuralizer.infer.checks import choose_alignment
from neuralizer.infer.io import Loaded

from .conftest import ContextMeanModel, oracle, phantom_volume, ras_affine
from .test_volume import reorient

SHAPE = (40, 46, 40)


def _dice(a, b):
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_affine_alignment_recovers_a_far_reoriented_context():
    image, labels = phantom_volume(SHAPE, seed=0)
    target = nib.Nifti1Image(image, ras_affine(origin=(-40.0, -46.0, -40.0)))
    c_img, c_lab = phantom_volume(SHAPE, seed=1)
    far = ras_affine(origin=(150.0, -200.0, 90.0))  # hundreds of mm away
    c_in = reorient(nib.Nifti1Image(c_img, far), "LIA")
    c_out = reorient(nib.Nifti1Image((c_lab == 7).astype(np.uint8), far), "LIA")
    model = oracle(ContextMeanModel)
    model.provenance = {"voxel_size_mm": 2.0, "image_size": [64, 64]}
    result = neuralizer.predict_volume(target, [c_in], [c_out], model=model)
    assert "alignment: affine" in result.steps
    predicted = np.asarray(result.prediction.dataobj) > 0
    assert _dice(predicted, labels == 7) > 0.8


def test_auto_alignment_only_when_grids_differ():
    data = np.ones((1, 4, 4, 4), np.float32)
    a = Loaded("a", data, nib.Nifti1Image(data[0], np.eye(4)))
    b = Loaded("b", data, nib.Nifti1Image(data[0], ras_affine()))
    assert choose_alignment("auto", a, [a]) == "none"
    assert choose_alignment("auto", a, [b]) == "affine"
    assert choose_alignment("none", a, [b]) == "none"
