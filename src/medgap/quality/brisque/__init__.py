"""BRISQUE, faithful to the authors' release (Mittal, Moorthy, Bovik 2012; LIVE's MATLAB ``brisquescore.m``).

The release, step by step, and where medgap follows it:

1. Colour input goes through ``uint8`` and MATLAB ``rgb2gray`` (rounded BT.601 luma); gray input is used as
   is, as double on the 0-255 scale.
2. MSCN: ``mu = filter2(w, I, 'same')`` with ``w = fspecial('gaussian', 7, 7/6)`` normalised (correlation,
   zero padding), ``sigma = sqrt(|filter2(w, I.^2) - mu.^2|)``, ``MSCN = (I - mu) ./ (sigma + 1)``.
3. GGD fit of MSCN by moment matching on ``gam = 0.2:0.001:10`` -> (alpha, sigma^2).
4. Products with ``circshift(MSCN, s)`` for s in [0 1], [1 0], [1 1], [-1 1]; AGGD fit of each on the same
   grid -> (alpha, eta, sigma_l^2, sigma_r^2). 18 features per scale.
5. Second scale: MATLAB ``imresize(I, 0.5)`` of the double image (bicubic, antialiasing, symmetric border).
6. Features written with ``%f``; ``svm-scale -r allrange`` maps them to [-1, 1] and writes ``%g``;
   ``svm-predict`` evaluates the epsilon-SVR (RBF, gamma 0.05). No clipping: scores outside 0-100 are kept.

Exact zeros and rounding noise (medgap's stated policy): where ``I - mu`` is 0 in exact arithmetic, the
release's MSCN is floating-point rounding noise (about 1e-14) whose sign depends on summation order; the AGGD
fits count every product by its sign, so no implementation reproduces MATLAB there bit for bit. medgap sets
MSCN to exactly 0 at such pixels, at both scales, and nowhere else:

- constant windows: the zero-padded 7x7 window spans at most ``FLAT_REL_TOL * (1 + max |I|)`` of that
  scale's image (a float64 resize leaves constant areas constant to a few ulp; genuine steps of integer data
  are at least 1/65536 grey levels at the half scale);
- exact cancellations (a symmetric window: rows 0 0 1 1 1 2 2 around a 1): ``|I - mu| <= CANCEL_TOL *
  sqrt(I^2 + E[I^2])``, i.e. below the rounding error of computing ``mu`` (a few ulp of the window's
  magnitude). On 76 images of ../shared/data rounding residues stay below 10 eps of that magnitude and genuine
  deviations start above 1e3 eps.

The fixed floor of metric version 1 (``|I - mu| <= 1e-8``) was wrong at the half scale, whose
image is not integer-valued: it zeroed genuine deviations such as -8.5e-9 in a window spanning 1e-3 grey levels
(natural/n04332243_strainer.JPEG moved by 0.35). ``brisque_flat_fraction`` is the fraction of full-scale pixels
with a constant window. An all-zero neighbourhood gives exactly 0 in MATLAB too, so only constant non-zero
areas and exact cancellations are affected.

References: A. Mittal, A. K. Moorthy, A. C. Bovik, "No-Reference Image Quality Assessment in the Spatial
Domain", IEEE TIP 21(12), 2012; "BRISQUE Software Release", LIVE, UT Austin, 2011 (notice in
``data/NOTICE-UT-Austin.txt``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import gamma as _gamma

from medgap.quality._matlab import GAM, LUMA, R_AGGD, R_GGD, gaussian_taps, imresize_half
from medgap.quality.brisque import _kernels
from medgap.quality.brisque.model import SvrModel, default_model, load_model
from medgap.quality.registry import register_metric

__all__ = [
    "CANCEL_TOL",
    "FLAT_REL_TOL",
    "MIN_SIDE",
    "BrisqueResult",
    "brisque",
    "brisque_features",
    "matlab_gray",
    "matlab_imresize_half",
    "load_model",
    "default_model",
]

FLAT_REL_TOL = 1e-10
"""A 7x7 window is constant (MSCN exactly 0) when its max - min is at most this times ``1 + max |I|``."""
CANCEL_TOL = 64 * float(np.finfo(np.float64).eps)
"""MSCN is exactly 0 where ``|I - mu| <= CANCEL_TOL * sqrt(I^2 + E[I^2])`` (below the rounding error of mu)."""
_VAR_GATE_REL = 1e-13
"""Computed ``|E[I^2] - mu^2|`` of a constant window is below this times ``(1 + max |I|)^2`` (float64 cancellation,
about 20 eps); rows without such a pixel skip the exact range test."""
MIN_SIDE = 16
"""Smallest accepted side in pixels (the second scale is then 8 px, just above the 7x7 window)."""

_GAM, _R_GGD, _R_AGGD = GAM, R_GGD, R_AGGD  # MATLAB 0.2:0.001:10 and the GGD/AGGD ratios (one place: _matlab)


_TAPS = gaussian_taps(7, 7.0 / 6.0)  # fspecial('gaussian', 7, 7/6) is the outer product of these taps


def matlab_gray(image: np.ndarray) -> np.ndarray:
    """What the release scores: gray input as float64; colour through ``uint8`` and ``rgb2gray``."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        if a.dtype != np.uint8:
            # MATLAB uint8(): round half away from zero, saturate
            a = np.clip(np.floor(np.asarray(a, np.float64) + 0.5), 0, 255).astype(np.uint8)
        rgb = a[..., :3].astype(np.float64)
        y = LUMA[0] * rgb[..., 0] + LUMA[1] * rgb[..., 1] + LUMA[2] * rgb[..., 2]  # MATLAB rgb2gray
        return np.floor(y + 0.5)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D gray or HxWx3 colour image, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64)


matlab_imresize_half = imresize_half
"""MATLAB ``imresize(img, 0.5)`` of a double image (see medgap.quality._matlab)."""


def _mscn(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """(MSCN map of one scale's float64 image, number of constant-window pixels), exact zeros as documented."""
    m = np.empty_like(gray)
    _, lo, hi = _kernels.finite_range(gray)
    scale = 1.0 + max(float(hi), -float(lo))  # 1 + max |I|
    flat_tol = FLAT_REL_TOL * scale
    nflat = _kernels.mscn(gray, _TAPS, flat_tol, flat_tol**2 + _VAR_GATE_REL * scale**2, CANCEL_TOL, m)
    return m, nflat


def _fit_scale(gray: np.ndarray, feats: np.ndarray) -> int:
    """Append the 18 features of one scale to ``feats`` (length 18); return the number of flat pixels."""
    m, nflat = _mscn(gray)
    ggd = np.empty(2)
    aggd = np.empty((4, 5))
    _kernels.moments(m, ggd, aggd)
    n = float(gray.size)
    _fit_moments(ggd, aggd, n, np.full(4, n), feats)
    return nflat


def _fit_moments(ggd: np.ndarray, aggd: np.ndarray, n: float, n_pairs: np.ndarray, feats: np.ndarray) -> None:
    """The 18 features of one scale from the sufficient statistics of :func:`_kernels.moments` (``n``: the
    MSCN coefficients counted, ``n_pairs[s]``: the pairs of shift s; both the image's size in the release)."""
    sigma_sq = ggd[1] / n
    e = ggd[0] / n
    if e == 0.0:
        raise ValueError("all MSCN coefficients are 0 (a constant or fully flat image): BRISQUE is undefined")
    feats[0] = _GAM[_kernels.grid_argmin_abs(_R_GGD, sigma_sq / (e * e))]
    feats[1] = sigma_sq
    for s in range(4):
        pa, qn, nn, qp, npos = aggd[s]
        if nn == 0 or npos == 0:
            side = "negative" if nn == 0 else "positive"
            raise ValueError(f"no {side} pairwise MSCN products (shift {s + 1}): BRISQUE's AGGD fit is undefined")
        left = np.sqrt(qn / nn)
        right = np.sqrt(qp / npos)
        gh = left / right
        rhat = (pa / n_pairs[s]) ** 2 / ((qn + qp) / n_pairs[s])
        rhatnorm = rhat * (gh**3 + 1.0) * (gh + 1.0) / (gh**2 + 1.0) ** 2
        alpha = _GAM[_kernels.grid_argmin_abs(_R_AGGD, rhatnorm)]
        const = np.sqrt(_gamma(1.0 / alpha)) / np.sqrt(_gamma(3.0 / alpha))
        eta = (right - left) * (_gamma(2.0 / alpha) / _gamma(1.0 / alpha)) * const
        feats[2 + 4 * s : 6 + 4 * s] = (alpha, eta, left * left, right * right)


@dataclass(frozen=True)
class BrisqueResult:
    score: float
    features: np.ndarray
    """The 36 features as the release computes them, before ``%f`` formatting."""
    flat_fraction: float
    """Fraction of full-scale pixels whose zero-padded 7x7 neighbourhood is constant (MSCN set to 0)."""


def _check(gray: np.ndarray) -> None:
    h, w = gray.shape
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"image is {h}x{w}; BRISQUE needs at least {MIN_SIDE} pixels a side")
    finite, lo, hi = _kernels.finite_range(gray)  # one pass instead of isfinite, min and max
    if not finite:
        raise ValueError("image contains NaN or Inf values; BRISQUE is undefined")
    if lo == hi:
        raise ValueError(f"constant image (every pixel is {gray.flat[0]:g}): BRISQUE is undefined")


def brisque_features(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The release's 36 BRISQUE features of an image and its flat fraction.

    ``image``: gray (used as is, 0-255 scale) or HxWx3 colour (converted as the release does).
    Raises ValueError for images smaller than ``MIN_SIDE``, with NaN/Inf, or constant.
    """
    gray = matlab_gray(image)
    _check(gray)
    feats = np.empty(36)
    nflat = _fit_scale(gray, feats[:18])
    _fit_scale(matlab_imresize_half(gray), feats[18:])
    return feats, nflat / gray.size


def brisque(image: np.ndarray, model: SvrModel | None = None) -> BrisqueResult:
    """BRISQUE score of one image (lower is better; about 0-100, not clipped), as the release computes it."""
    feats, flat = brisque_features(image)
    model = model or default_model()
    return BrisqueResult(score=model.predict_release(feats), features=feats, flat_fraction=flat)


def _score(gray: np.ndarray, model_path: str | None = None, range_path: str | None = None) -> dict[str, float]:
    model = default_model() if model_path is None else load_model(model_path, range_path)
    r = brisque(gray, model)
    return {"brisque": r.score, "brisque_flat_fraction": r.flat_fraction}


@register_metric(
    "brisque",
    version="2",  # 2: exact zeros decided from the window, not by a fixed 1e-8 floor (docs/brisque.md)
    columns=("brisque", "brisque_flat_fraction"),
    lower_is_better=True,
    range=(0.0, 100.0),
    description="BRISQUE (LIVE release model, faithful reimplementation); constant 7x7 areas have MSCN 0",
    reference="Mittal, Moorthy, Bovik, IEEE TIP 2012; LIVE BRISQUE release (allmodel/allrange)",
    torch_backend="medgap.quality.torch_features:brisque_backend",  # --device cpu|cuda: batched float64 torch
)
def _make_brisque(model: str | Path | None = None, range: str | Path | None = None):  # noqa: A002
    """``model``/``range``: a LIBSVM model file and its svm-scale range file (default: the release's)."""
    if (model is None) != (range is None):
        raise ValueError("give both a LIBSVM model file and its svm-scale range file, or neither")
    if model is None:
        return _score
    load_model(model, range)  # fail early, in the parent process, with the file named
    return functools.partial(_score, model_path=str(model), range_path=str(range))


from medgap.quality.brisque import foreground as _foreground  # noqa: E402,F401  (registers brisque-foreground)
