"""The effective receptive field against networks whose receptive field is known analytically: d stacked 3x3
convolutions (stride 1, padding 1) reach exactly 2d + 1 pixels; with all weights 1/9 and no nonlinearity the
gradient of the centre unit is the d-fold convolution of a 3-tap box per axis (numpy float64 here), whose
per-axis variance is d * 2/3 (each tap -1, 0, 1 with probability 1/3: variance 2/3; variances add)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medgap.explain import effective_receptive_field, fit_gaussian

SIZE = 41
C = SIZE // 2


def _stack(depth: int, *, equal: bool, relu: bool = False) -> nn.Sequential:
    layers = []
    for _ in range(depth):
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        if equal:
            nn.init.constant_(conv.weight, 1 / 9)
        layers += [conv, nn.ReLU()] if relu else [conv]
    return nn.Sequential(*layers).double()


def _box_power(depth: int) -> np.ndarray:
    k = np.array([1.0])
    for _ in range(depth):
        k = np.convolve(k, np.full(3, 1 / 3))
    return k  # 2 * depth + 1 taps


def _embed(k: np.ndarray) -> np.ndarray:
    full = np.zeros(SIZE)
    half = k.size // 2
    full[C - half:C + half + 1] = k
    return full


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_equal_weight_stack_gives_the_analytic_kernel_its_support_and_variance(depth):
    net = _stack(depth, equal=True)
    x = torch.randn(4, 1, SIZE, SIZE, dtype=torch.float64)
    grad = effective_receptive_field(lambda t: net(t.double()), x, squared=False)
    k = _embed(_box_power(depth))
    np.testing.assert_allclose(grad, np.outer(k, k), atol=1e-12)
    rows, cols = np.nonzero(grad)
    assert rows.max() - rows.min() + 1 == 2 * depth + 1 and cols.max() - cols.min() + 1 == 2 * depth + 1
    fit = fit_gaussian(grad)
    assert fit.sigma_moments ** 2 == pytest.approx(depth * 2 / 3, rel=1e-9)
    assert fit.center == pytest.approx((C, C), abs=1e-3)


def test_squared_erf_is_the_squared_kernel_with_its_own_variance():
    depth = 4
    net = _stack(depth, equal=True)
    erf = effective_receptive_field(lambda t: net(t.double()), torch.randn(3, 1, SIZE, SIZE, dtype=torch.float64))
    k2 = _embed(_box_power(depth)) ** 2
    np.testing.assert_allclose(erf, np.outer(k2, k2), atol=1e-14)
    p = k2 / k2.sum()
    x = np.arange(SIZE) - C
    assert fit_gaussian(erf).sigma_moments ** 2 == pytest.approx((p * x ** 2).sum(), rel=1e-9)


def test_fitted_gaussian_width_approaches_the_central_limit():
    """A box convolved 8 times is close to a Gaussian of variance 8 * 2/3 (its tails are shorter: the
    least-squares sigma is within 5%); a sampled Gaussian is fitted exactly."""
    net = _stack(8, equal=True)
    grad = effective_receptive_field(lambda t: net(t.double()), torch.zeros(1, 1, SIZE, SIZE, dtype=torch.float64),
                                     squared=False)
    assert fit_gaussian(grad).sigma == pytest.approx(np.sqrt(8 * 2 / 3), rel=0.05)
    r, c = np.indices((SIZE, SIZE))
    gauss = 3.0 * np.exp(-((r - 18.5) ** 2 + (c - 22.0) ** 2) / (2 * 3.7 ** 2))
    fit = fit_gaussian(gauss)
    assert fit.sigma == pytest.approx(3.7, rel=1e-6) and fit.center == pytest.approx((18.5, 22.0), abs=1e-5)
    assert fit.amplitude == pytest.approx(3.0, rel=1e-6)
    assert fit.sigma_moments == pytest.approx(3.7, rel=1e-3)  # the grid holds nearly all its mass


def test_random_relu_network_stays_inside_its_theoretical_receptive_field():
    torch.manual_seed(0)
    depth = 5
    net = _stack(depth, equal=False, relu=True)
    erf = effective_receptive_field(lambda t: net(t.double()), torch.randn(8, 1, SIZE, SIZE, dtype=torch.float64))
    rows, cols = np.nonzero(erf)
    assert rows.min() >= C - depth and rows.max() <= C + depth and cols.min() >= C - depth and cols.max() <= C + depth
    assert erf[C, C] > 0


def test_a_timm_backbone_uses_its_last_feature_map():
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=2)
    erf = effective_receptive_field(model, torch.randn(2, 3, 64, 64))
    assert erf.shape == (64, 64) and np.isfinite(erf).all() and erf.sum() > 0
    assert np.isfinite(fit_gaussian(erf).sigma_moments)
