"""MATLAB ``imresize`` (bicubic, antialiasing when shrinking) for any output size, in float64.

MATLAB's algorithm (``imresize.m``, ``contributions``): for each output sample ``i`` (1-based) along an axis
scaled by ``s``, the input coordinate is ``u = i / s + 0.5 * (1 - 1 / s)``; the weights are Keys' cubic
kernel (a = -0.5) at ``u - j``, stretched by ``1 / s`` when shrinking (antialiasing: ``s * cubic(s * x)``, the
support widened from 4 to ``4 / s``), normalised to sum 1, with a symmetric (mirror) border. The axes are
resized one after the other, the one shrunk most first (MATLAB's ``dimensionOrder``: ``sort(scale)``).
"""

from __future__ import annotations

import functools
import math

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    # Keys' cubic convolution kernel with a = -0.5 (MATLAB imresize's 'bicubic').
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    return near + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))


@functools.lru_cache(maxsize=256)
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix ``M`` with ``M @ x`` = MATLAB ``imresize`` of ``x`` along one axis to ``n_out``
    samples (bicubic; antialiased when ``n_out < n_in``; scale ``n_out / n_in``, as MATLAB takes it from an
    explicit output size)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"resize_matrix needs sizes >= 1, got {n_in} -> {n_out}")
    scale = n_out / n_in
    shrink = scale < 1
    width = 4.0 / scale if shrink else 4.0
    u = np.arange(1, n_out + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    w = scale * _cubic(scale * (u[:, None] - idx)) if shrink else _cubic(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])  # symmetric border
    col = mirror[np.mod(idx.astype(np.int64) - 1, mirror.size)]
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), taps), col.ravel()), w.ravel())
    m.setflags(write=False)
    return m


def imresize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(image, shape)`` of a float image (HxW or HxWxC), bicubic with antialiasing, float64.

    Values are not clipped (bicubic overshoots a little at edges, as in MATLAB on double input)."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"imresize takes HxW or HxWxC, got shape {x.shape}")
    rows, cols = int(shape[0]), int(shape[1])
    h, w = x.shape[:2]
    order = (0, 1) if rows / h <= cols / w else (1, 0)
    for axis in order:
        n_out = rows if axis == 0 else cols
        if n_out == x.shape[axis]:
            continue
        m = resize_matrix(x.shape[axis], n_out)
        x = np.tensordot(m, x, axes=([1], [0])) if axis == 0 else np.moveaxis(
            np.tensordot(m, np.moveaxis(x, 1, 0), axes=([1], [0])), 0, 1)
    return np.ascontiguousarray(x)


def short_side_shape(height: int, width: int, n: int) -> tuple[int, int]:
    """Output (rows, cols) with the short side ``n`` and the aspect ratio kept: the long side is
    ``ceil(n * long / short)``, as MATLAB's ``imresize(A, [n NaN])`` rounds the free dimension up."""
    if height <= width:
        return n, max(1, math.ceil(n * width / height - 1e-9))
    return max(1, math.ceil(n * height / width - 1e-9)), n


def resize_short(image: np.ndarray, n: int) -> np.ndarray:
    """``image`` (HxW or HxWxC) resized so that its short side is ``n`` pixels, aspect ratio kept: MATLAB
    ``imresize`` bicubic, antialiased when shrinking (:func:`imresize`); float64, unclipped. An image whose
    short side is already ``n`` comes back unchanged (as float64)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"resize_short: n must be an integer >= 1 (pixels of the short side), got {n!r}")
    x = np.asarray(image)
    if x.ndim not in (2, 3) or min(x.shape[:2]) < 1:
        raise ValueError(f"resize_short takes an HxW or HxWxC image, got shape {x.shape}")
    return imresize(x, short_side_shape(x.shape[0], x.shape[1], int(n)))
