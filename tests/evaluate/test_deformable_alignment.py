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
