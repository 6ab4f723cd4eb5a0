"""Image statistics against independent computations and synthetic images with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import shannon_entropy

from medgap.io import Frame, to_rgb255
from medgap.quality import create_metric
from medgap.quality.imagestats import background_fraction, colourfulness, edge_density, entropy, spectral_slope

RNG = np.random.default_rng(7)


def power_law_noise(n: int, beta: float) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1/f^beta (random phases), scaled to 0-255."""
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    spectrum = (RNG.normal(size=(n, n)) + 1j * RNG.normal(size=(n, n))) / f ** (beta / 2)
    spectrum[0, 0] = 0
    img = np.real(np.fft.ifft2(spectrum))
    return (img - img.min()) / (img.max() - img.min()) * 255


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0, 3.0])
def test_spectral_slope_recovers_power_law(beta):
    slopes = [spectral_slope(power_law_noise(256, beta)) for _ in range(3)]
    assert np.mean(slopes) == pytest.approx(-beta, abs=0.1)


def test_entropy_matches_skimage():
    img = RNG.integers(0, 256, (64, 80)).astype(np.float64)
    assert entropy(img) == pytest.approx(shannon_entropy(img.astype(np.uint8), base=2), rel=1e-12)
    assert entropy(np.full((32, 32), 7.0)) == 0.0


def test_background_fraction_and_edges_on_a_known_image():
    img = np.zeros((100, 100))
    img[:, 50:] = RNG.random((100, 50)) * 255  # left half constant, right half noise
    frac = background_fraction(img)
    assert frac == pytest.approx(47 / 100, abs=0.011)  # columns 0..46 keep the 7x7 window inside the flat half
    step = np.zeros((64, 64))
    step[:, 32:] = 200
    assert 0 < edge_density(step) <= 2 / 64 + 1e-9  # one vertical edge, at most two pixels wide
    assert edge_density(np.full((64, 64), 30.0)) == 0


def test_colourfulness_formula_and_gray_is_zero():
    rgb = RNG.integers(0, 256, (40, 50, 3)).astype(np.float64)
    r, g, b = rgb[..., 0].ravel(), rgb[..., 1].ravel(), rgb[..., 2].ravel()
    rg, yb = r - g, (r + g) / 2 - b
    expected = np.sqrt(np.var(rg) + np.var(yb)) + 0.3 * np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)
    assert colourfulness(rgb) == pytest.approx(expected, rel=1e-12)
    gray = Frame(np.full((20, 20), 900, np.uint16), None, {})
    assert colourfulness(to_rgb255(gray)) == 0


def test_registered_metrics_and_their_errors():
    stats = create_metric("imagestats")
    out = stats(power_law_noise(128, 2.0))
    assert set(out) == {"entropy", "rms_contrast", "background_fraction", "spectral_slope", "edge_density"}
    with pytest.raises(ValueError, match="NaN"):
        stats(np.full((32, 32), np.nan))
    with pytest.raises(ValueError, match="at least 16x16"):
        stats(np.zeros((8, 8)))
    assert create_metric("colourfulness").info.input == "rgb"


def test_natural_photos_vs_ultrasound(shared_data):
    """On real images: photos are colourful with 1/f^2-like spectra; lung ultrasound has dark background."""
    from medgap.io import read_frames, to_gray255

    photos = sorted((shared_data / "natural").glob("*.JPEG"))[:20]
    lus = sorted((shared_data / "pocus" / "images").rglob("*.*"))[:20]
    s_nat = [create_metric("imagestats")(to_gray255(next(read_frames(p)))) for p in photos]
    s_lus = [create_metric("imagestats")(to_gray255(next(read_frames(p)))) for p in lus]
    assert np.median([s["spectral_slope"] for s in s_nat]) == pytest.approx(-2.5, abs=0.7)
    assert np.mean([s["background_fraction"] for s in s_lus]) > np.mean([s["background_fraction"] for s in s_nat])
