"""predict_volume: native space in any orientation, header hygiene, output scale and types."""

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

import neuralizer
from neuralizer.infer.plan import ALL_VIEWS
from neuralizer.infer.volume import from_slices, fuse_views, to_slices

from .conftest import (
    ContextMeanModel,
    IdentityModel,
    oracle,
    phantom_volume,
    ras_affine,
    tiny_model,
)


def reorient(image: nib.Nifti1Image, codes: str) -> nib.Nifti1Image:
    """The same scan stored with axis codes ``codes`` (e.g. "LIA"): same world, other voxels."""
    data = np.asanyarray(image.dataobj)
    start = axcodes2ornt(nib.aff2axcodes(image.affine))
    transform = ornt_transform(start, axcodes2ornt(tuple(codes)))
    out = apply_orientation(data, transform)
    affine = image.affine @ inv_ornt_aff(transform, data.shape)
    return nib.Nifti1Image(out, affine)


def _context(n: int = 2, offset: int = 1):
    pairs = [phantom_volume(seed=offset + i) for i in range(n)]
    c_in = [nib.Nifti1Image(im, ras_affine()) for im, _ in pairs]
    c_mask = [nib.Nifti1Image((lab == 3).astype(np.uint8), ras_affine()) for _, lab in pairs]
    c_lab = [nib.Nifti1Image(lab, ras_affine()) for _, lab in pairs]
    return c_in, c_mask, c_lab


def test_slices_round_trip_and_follow_the_training_convention():
    volume = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    for axis in range(3):
        assert np.array_equal(from_slices(to_slices(volume, axis), axis), volume)
    coronal = to_slices(volume, 1)
    assert np.array_equal(coronal[2], volume[:, 2, :].T[::-1])  # data.subjects._slice


@pytest.fixture(scope="module")
def ras_reference():
    """The RAS scan, its context and the result every orientation must reproduce."""
    image, _ = phantom_volume(seed=0)
    ras = nib.Nifti1Image(image, ras_affine())
    c_in, c_mask, _ = _context()
    model = tiny_model()
    run = dict(model=model, align="none", batch_size=64)
    reference = neuralizer.predict_volume(ras, c_in, c_mask, **run)
    return ras, c_in, c_mask, run, reference


@pytest.mark.parametrize("codes", ["LPI", "LIA", "PSR"])
def test_orientation_round_trip(codes, ras_reference):
    ras, c_in, c_mask, run, reference = ras_reference
    target = reorient(ras, codes)
    assert "".join(nib.aff2axcodes(target.affine)) == codes
    result = neuralizer.predict_volume(target, c_in, c_mask, **run)
    out = result.prediction
    assert out.shape == target.shape
    assert np.array_equal(out.affine, target.affine)
    back = reorient(out, "RAS")
    assert np.array_equal(back.affine, ras.affine)
    assert np.array_equal(np.asarray(back.dataobj), np.asarray(reference.prediction.dataobj))
    assert np.allclose(
        np.asarray(reorient(result.probabilities, "RAS").dataobj),
        np.asarray(reference.probabilities.dataobj), atol=1e-5,
    )  # fmt: skip


def test_identity_oracle_reproduces_the_anatomy_in_every_orientation():
    image, _ = phantom_volume(seed=0)
    ras = nib.Nifti1Image(image, ras_affine())
    c_in, _, _ = _context()
    for codes in ("RAS", "LIA"):
        target = reorient(ras, codes)
        result = neuralizer.predict_volume(
            target, c_in, c_in, model=oracle(IdentityModel), align="none"
        )
        back = np.asarray(reorient(result.prediction, "RAS").dataobj)
        inside = image > 0
        assert np.corrcoef(back[inside], image[inside])[0, 1] > 0.9


def test_header_hygiene():
    image, _ = phantom_volume(seed=0)
    target = nib.Nifti1Image((image * 1000).astype(np.int16), ras_affine())
    target.header.set_slope_inter(0.5, 10.0)  # scaling of the input must not reach the output
    target.set_qform(ras_affine(), code=1)
    target.set_sform(ras_affine(), code=4)
    target.header["descrip"] = b"my scan"
    target = nib.Nifti1Image.from_bytes(target.to_bytes())
    c_in, c_mask, _ = _context()
    result = neuralizer.predict_volume(
        target, c_in, c_mask, model=tiny_model(), batch_size=64, align="none"
    )
    assert result.uncertainty is None
    out = nib.Nifti1Image.from_bytes(result.prediction.to_bytes())
    assert int(out.header["qform_code"]) == 1 and int(out.header["sform_code"]) == 4
    assert np.allclose(out.get_qform(), target.get_qform())
    assert np.allclose(out.get_sform(), target.get_sform())
    assert out.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1}
    assert out.header["descrip"].tobytes().startswith(b"my scan")
    assert out.header.get_zooms() == target.header.get_zooms()


def test_image_output_in_the_context_outputs_scale():
    image, _ = phantom_volume(seed=0)
    target = nib.Nifti1Image(image, ras_affine())
    c_in, _, _ = _context(3)
    c_out = [nib.Nifti1Image(np.asarray(c.dataobj) * 1000 + 100 * (c.dataobj[...] > 0),
                             ras_affine()) for c in c_in]  # fmt: skip
    result = neuralizer.predict_volume(
        target, c_in, c_out, model=oracle(IdentityModel), align="none"
    )
    out = np.asarray(result.prediction.dataobj)
    assert result.task == "image" and out.dtype == np.float32
    inside = image > 0.3
    expected = image * 1000 + 100
    # The target maps to the outputs' percentile range: close to 1000·x + 100 inside the brain.
    assert np.median(np.abs(out[inside] - expected[inside])) < 60
    assert out.max() > 800


def test_labels_keep_their_values_and_type():
    _, labels = phantom_volume(seed=0)
    labels = labels.astype(np.int32)
    labels[labels == 7] = 300  # needs int16
    lab_img = nib.Nifti1Image(labels, ras_affine())
    image, _ = phantom_volume(seed=0)
    target = nib.Nifti1Image(image, ras_affine())
    result = neuralizer.predict_volume(
        target, [target], [lab_img], model=oracle(ContextMeanModel), labels="all", align="none"
    )
    out = np.asarray(result.prediction.dataobj)
    assert result.task == "labels" and result.label_values == (3, 300)
    assert result.prediction.get_data_dtype() == np.int16
    assert (out == labels).mean() > 0.97
    assert result.probabilities.shape == (*labels.shape, 2)


def test_seed_reproducibility_and_ensembles():
    image, _ = phantom_volume(seed=0)
    target = nib.Nifti1Image(image, ras_affine())
    c_in, _, _ = _context(3)
    kw = dict(model=tiny_model(), ensemble=3, task="image", batch_size=64, align="none")
    c_img = c_in[::-1]
    a = neuralizer.predict_volume(target, c_in, c_img, seed=5, **kw)
    b = neuralizer.predict_volume(target, c_in, c_img, seed=5, **kw)
    c = neuralizer.predict_volume(target, c_in, c_img, seed=6, **kw)
    pa, pb, pc = (np.asarray(r.prediction.dataobj) for r in (a, b, c))
    assert np.array_equal(pa, pb)
    assert not np.array_equal(pa, pc)
    sa, sc = np.asarray(a.uncertainty.dataobj), np.asarray(c.uncertainty.dataobj)
    assert (sa >= 0).all() and sa.max() > 0
    # Means of 3 passes from two seeds differ by about their standard error, not more.
    scale = np.abs(np.asarray(a.prediction.dataobj)).max()
    within = np.abs(pa - pc) <= 3 * (sa + sc) + 1e-4 * scale
    assert within.mean() > 0.99


def test_all_views_average_the_three_slice_directions(ras_reference):
    ras, c_in, c_mask, run, _ = ras_reference
    single = [neuralizer.predict_volume(ras, c_in, c_mask, axis=a, **run) for a in ALL_VIEWS]
    fused = neuralizer.predict_volume(ras, c_in, c_mask, axis="all", **run)
    assert fused.prediction.shape == ras.shape
    assert np.array_equal(fused.prediction.affine, ras.affine)
    mean = np.mean([np.asarray(r.probabilities.dataobj) for r in single], axis=0)
    assert np.allclose(np.asarray(fused.probabilities.dataobj), mean, atol=1e-6)
    assert np.array_equal(np.asarray(fused.prediction.dataobj), (mean >= 0.5).astype(np.uint8))
    assert sum("slices" in s for s in fused.steps) == 3
    with pytest.raises(ValueError, match="unknown axis"):
        neuralizer.predict_volume(ras, c_in, c_mask, axis="oblique", **run)


def test_fused_spread_is_the_spread_of_all_passes_pooled():
    rng = np.random.default_rng(0)
    passes = [rng.normal(v, 1 + v, size=(4, 2, 3)) for v in range(3)]  # 3 views, 4 passes each
    per_view = [(p.mean(axis=0), p.std(axis=0)) for p in passes]
    maps, spread = fuse_views(per_view)
    pooled = np.concatenate(passes)
    assert np.allclose(maps, pooled.mean(axis=0)) and np.allclose(spread, pooled.std(axis=0))
    assert fuse_views([(m, None) for m, _ in per_view])[1] is None


@pytest.mark.parametrize("two_d", [False, True])
def test_inputs_are_rescaled_with_the_models_recorded_percentiles(two_d):
    """Prediction reads the intensity normalisation from the model's geometry: the identity
    oracle's mask (rescaled target above 0.5) shrinks when the recorded low percentile rises, and
    the default geometry reproduces a model that records none."""
    from neuralizer.model.metadata import Geometry

    image, labels = phantom_volume(seed=0)
    c_in, c_mask, _ = _context()

    def voxels(percentiles=None) -> int:
        model = oracle(IdentityModel)
        if percentiles is not None:
            model.geometry = Geometry(image_size=(32, 32), voxel_size_mm=2.0,
                                      percentiles=percentiles)  # fmt: skip
        if two_d:
            mid = image.shape[1] // 2
            masks = [np.asarray(m.dataobj)[:, mid] for m in c_mask]
            inputs = [np.asarray(c.dataobj)[:, mid] for c in c_in]
            result = neuralizer.predict(image[:, mid], inputs, masks, model=model, spacing=2.0)
            return int(np.asarray(result.prediction).sum())
        target = nib.Nifti1Image(image, ras_affine())
        result = neuralizer.predict_volume(target, c_in, c_mask, model=model, align="none")
        return int(np.asarray(result.prediction.dataobj).sum())

    default = voxels()
    assert voxels((0.5, 99.5)) == default
    assert 0 < voxels((60.0, 99.5)) < default
