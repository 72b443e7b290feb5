"""A tiny geometric head phantom that satisfies the :class:`~neuralizer.data.SliceSource` contract.

Ellipses stand in for scalp, skull, CSF, cortex, white matter, ventricles and deep nuclei, using the
``TISSUE_CLASSES`` of :mod:`neuralizer.data.render`. Two label protocols are provided: "phantom"
(left/right white matter, ventricles, left/right deep nuclei, cortex) and "quadrants" (brain split
into four quadrants). It is used by the tests and as a fallback for the task gallery; it is not
anatomy and never used for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralizer.data.subject import SliceSubject

PHANTOM_LABEL_NAMES: dict[str, dict[int, str]] = {
    "phantom": {
        1: "Left-White-Matter",
        2: "Right-White-Matter",
        3: "Ventricles",
        4: "Left-Nucleus",
        5: "Right-Nucleus",
        6: "Cortex",
    },
    "quadrants": {1: "upper-left", 2: "upper-right", 3: "lower-left", 4: "lower-right"},
}


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def phantom_subject(seed: int, position: float = 0.5, size: int = 64) -> SliceSubject:
    """One phantom subject (H = W = ``size``); shapes jitter with ``seed``, shrink off-centre."""
    rng = np.random.default_rng([seed, 7])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = size / 2 + rng.normal(0, size * 0.02, 2)
    scale = size * (0.5 + 0.5 * np.sin(np.pi * np.clip(position, 0.05, 0.95)))
    r = scale * rng.uniform(0.9, 1.0, 2)
    head = _ellipse(yy, xx, c[0], c[1], 0.46 * r[0], 0.40 * r[1])
    fat = _ellipse(yy, xx, c[0], c[1], 0.44 * r[0], 0.38 * r[1])
    skull = _ellipse(yy, xx, c[0], c[1], 0.41 * r[0], 0.35 * r[1])
    csf = _ellipse(yy, xx, c[0], c[1], 0.37 * r[0], 0.31 * r[1])
    brain = _ellipse(yy, xx, c[0], c[1], 0.34 * r[0], 0.28 * r[1])
    wm = _ellipse(yy, xx, c[0], c[1], 0.27 * r[0], 0.21 * r[1])
    vent = _ellipse(yy, xx, c[0], c[1], 0.10 * r[0], 0.05 * r[1] + 1)
    dx = 0.11 * r[1] + rng.normal(0, 1)
    nuc_l = _ellipse(yy, xx, c[0] + 0.05 * r[0], c[1] - dx, 0.06 * r[0] + 1, 0.04 * r[1] + 1)
    nuc_r = _ellipse(yy, xx, c[0] + 0.05 * r[0], c[1] + dx, 0.06 * r[0] + 1, 0.04 * r[1] + 1)

    tissue = np.zeros((size, size), np.int16)
    tissue[head] = 11
    tissue[fat] = 12
    tissue[skull] = 10
    tissue[csf] = 9
    tissue[brain] = 2
    tissue[wm] = 3
    tissue[nuc_l | nuc_r] = 4
    tissue[vent] = 1

    left = xx < c[1]
    upper = yy < c[0]
    labels = np.zeros((size, size), np.int32)
    labels[brain] = 6
    labels[wm & left] = 1
    labels[wm & ~left] = 2
    labels[vent] = 3
    labels[nuc_l] = 4
    labels[nuc_r] = 5
    quadrants = np.zeros((size, size), np.int32)
    quadrants[brain & upper & left] = 1
    quadrants[brain & upper & ~left] = 2
    quadrants[brain & ~upper & left] = 3
    quadrants[brain & ~upper & ~left] = 4
    # "real" images: a fixed T1-like lookup, for the code paths that use real images directly
    t1_lut = np.array([0, 0.15, 0.5, 0.85, 0.64, 0.52, 0.55, 0.8, 0.74, 0.12, 0.08, 0.55, 0.95])
    head_image = t1_lut[tissue].astype(np.float32)
    return SliceSubject(
        subject_id=f"phantom/seed={seed}",
        tissue=tissue,
        brain_mask=brain,
        labels={"phantom": labels, "quadrants": quadrants},
        label_names=PHANTOM_LABEL_NAMES,
        images={"t1_brain": head_image * brain, "head": head_image},
        masks={"head_brain": brain.copy()},
        position=float(position),
        seed=int(seed),
    )


@dataclass(frozen=True)
class PhantomSource:
    """``n_subjects`` phantom subjects of ``size``×``size`` pixels (a :class:`SliceSource`)."""

    n_subjects: int = 8
    size: int = 64
    first_seed: int = 0

    def __len__(self) -> int:
        return self.n_subjects

    def get(self, index: int, position: float) -> SliceSubject:
        if not 0 <= index < self.n_subjects:
            raise IndexError(f"subject index {index} out of range 0..{self.n_subjects - 1}")
        return phantom_subject(self.first_seed + index, position, self.size)
