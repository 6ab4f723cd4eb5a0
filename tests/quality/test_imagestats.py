"""Image statistics against straightforward independent computations and synthetic images with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import shannon_entropy

from medgap.io import Frame, read_frames, to_gray255, to_rgb255
from medgap.quality import create_metric
from medgap.quality.imagestats import (
    background_fraction,
    colourfulness,
    edge_density,
    entropy,
    rms_contrast,
    spectral_slope,
)


def power_law_noise(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1/f^beta (random phases), scaled to 0-255."""
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) / f ** (beta / 2)
    spectrum[0, 0] = 0
    img = np.real(np.fft.ifft2(spectrum))
    return (img - img.min()) / (img.max() - img.min()) * 255


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0, 3.0])
def test_spectral_slope_recovers_power_law(beta):
    """1/f^beta noise made in Fourier space: slope -beta (0 for white noise, -2 for 1/f^2) within 0.1."""
    rng = np.random.default_rng(int(beta) + 11)
    slopes = [spectral_slope(power_law_noise(rng, 256, beta)) for _ in range(3)]
    assert np.mean(slopes) == pytest.approx(-beta, abs=0.1)


def test_spectral_slope_ignores_gain_offset_and_needs_power():
    img = power_law_noise(np.random.default_rng(5), 128, 2.0)
    assert spectral_slope(0.5 * img + 40) == pytest.approx(spectral_slope(img), abs=1e-9)
    assert np.isnan(spectral_slope(np.full((64, 64), 9.0)))
    wide = np.tile(img, (1, 2))  # centred square crop of a 128x256 image: a square of the tiled noise
    assert spectral_slope(wide) == pytest.approx(spectral_slope(np.roll(img, -64, axis=1)), abs=1e-9)


def test_entropy_matches_skimage():
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (64, 80)).astype(np.float64)
    assert entropy(img) == pytest.approx(shannon_entropy(img.astype(np.uint8), base=2), rel=1e-12)
    assert entropy(img + 0.3) == entropy(img)  # levels are rounded to integers first
    assert entropy(np.full((32, 32), 7.0)) == 0.0
    assert entropy(np.repeat([0.0, 255.0], 512).reshape(32, 32)) == pytest.approx(1.0)


def test_rms_contrast_is_population_sd_over_255():
    img = np.random.default_rng(8).random((40, 50)) * 255
    assert rms_contrast(img) == pytest.approx(np.sqrt(np.mean((img - img.mean()) ** 2)) / 255, rel=1e-12)
    assert rms_contrast(np.repeat([0.0, 255.0], 512).reshape(32, 32)) == pytest.approx(0.5)


def test_background_fraction_matches_brute_force():
    rng = np.random.default_rng(9)
    img = np.zeros((30, 34))
    img[:, 15:] = rng.integers(0, 3, (30, 19))  # left flat, right levels 0-2
    img[20:, 25:] = 7.0
    padded = np.pad(img, 3, mode="edge")
    flat = [[np.ptp(padded[i:i + 7, j:j + 7]) <= 1 for j in range(img.shape[1])] for i in range(img.shape[0])]
    assert background_fraction(img) == pytest.approx(np.mean(flat), abs=1e-15)
    assert 0.3 < background_fraction(img) < 0.7


def test_edge_density_on_known_shapes():
    step = np.zeros((64, 64))
    step[:, 32:] = 200
    assert 1 / 64 <= edge_density(step) <= 2 / 64 + 1e-12  # one vertical edge, one or two pixels wide
    assert edge_density(np.full((64, 64), 30.0)) == 0
    y, x = np.mgrid[:128, :128]
    disk = np.where(np.hypot(x - 64, y - 64) < 30, 220.0, 20.0)
    perimeter = 2 * np.pi * 30
    assert edge_density(disk) * disk.size == pytest.approx(perimeter, rel=0.25)


def test_colourfulness_formula_and_known_values():
    rgb = np.random.default_rng(10).integers(0, 256, (40, 50, 3)).astype(np.float64)
    r, g, b = rgb[..., 0].ravel(), rgb[..., 1].ravel(), rgb[..., 2].ravel()
    rg, yb = r - g, (r + g) / 2 - b
    expected = np.sqrt(np.var(rg) + np.var(yb)) + 0.3 * np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)
    assert colourfulness(rgb) == pytest.approx(expected, rel=1e-12)
    red = np.zeros((8, 8, 3))
    red[..., 0] = 255
    assert colourfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))
    gray = Frame(np.full((20, 20), 900, np.uint16), None, {})
    assert colourfulness(to_rgb255(gray)) == 0


def test_registered_metrics_and_their_errors():
    stats = create_metric("imagestats")
    out = stats(power_law_noise(np.random.default_rng(12), 128, 2.0))
    assert set(out) == {"entropy", "rms_contrast", "background_fraction", "spectral_slope", "edge_density"}
    assert create_metric("imagestats")(np.full((32, 32), 5.0)) == pytest.approx(
        {"entropy": 0.0, "rms_contrast": 0.0, "background_fraction": 1.0, "spectral_slope": np.nan,
         "edge_density": 0.0}, nan_ok=True)
    with pytest.raises(ValueError, match="NaN"):
        stats(np.full((32, 32), np.nan))
    with pytest.raises(ValueError, match="at least 16x16"):
        stats(np.zeros((8, 8)))
    colour = create_metric("colourfulness")
    assert colour.info.input == "rgb"
    with pytest.raises(ValueError, match="HxWx3"):
        colour(np.zeros((8, 8)))


def test_natural_photos_vs_ultrasound(shared_data):
    """On real images: photo spectra fall about as 1/f^2 to 1/f^3; lung ultrasound has more flat background."""
    photos = sorted((shared_data / "natural").glob("*.JPEG"))[:20]
    lus = sorted((shared_data / "pocus" / "images").rglob("*.*"))[:20]
    stats = create_metric("imagestats")
    s_nat = [stats(to_gray255(next(read_frames(p)))) for p in photos]
    s_lus = [stats(to_gray255(next(read_frames(p)))) for p in lus]
    assert -3.0 < np.median([s["spectral_slope"] for s in s_nat]) < -2.0
    assert np.mean([s["background_fraction"] for s in s_lus]) > np.mean([s["background_fraction"] for s in s_nat])
