"""Descriptive image statistics ("pixel complexity, relationships, variation"): how medical images differ from
photos beyond a quality score. Registered as metrics of kind ``statistic``: ``imagestats`` (five columns from
the gray image) and ``colourfulness`` (from the RGB image). Formulas in each function and in docs/metrics.md.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.fft
from scipy import ndimage

from medgap.quality.registry import register_metric

__all__ = ["background_fraction", "colourfulness", "edge_density", "entropy", "rms_contrast", "spectral_slope"]

MIN_SIDE = 16
SLOPE_BAND = (4.0, 0.4)
"""Spectral slope fit band: from 4 cycles per image (past DC and the Hann window's leakage) to 0.4 cycles per
pixel (below Nyquist, 0.5, where anti-aliasing and JPEG quantisation bend the spectrum)."""
BACKGROUND_WINDOW = 7
BACKGROUND_TOL = 1.0
CANNY_THRESHOLDS = (50, 150)


def _check(gray: np.ndarray) -> None:
    if gray.ndim != 2 or min(gray.shape) < MIN_SIDE:
        raise ValueError(f"expected a 2-D image of at least {MIN_SIDE}x{MIN_SIDE} pixels, got shape {gray.shape}")
    if not np.isfinite(gray).all():
        raise ValueError("image contains NaN or Inf values")


def _levels(gray: np.ndarray) -> np.ndarray:
    """Integer grey levels 0-255 (rounded, clipped) as uint8."""
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def entropy(gray: np.ndarray) -> float:
    """Shannon entropy in bits of the 256-bin histogram of the grey levels (rounded to integers 0-255):
    ``-sum p log2 p``; 0 for a constant image, 8 at most."""
    counts = np.bincount(_levels(gray).ravel(), minlength=256)
    p = counts[counts > 0] / gray.size
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no -0.0


def rms_contrast(gray: np.ndarray) -> float:
    """Root-mean-square contrast (Peli 1990) on the 0-1 scale: the population SD of the intensities divided by
    255; from 0 (constant) to 0.5 (half black, half white)."""
    return float(np.std(gray) / 255.0)


def background_fraction(gray: np.ndarray) -> float:
    """Fraction of pixels whose 7x7 neighbourhood (edges replicated) spans at most 1 grey level
    (max - min <= 1): flat background such as the black surround of CT, MR and ultrasound."""
    size = BACKGROUND_WINDOW
    rng = ndimage.maximum_filter(gray, size=size, mode="nearest") - ndimage.minimum_filter(gray, size=size, mode="nearest")
    return float((rng <= BACKGROUND_TOL).mean())


def _smooth_below(n: int) -> int:
    """The largest 5-smooth length <= n (fast FFT sizes)."""
    while True:
        m = n
        for f in (2, 3, 5):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n -= 1


def spectral_slope(gray: np.ndarray) -> float:
    """Slope of log10 power against log10 spatial frequency of the radially averaged power spectrum.

    The centred square crop (side cut to a fast FFT length) has its mean removed and a 2-D Hann window
    applied; power is averaged over rings one cycle per image wide, centred on whole cycles per image; a line
    is fitted by least squares from 4 cycles/image to 0.4 cycles/pixel, each ring weighted by 1/f so that
    every octave counts equally.
    Natural photos give about -2 (power ~ 1/f^2; van der Schaaf & van Hateren 1996), white noise 0.
    NaN for a constant image (no power).
    """
    n = _smooth_below(min(gray.shape))
    r0, c0 = (gray.shape[0] - n) // 2, (gray.shape[1] - n) // 2
    crop = np.asarray(gray[r0 : r0 + n, c0 : c0 + n], dtype=np.float64)
    hann = np.hanning(n)
    power = np.abs(scipy.fft.fft2((crop - crop.mean()) * np.outer(hann, hann))) ** 2
    k = np.fft.fftfreq(n) * n  # cycles per image
    ring = np.rint(np.hypot(k[:, None], k[None, :])).astype(np.intp).ravel()  # ring r: [r - 1/2, r + 1/2)
    radial = np.bincount(ring, power.ravel()) / np.bincount(ring)
    radii = np.arange(radial.size, dtype=np.float64)
    sel = (radii >= SLOPE_BAND[0]) & (radii <= SLOPE_BAND[1] * n) & (radial > 0)
    if sel.sum() < 3:
        return float("nan")
    # np.polyfit weights multiply residuals: w = f^-1/2 weighs squared residuals by 1/f
    return float(np.polyfit(np.log10(radii[sel] / n), np.log10(radial[sel]), 1, w=radii[sel] ** -0.5)[0])


def edge_density(gray: np.ndarray) -> float:
    """Fraction of pixels on Canny edges: OpenCV ``Canny`` with hysteresis thresholds 50 and 150 and the L2
    gradient on the 8-bit image (levels rounded) after a 5x5 Gaussian blur (sigma 1, replicated border)."""
    img = cv2.GaussianBlur(_levels(gray), (5, 5), 1.0, borderType=cv2.BORDER_REPLICATE)
    return float(np.count_nonzero(cv2.Canny(img, *CANNY_THRESHOLDS, L2gradient=True)) / gray.size)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) M3: ``sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` with
    ``rg = R - G``, ``yb = (R + G) / 2 - B`` on 0-255 values (population SDs); 0 for gray images."""
    r, g, b = (np.asarray(rgb[..., i], dtype=np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _stats(gray: np.ndarray) -> dict[str, float]:
    gray = np.asarray(gray, dtype=np.float64)
    _check(gray)
    return {
        "entropy": entropy(gray),
        "rms_contrast": rms_contrast(gray),
        "background_fraction": background_fraction(gray),
        "spectral_slope": spectral_slope(gray),
        "edge_density": edge_density(gray),
    }


def _colour(rgb: np.ndarray) -> dict[str, float]:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 colour image, got shape {rgb.shape}")
    if not np.isfinite(rgb).all():
        raise ValueError("image contains NaN or Inf values")
    return {"colourfulness": colourfulness(rgb)}


@register_metric(
    "imagestats",
    version="2",
    columns=("entropy", "rms_contrast", "background_fraction", "spectral_slope", "edge_density"),
    lower_is_better=False,
    range=None,
    description="Intensity entropy (bits), RMS contrast, near-constant background fraction, radially averaged "
    "power-spectrum slope, Canny edge density",
    reference="Shannon 1948; Peli 1990; van der Schaaf & van Hateren 1996; Canny 1986",
    kind="statistic",
)
def _make_stats():
    return _stats


@register_metric(
    "colourfulness",
    version="1",
    columns=("colourfulness",),
    lower_is_better=False,
    range=(0.0, None),
    description="Hasler-Süsstrunk colourfulness of the 8-bit RGB image (0 for gray data)",
    reference="Hasler & Süsstrunk, SPIE 5007, 2003",
    kind="statistic",
    input="rgb",
)
def _make_colour():
    return _colour
