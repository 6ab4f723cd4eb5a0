"""Descriptive image statistics ("pixel complexity, relationships, variation"): how medical images differ from
photos beyond a quality score. Each is a registered metric of kind ``statistic``; formulas below.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from medgap.quality.registry import register_metric

BAND = (4.0, 0.4)
"""Spectral slope fit band: from 4 cycles per image to 0.4 cycles/pixel (past DC and the Hann window's
leakage, below the anti-aliasing / JPEG roll-off)."""


def _check(gray: np.ndarray) -> None:
    if gray.ndim != 2 or min(gray.shape) < 16:
        raise ValueError(f"expected a 2-D image of at least 16x16 pixels, got shape {gray.shape}")
    if not np.isfinite(gray).all():
        raise ValueError("image contains NaN or Inf values")


def entropy(gray: np.ndarray) -> float:
    """Shannon entropy (bits) of the 256-bin histogram of the image rounded to integer grey levels 0-255."""
    counts = np.bincount(np.clip(np.rint(gray), 0, 255).astype(np.intp).ravel(), minlength=256)
    p = counts[counts > 0] / gray.size
    return float(-(p * np.log2(p)).sum())


def rms_contrast(gray: np.ndarray) -> float:
    """Root-mean-square contrast: population SD of the intensities divided by 255 (Peli 1990), 0-0.5."""
    return float(gray.std() / 255.0)


def background_fraction(gray: np.ndarray, tol: float = 1.0) -> float:
    """Fraction of pixels whose 7x7 neighbourhood (edges replicated) spans at most ``tol`` grey levels."""
    rng = ndimage.maximum_filter(gray, size=7, mode="nearest") - ndimage.minimum_filter(gray, size=7, mode="nearest")
    return float((rng <= tol).mean())


def spectral_slope(gray: np.ndarray) -> float:
    """Slope of log power vs log spatial frequency of the radially averaged power spectrum (Hann-windowed,
    mean removed, square crop), fitted over ``BAND``. Natural photos are close to -2 (1/f^2; van der Schaaf &
    van Hateren 1996); white noise gives 0."""
    n = min(gray.shape)
    img = gray[:n, :n] - gray[:n, :n].mean()
    w = np.hanning(n)
    power = np.abs(np.fft.fftshift(np.fft.fft2(img * np.outer(w, w)))) ** 2
    y, x = np.indices(power.shape)
    r = np.hypot(x - n // 2, y - n // 2).astype(np.intp)
    radial = np.bincount(r.ravel(), power.ravel()) / np.bincount(r.ravel())
    radii = np.arange(radial.size)
    sel = (radii >= BAND[0]) & (radii <= BAND[1] * n) & (radial > 0)
    if sel.sum() < 3:
        raise ValueError(f"image too small ({n} px) for a spectral slope over {BAND}")
    return float(np.polyfit(np.log10(radii[sel] / n), np.log10(radial[sel]), 1)[0])


def edge_density(gray: np.ndarray, low: int = 50, high: int = 150) -> float:
    """Fraction of pixels on Canny edges (OpenCV, L2 gradient, hysteresis thresholds 50/150 on the 0-255 image
    after a 5x5 Gaussian blur, sigma 1)."""
    img = cv2.GaussianBlur(np.clip(gray, 0, 255).astype(np.uint8), (5, 5), 1.0)
    return float((cv2.Canny(img, low, high, L2gradient=True) > 0).mean())


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003): sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2), rg = R - G,
    yb = (R + G)/2 - B, on 0-255 values; 0 for gray images."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _stats(gray: np.ndarray) -> dict[str, float]:
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
    return {"colourfulness": colourfulness(rgb)}


@register_metric(
    "imagestats",
    version="1",
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
