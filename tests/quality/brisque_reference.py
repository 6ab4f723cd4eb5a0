"""A straightforward float64 statement of the BRISQUE release (brisque_feature.m, estimateggdparam.m,
estimateaggdparam.m, MATLAB imresize), written independently of medgap's fused kernels: 2-D correlation with
scipy, np.roll for circshift, explicit per-output-pixel resize weights. Slow and obvious on purpose; used only
to check the fast path.

The release has no floor: ``MSCN = (I - mu) ./ (sigma + 1)``. Where ``I - mu`` is 0 in exact arithmetic float64
leaves rounding noise of arbitrary sign, so MSCN is set to exactly 0 there (the stated policy); this module decides
those pixels on its own terms, without any tolerance on ``I - mu``:

- the zero-padded 7x7 window is constant (max - min of numpy sliding windows over an explicitly padded copy, at
  most ``FLAT_REL_TOL * (1 + max |I|)`` of that scale's image);
- or ``I - mu`` vanishes exactly (``exact_zero_mask``). The Gaussian weights are ``q ** (dx^2 + dy^2) / Z`` with
  ``q = exp(-1 / (2 sigma^2))`` transcendental (Lindemann), so for rational pixel values ``sum w_k (I - I_k) = 0``
  iff, for each of the ten distances ``dx^2 + dy^2``, the window's values at that distance sum to ``n_d * I``.
  That is a test on the data alone (sums of a few pixel values, exact in float64 for integer images and for
  the dyadic half-scale interior).

Nothing else is zeroed: a pixel whose ``I - mu`` is merely tiny keeps its value.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import correlate2d
from scipy.special import gamma

GAM = np.array([0.2 + 0.001 * k for k in range(9801)])  # 0.2:0.001:10
R_GGD = gamma(1 / GAM) * gamma(3 / GAM) / gamma(2 / GAM) ** 2  # estimateggdparam.m's r_gam
R_AGGD = gamma(2 / GAM) ** 2 / (gamma(1 / GAM) * gamma(3 / GAM))  # estimateaggdparam.m's r_gam


def fspecial_gaussian(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    r = (size - 1) / 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def cubic(x: float) -> float:
    a = abs(x)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def resize_matrix(n_in: int) -> np.ndarray:
    """Dense (ceil(n/2) x n) matrix of MATLAB imresize(., 0.5), bicubic with antialiasing, symmetric border."""
    n_out = math.ceil(n_in / 2)
    a = np.zeros((n_out, n_in))
    for o in range(1, n_out + 1):  # MATLAB's 1-based output coordinate
        u = o / 0.5 + 0.5 * (1 - 1 / 0.5)
        left = math.floor(u - 8 / 2)
        taps = [(left + k, 0.5 * cubic(0.5 * (u - (left + k)))) for k in range(10)]
        total = sum(w for _, w in taps)
        for idx, w in taps:
            m = (idx - 1) % (2 * n_in)  # mirror: aux = [1:n, n:-1:1]
            src = m if m < n_in else 2 * n_in - 1 - m
            a[o - 1, src] += w / total
    return a


def imresize_half(img: np.ndarray) -> np.ndarray:
    return resize_matrix(img.shape[0]) @ img @ resize_matrix(img.shape[1]).T


FLAT_REL_TOL = 1e-10
"""A window is constant when its range is at most this times (1 + max |I|): about 1e3 times float64's rounding of
the half-scale image (resize noise of a constant area is a few ulp of max |I|), and far below the smallest
genuine step of integer data at either scale (1/65536 grey levels after the 0.5 resize, whose weights are
(111, 29, -9, -3) / 256 along each axis)."""


def flat_mask(img: np.ndarray, flat_rel_tol: float = FLAT_REL_TOL, pad_mode: str = "constant") -> np.ndarray:
    """True where the 7x7 window around the pixel is constant (range <= tol, see FLAT_REL_TOL); ``pad_mode`` as
    numpy.pad ("constant": zero padding, BRISQUE's filter2; "edge": NIQE's imfilter 'replicate')."""
    view = np.lib.stride_tricks.sliding_window_view
    p = np.pad(img, 3, mode=pad_mode)
    hi = view(view(p, 7, axis=0).max(axis=-1), 7, axis=1).max(axis=-1)  # 7x7 max = max over columns of row maxima
    lo = view(view(p, 7, axis=0).min(axis=-1), 7, axis=1).min(axis=-1)
    return hi - lo <= flat_rel_tol * (1.0 + np.abs(img).max())


def exact_zero_mask(img: np.ndarray, pad_mode: str = "constant") -> np.ndarray:
    """True where ``I - mu`` is 0 in exact arithmetic for the 7x7 Gaussian (any sigma): at each distance class
    ``d = dx^2 + dy^2`` the window's values sum to ``n_d * I``. ``pad_mode``: numpy.pad's ("constant" = zero
    padding as filter2 'same', "edge" = imfilter 'replicate'). Equality is taken to 4 ulp of the values summed,
    which only absorbs the half-scale image's own representation error."""
    h, w = img.shape
    p = np.pad(img, 3, mode=pad_mode)
    ok = np.ones((h, w), dtype=bool)
    eps = np.finfo(np.float64).eps
    for d in sorted({dy * dy + dx * dx for dy in range(4) for dx in range(4)} - {0}):
        offsets = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4) if dy * dy + dx * dx == d]
        total = np.zeros((h, w))
        mag = len(offsets) * np.abs(img)
        for dy, dx in offsets:
            v = p[3 + dy : 3 + dy + h, 3 + dx : 3 + dx + w]
            total += v
            mag = mag + np.abs(v)
        ok &= np.abs(total - len(offsets) * img) <= 4 * eps * mag
    return ok


def ggd(vec: np.ndarray) -> tuple[float, float]:
    sigma_sq = np.mean(vec**2)
    e = np.mean(np.abs(vec))
    rho = sigma_sq / e**2
    return GAM[np.argmin(np.abs(rho - R_GGD))], sigma_sq


def aggd(vec: np.ndarray) -> tuple[float, float, float]:
    left = np.sqrt(np.mean(vec[vec < 0] ** 2))
    right = np.sqrt(np.mean(vec[vec > 0] ** 2))
    gh = left / right
    rhat = np.mean(np.abs(vec)) ** 2 / np.mean(vec**2)
    rhatnorm = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
    return GAM[np.argmin((R_AGGD - rhatnorm) ** 2)], left, right


def features(gray: np.ndarray, flat_rel_tol: float = FLAT_REL_TOL) -> tuple[np.ndarray, float]:
    """The 36 features and the fraction of full-scale pixels with a constant window."""
    img = np.asarray(gray, dtype=np.float64)
    window = fspecial_gaussian()
    feat: list[float] = []
    flat0 = 0.0
    for scale in range(2):
        mu = correlate2d(img, window, mode="same", boundary="fill")
        sigma = np.sqrt(np.abs(correlate2d(img * img, window, mode="same", boundary="fill") - mu * mu))
        structdis = (img - mu) / (sigma + 1)
        flat = flat_mask(img, flat_rel_tol)
        structdis[flat | exact_zero_mask(img)] = 0.0  # I - mu is 0 in exact arithmetic: rounding noise only
        if scale == 0:
            flat0 = flat.mean()
        alpha, overall = ggd(structdis.ravel())
        feat += [alpha, overall]
        for shift in ([0, 1], [1, 0], [1, 1], [-1, 1]):
            shifted = np.roll(structdis, shift, axis=(0, 1))  # == circshift
            a, left, right = aggd((structdis * shifted).ravel())
            const = np.sqrt(gamma(1 / a)) / np.sqrt(gamma(3 / a))
            meanparam = (right - left) * (gamma(2 / a) / gamma(1 / a)) * const
            feat += [a, meanparam, left**2, right**2]
        img = imresize_half(img)
    return np.array(feat), flat0


def rgb2gray_uint8(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    return np.floor(0.298936021293775 * r + 0.587043074451121 * g + 0.114020904255103 * b + 0.5)


def score(feats: np.ndarray, model_text: str, range_text: str) -> float:
    """brisquescore.m's text pipeline: %f features, svm-scale -r (writes %g), svm-predict (RBF epsilon-SVR)."""
    rng = [line.split() for line in range_text.splitlines() if line.strip()]
    lo, hi = map(float, rng[1])
    bounds = {int(p[0]): (float(p[1]), float(p[2])) for p in rng[2:]}
    scaled = {}
    for k, v in enumerate(feats, start=1):
        v = float("%f" % v)
        fmin, fmax = bounds[k]
        if v == fmin:
            s = lo
        elif v == fmax:
            s = hi
        else:
            s = lo + (hi - lo) * (v - fmin) / (fmax - fmin)
        if s != 0:
            scaled[k] = float("%g" % s)
    lines = model_text.splitlines()
    head = dict(line.split(" ", 1) for line in lines[: lines.index("SV")])
    g = float(head["gamma"])
    total = 0.0
    for line in lines[lines.index("SV") + 1 :]:
        parts = line.split()
        if not parts:
            continue
        sv = {int(a): float(b) for a, b in (p.split(":") for p in parts[1:])}
        d2 = sum((scaled.get(k, 0.0) - sv.get(k, 0.0)) ** 2 for k in set(scaled) | set(sv))
        total += float(parts[0]) * math.exp(-g * d2)
    return total - float(head["rho"])
