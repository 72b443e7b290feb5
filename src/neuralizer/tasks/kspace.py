"""Cartesian k-space helpers shared by undersampled reconstruction and motion correction.

Conventions: ``kspace(image) = fft2(image, norm="ortho")`` in numpy's unshifted order; a k-space
*line* ``l`` along phase-encode ``axis`` is every sample whose index along ``axis`` is ``l``. Line
indices are unshifted (0 is the centre frequency).
"""

from __future__ import annotations

import numpy as np


def kspace(image: np.ndarray) -> np.ndarray:
    """H×W real or complex image -> H×W complex128 k-space (orthonormal FFT, double precision)."""
    return np.fft.fft2(np.asarray(image, np.complex128), norm="ortho")


def image_from_kspace(k: np.ndarray) -> np.ndarray:
    """H×W complex k-space -> H×W complex image (inverse of :func:`kspace`)."""
    return np.fft.ifft2(k, norm="ortho")


def line_mask(shape: tuple[int, int], axis: int, lines) -> np.ndarray:
    """H×W bool mask that is True on the given k-space lines along ``axis``."""
    sel = np.zeros(shape[axis], bool)
    sel[np.asarray(lines, dtype=int)] = True
    return np.broadcast_to(sel[:, None] if axis == 0 else sel[None, :], shape)


def centre_lines(n: int, n_centre: int) -> np.ndarray:
    """Unshifted indices of the ``n_centre`` lowest-frequency lines of ``n``."""
    freq = np.abs(np.fft.fftfreq(n) * n)
    return np.sort(np.argsort(freq, kind="stable")[:n_centre])


def shifted_position(n: int) -> np.ndarray:
    """For each unshifted line index, its position in fftshift order (0 = most negative freq)."""
    return np.fft.fftshift(np.arange(n)).argsort()
