"""The effective receptive field (ERF): how much each input pixel moves the centre unit of the last feature
map, averaged over images, with a fitted Gaussian width.

For input images x and the feature map F = f(x) (N, C, h, w), the ERF is ``mean_n sum_c (d F_n[:, h//2, w//2]
.sum() / d x_n[c])^2``: the squared gradient of the centre unit (summed over the feature channels) with respect
to the input, summed over the input channels and averaged over the images (Luo et al. average the gradient
magnitude; squaring keeps positive and negative contributions from cancelling across images). Its width is the
sigma of a 2-D isotropic Gaussian fitted by least squares to the map, in input pixels; ``sigma_moments`` is the
root of the map's mean per-axis variance (the Gaussian's sigma when the map is one).

A network of ``d`` stacked 3x3 convolutions (stride 1, no nonlinearity) has a theoretical receptive field of
``2d + 1`` pixels; with equal weights its gradient is the d-fold convolution of a 3-tap box per axis (variance
2/3 per tap, so ``2d/3`` in all), which tests/explain checks exactly.

Reference: Luo W., Li Y., Urtasun R., Zemel R., "Understanding the effective receptive field in deep
convolutional neural networks", NeurIPS 2016.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class GaussianFit:
    """A 2-D isotropic Gaussian fitted to an ERF map: ``sigma`` (least squares), ``sigma_moments`` (from the
    normalised map's second moments), centre (row, column) and amplitude, in input pixels."""

    sigma: float
    sigma_moments: float
    center: tuple[float, float]
    amplitude: float


def feature_map(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function from input to the last feature map: timm's ``forward_features``, else the model itself."""
    return getattr(model, "forward_features", model)


def effective_receptive_field(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, *,
                              squared: bool = True, batch_size: int = 8) -> np.ndarray:
    """The ERF map (H, W, float64) of ``images`` (N, C, H, W, the model's normalised input): see the module
    docstring. ``model``: a timm model (its ``forward_features``) or any function returning (N, C, h, w).
    ``squared=False`` averages the plain gradient instead (a linear network's kernel)."""
    fn = feature_map(model) if isinstance(model, nn.Module) else model
    if isinstance(model, nn.Module):
        model.eval()
    total = None
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].detach().clone()
        x = (x if x.is_floating_point() else x.float()).requires_grad_(True)
        out = fn(x)
        if out.ndim != 4:
            raise ValueError(f"the feature map must be (N, C, h, w), got shape {tuple(out.shape)}")
        h, w = out.shape[2] // 2, out.shape[3] // 2
        # each image's centre unit depends only on that image (eval mode), so one backward serves the batch
        (grad,) = torch.autograd.grad(out[:, :, h, w].sum(), x)
        g = grad.double()
        g = (g ** 2).sum(1) if squared else g.sum(1)
        total = g.sum(0) if total is None else total + g.sum(0)
    return (total / len(images)).cpu().numpy()


def fit_gaussian(erf: np.ndarray) -> GaussianFit:
    """Fit ``a * exp(-((r - r0)^2 + (c - c0)^2) / (2 sigma^2))`` to the map (least squares, SciPy's curve_fit on
    the map scaled to a maximum of 1) and compute the moment sigma of the map normalised to sum 1."""
    from scipy.optimize import curve_fit

    m = np.abs(np.asarray(erf, dtype=np.float64))
    if m.ndim != 2 or not np.isfinite(m).all() or m.sum() <= 0:
        raise ValueError("an ERF map is a finite 2-D array with some nonzero value")
    rows, cols = np.indices(m.shape, dtype=np.float64)
    p = m / m.sum()
    r0, c0 = (p * rows).sum(), (p * cols).sum()
    var = ((p * (rows - r0) ** 2).sum() + (p * (cols - c0) ** 2).sum()) / 2
    sigma_m = float(np.sqrt(var))
    scale = m.max()

    def gauss(rc, a, rr, cc, s):
        r, c = rc
        return a * np.exp(-((r - rr) ** 2 + (c - cc) ** 2) / (2 * s * s))

    try:
        (a, rr, cc, s), _ = curve_fit(gauss, (rows.ravel(), cols.ravel()), (m / scale).ravel(),
                                      p0=(1.0, r0, c0, max(sigma_m, 0.5)), maxfev=20000)
        sigma = float(abs(s))
    except RuntimeError:  # no convergence: report the moments only
        a, rr, cc, sigma = 1.0, r0, c0, float("nan")
    return GaussianFit(sigma, sigma_m, (float(rr), float(cc)), float(a * scale))


__all__ = ["GaussianFit", "effective_receptive_field", "feature_map", "fit_gaussian"]
