"""MATLAB behaviours that metric ports reproduce: ``round``, ``fspecial('gaussian')`` and ``imresize(I, 0.5)``.

One place for them, so that NIQE, PIQE and BRISQUE agree on what "as MATLAB does" means; also the
generalised-Gaussian (GGD) and asymmetric GGD (AGGD) shape tables that BRISQUE's and NIQE's moment-matching
fits search, and MATLAB rgb2gray's luma coefficients (``medgap.io.frame.LUMA``).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from numba import njit
from scipy.special import gamma

from medgap.io.frame import LUMA

__all__ = ["AGGD_MEAN", "AGGD_SCALE", "GAM", "LUMA", "R_AGGD", "R_GGD", "fspecial_gaussian", "gaussian_taps",
           "imgaussfilt", "imresize_contributions", "imresize_half", "matlab_round"]

GAM = 0.2 + 0.001 * np.arange(9801)
"""The shape grid of LIVE's BRISQUE and NIQE releases: MATLAB ``0.2:0.001:10``."""
R_GGD = gamma(1.0 / GAM) * gamma(3.0 / GAM) / gamma(2.0 / GAM) ** 2
"""GGD: E[x^2] / E[|x|]^2 for each shape in ``GAM`` (BRISQUE's ``estimateggdparam``)."""
R_AGGD = gamma(2.0 / GAM) ** 2 / (gamma(1.0 / GAM) * gamma(3.0 / GAM))  # strictly increasing in GAM
"""AGGD: the ratio ``estimateaggdparam`` matches, for each shape in ``GAM``."""
AGGD_SCALE = np.sqrt(gamma(1.0 / GAM) / gamma(3.0 / GAM))
"""AGGD: the factor from a side's standard deviation to its scale, per shape."""
AGGD_MEAN = gamma(2.0 / GAM) / gamma(1.0 / GAM)
"""AGGD: the mean's factor (times right minus left scale), per shape."""


def matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: halves away from zero (NumPy's ``round`` sends halves to the even neighbour)."""
    x = np.asarray(x, dtype=np.float64)
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


def fspecial_gaussian(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: a normalised ``size`` x ``size`` Gaussian window.

    ``imgaussfilt(I, sigma, 'FilterSize', size)`` filters with the same window.
    """
    half = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - half
    w = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sigma * sigma))
    w[w < np.finfo(np.float64).eps * w.max()] = 0.0  # as fspecial does; no effect for size 7, sigma 7/6
    return w / w.sum()


def gaussian_taps(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """The normalised 1-D Gaussian whose outer product is ``fspecial('gaussian', size, sigma)``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def imgaussfilt(img: np.ndarray, sigma: float = 7.0 / 6.0, size: int = 7) -> np.ndarray:
    """MATLAB ``imgaussfilt(img, sigma, 'FilterSize', size, 'Padding', 'replicate')``, which equals
    ``imfilter(img, fspecial('gaussian', size, sigma), 'replicate')``: the window is the outer product of a
    normalised 1-D Gaussian, applied separably (float64; results differ from MATLAB's in the last bits)."""
    taps = gaussian_taps(size, sigma)
    return cv2.sepFilter2D(np.asarray(img, dtype=np.float64), cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REPLICATE)


def _cubic(x: np.ndarray) -> np.ndarray:
    # Keys' cubic convolution kernel with a = -0.5, as MATLAB imresize's 'bicubic'.
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))


@functools.lru_cache(maxsize=512)
def imresize_contributions(n_in: int, scale: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB imresize's ``contributions`` for a downscale (``scale < 1``), bicubic, antialiasing on.

    Returns ``(weights, indices)``, both ``(ceil(n_in * scale), taps)``: output sample ``i`` is
    ``sum_k weights[i, k] * input[indices[i, k]]`` (0-based indices, symmetric border).
    """
    if not 0 < scale < 1:
        raise ValueError(f"imresize_contributions handles downscaling only (0 < scale < 1), got {scale}")
    n_out = int(np.ceil(n_in * scale))
    width = 4.0 / scale  # the cubic kernel's support (4) widened by 1/scale for antialiasing
    u = np.arange(1, n_out + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)  # 1-based centres
    left = np.floor(u - width / 2.0)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    w = scale * _cubic(scale * (u[:, None] - idx))
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])  # MATLAB's symmetric border
    idx = mirror[np.mod(idx.astype(np.int64) - 1, mirror.size)]
    keep = np.any(w != 0, axis=0)  # MATLAB drops all-zero weight columns
    return np.ascontiguousarray(w[:, keep]), np.ascontiguousarray(idx[:, keep])


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def _resize_first_axis(img, weights, indices):
    """out[i, :] = sum_k weights[i, k] * img[indices[i, k], :], tap by tap in MATLAB's order; the inner loop
    runs along contiguous rows (vectorised)."""
    n_out, taps = weights.shape
    w = img.shape[1]
    out = np.zeros((n_out, w))
    for i in range(n_out):
        orow = out[i]
        for k in range(taps):
            wk = weights[i, k]
            src = img[indices[i, k]]
            for j in range(w):
                orow[j] += wk * src[j]
    return out


def imresize_half(img: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(img, 0.5)`` of a double image: bicubic, antialiasing, output ``ceil(size / 2)``.

    MATLAB resizes along the first dimension (rows), then the second; so does this.
    """
    img = np.ascontiguousarray(img, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"imresize_half takes a 2-D image, got shape {img.shape}")
    rows = _resize_first_axis(img, *imresize_contributions(img.shape[0]))
    # the column pass also runs along rows: OpenCV's transpose is a cheap blocked copy
    return cv2.transpose(_resize_first_axis(cv2.transpose(rows), *imresize_contributions(img.shape[1])))
