import numpy as np
import pytest

from neuralizer.data import (
    BRAIN_CLASSES,
    PROFILE_NAMES,
    TISSUE_CLASSES,
    SliceSubject,
    render,
    sample_profile,
)
from neuralizer.data.render import N_RENDER_CLASSES


def _phantom(h: int = 64, w: int = 56) -> SliceSubject:
    """Concentric ellipses: fat, scalp, skull, CSF around a WM brain with GM rim and ventricles."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    tissue = np.zeros((h, w), np.int16)
    layers = [(0.98, 12), (0.92, 11), (0.86, 10), (0.8, 9), (0.74, 2), (0.6, 3), (0.2, 1)]
    for radius, cls in layers:
        tissue[r < radius] = cls
    brain = np.isin(tissue, BRAIN_CLASSES)
    return SliceSubject(subject_id="phantom", tissue=tissue, brain_mask=brain)


def test_tables_cover_every_class():
    assert TISSUE_CLASSES[0] == "background"
    rng = np.random.default_rng(0)
    for name in PROFILE_NAMES:
        profile = sample_profile(name, rng)
        # Every tissue class, then every real-anatomy render class.
        assert set(profile.intensities) == set(range(N_RENDER_CLASSES))
        assert set(TISSUE_CLASSES) < set(profile.intensities)
        assert all(0.0 <= v <= 1.0 for v in profile.intensities.values())
    with pytest.raises(ValueError, match="unknown contrast profile"):
        sample_profile("ct", rng)


@pytest.mark.parametrize("head", [False, True])
def test_render_range_dtype_and_mask(head):
    subject = _phantom()
    for seed in range(5):
        rng = np.random.default_rng(seed)
        image = render(subject, sample_profile("synthetic", rng), rng, head=head)
        assert image.dtype == np.float32 and image.shape == subject.shape
        assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.5
        if not head:
            assert np.all(image[~subject.brain_mask] == 0)
        else:
            assert image[subject.tissue == 11].mean() > 0  # the scalp is visible


def test_render_deterministic_and_seed_dependent():
    subject = _phantom()
    profile = sample_profile("t1", np.random.default_rng(1))
    a = render(subject, profile, np.random.default_rng(7))
    b = render(subject, profile, np.random.default_rng(7))
    c = render(subject, profile, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_named_contrasts_order_tissues():
    """T1: WM brighter than GM brighter than CSF; T2 and FLAIR-like the reverse for CSF/WM."""
    subject = _phantom()
    means = {}
    for name in ("t1", "t2"):
        rng = np.random.default_rng(3)
        image = render(subject, sample_profile(name, rng), rng)
        means[name] = {k: image[subject.tissue == k].mean() for k in (1, 2, 3)}
    assert means["t1"][3] > means["t1"][2] > means["t1"][1]
    assert means["t2"][1] > means["t2"][2] > means["t2"][3]
