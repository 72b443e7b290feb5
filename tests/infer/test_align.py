"""align="affine": context far away in world space and stored in another orientation is registered
to the target (SimpleITK, moments initialisation) before prediction."""

import nibabel as nib
import numpy as np

import neuralizer
from neuralizer.evaluate.metrics import dice
from neuralizer.infer.checks import choose_alignment

from .conftest import ContextMeanModel, oracle, phantom_volume, ras_affine
from .test_volume import reorient

SHAPE = (40, 46, 40)


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
    assert dice(predicted, labels == 7) > 0.8


def test_affine_is_the_default_even_on_a_shared_grid():
    """Another scan written on the target's own grid is still registered: a shared grid says
    nothing about head position (here the context is the target moved by 10 mm)."""
    image, labels = phantom_volume(SHAPE, seed=0)
    target = nib.Nifti1Image(image, ras_affine())
    moved = [np.roll(a, 5, axis=0) for a in (image, (labels == 7).astype(np.uint8))]
    c_in, c_out = (nib.Nifti1Image(a, ras_affine()) for a in moved)
    model = oracle(ContextMeanModel)
    model.provenance = {"voxel_size_mm": 2.0, "image_size": [64, 64]}
    scores = {}
    for align in ("affine", "none"):
        kwargs = {} if align == "affine" else {"align": "none"}
        result = neuralizer.predict_volume(target, [c_in], [c_out], model=model, **kwargs)
        assert f"alignment: {align}" in result.steps
        scores[align] = dice(np.asarray(result.prediction.dataobj) > 0, labels == 7)
    assert scores["affine"] > 0.8 > scores["none"], scores
    assert choose_alignment("none") == "none"


def test_registrations_side_by_side_equal_one_after_the_other():
    import torch

    from neuralizer.data.register import register_affine
    from neuralizer.infer.align import register_all
    from neuralizer.infer.io import Loaded

    fixed, _ = phantom_volume(SHAPE, seed=0)
    moving = []
    for seed in (1, 2, 3):
        image, _ = phantom_volume(SHAPE, seed=seed)
        affine = ras_affine(origin=(-40.0 + 3 * seed, -46.0, -40.0))
        moving.append(Loaded(f"m{seed}", image[None], nib.Nifti1Image(image, affine)))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        together = register_all(fixed, ras_affine(), moving, seed=4)
    finally:
        torch.set_num_threads(threads)
    for item, transform in zip(moving, together, strict=True):
        alone = register_affine(fixed, ras_affine(), item.data[0], item.image.affine, seed=4)
        assert transform.GetParameters() == alone.GetParameters()
        assert transform.GetFixedParameters() == alone.GetFixedParameters()
