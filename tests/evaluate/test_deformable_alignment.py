"""The deformable-alignment comparison's choice of structures (issue 32)."""

import numpy as np

from neuralizer.evaluate.deformable_alignment import largest_structures


def test_largest_structures_by_mean_volume_without_csf_or_head_labels():
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(3):
        m = np.zeros((20, 20, 20), np.int16)
        m[:10] = 2  # the largest aseg structure
        m[10:12] = 24  # CSF around the brain: larger than 17, left out
        m[12:15] = 165  # a head label, not aseg: left out
        m[15:16, :10] = 17
        m[16:17, : rng.integers(1, 4)] = 53  # smaller than 17 in every map
        maps.append(m)
    assert largest_structures(maps, n=3) == (2, 17, 53)


def test_recorded_registrations_are_replayed_only_for_the_same_target():
    """The atlas baseline reuses the deformable mode's B-spline registrations (and counts their
    seconds) when its target image is the one they were recorded for; another one registers."""
    from neuralizer.evaluate.deformable_alignment import _Recorder

    rng = np.random.default_rng(1)
    z = np.linspace(-1, 1, 16)
    blob = np.exp(-4 * (z[:, None, None] ** 2 + z[None, :, None] ** 2 + z[None, None] ** 2))
    fixed = blob.astype(np.float32)
    pairs = [(np.roll(blob, 1, axis=0)[None].astype(np.float32),
              (np.roll(blob, 1, axis=0) > 0.5)[None].astype(np.float32))]  # fmt: skip
    record = _Recorder()
    first = record(fixed, pairs, 2.0, discrete=True)
    assert record.seconds > 0 and first[0][0].shape == (1, 16, 16, 16)
    assert record.replay(fixed.copy(), pairs, 2.0, discrete=True) is first
    assert record.replayed == record.seconds
    other = fixed + 0.1 * rng.random(fixed.shape).astype(np.float32)
    again = record.replay(other, pairs, 2.0, discrete=True)
    assert again is not first and record.replayed == 0.0
    assert np.array_equal(record.fixed, other)
