"""Smooth H×W fields from small coarse grids (elastic displacements, bias fields), fast.

``upsample_coarse(coarse, shape)`` equals ``scipy.ndimage.zoom(coarse, zoom, order=3,
mode="nearest", grid_mode=True)`` but computes it as ``W_h @ coarse @ W_w.T``: cubic-spline zoom
is linear and separable, so each 1D operator is a small matrix, built once per size and cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage


@lru_cache(maxsize=64)
def _zoom_matrix(n_coarse: int, n_fine: int) -> np.ndarray:
    """n_fine×n_coarse matrix of the 1D cubic-spline zoom (columns = zoomed unit vectors)."""
    eye = np.eye(n_coarse)
    cols = [
        ndimage.zoom(e, n_fine / n_coarse, order=3, mode="nearest", grid_mode=True)[:n_fine]
        for e in eye
    ]
    matrix = np.stack(cols, axis=1)
    matrix.setflags(write=False)
    return matrix


def upsample_coarse(coarse, shape: tuple[int, int]) -> np.ndarray:
    """g_h×g_w coarse grid -> H×W smooth field (float64), cubic spline over the whole image."""
    coarse = np.asarray(coarse, np.float64)
    w_h = _zoom_matrix(coarse.shape[0], shape[0])
    w_w = _zoom_matrix(coarse.shape[1], shape[1])
    return w_h @ coarse @ w_w.T
