"""Stacking weights (medgap.ensemble.fit_stacking) against problems with a known answer, a brute-force grid and
an independent direct optimisation of the same objective (torch autograd + L-BFGS, float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import check_grad

from medgap.ensemble import EnsembleError, fit_stacking
from medgap.ensemble.stacking import _bce_objective, _nll_objective


def _two_experts(n=200, seed=0):
    """Finding A is seen by scale 0 only, finding B by scale 1 only (the other scale says 0.5 or noise)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (n, 2)).astype(float)
    sharp = lambda t: np.where(t == 1, 0.95, 0.05)  # noqa: E731
    noise = lambda: rng.uniform(0.2, 0.8, n)  # noqa: E731
    probs = np.stack([np.column_stack([sharp(y[:, 0]), noise()]), np.column_stack([noise(), sharp(y[:, 1])])])
    return probs, y


def test_each_finding_picks_the_scale_that_sees_it():
    probs, y = _two_experts()
    fit = fit_stacking(probs, y, task="multilabel", classes=["A", "B"], scales=["64", "256"])
    w = fit.table()
    assert list(w.columns) == ["64", "256"] and list(w.index) == ["A", "B"]
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert w.loc["A", "64"] > 0.97 and w.loc["B", "256"] > 0.97
    ens = fit.predict(probs)
    assert np.abs(ens - np.where(y == 1, 0.95, 0.05)).max() < 0.03  # the ensemble is as sharp as the experts


def test_missing_findings_are_left_out_of_the_fit():
    """Unknown (NaN) targets carry no information: corrupting the probabilities of those items changes nothing,
    and a finding known only where scale 1 is right follows scale 1."""
    probs, y = _two_experts(seed=1)
    y_masked = y.copy()
    y_masked[:100, 0] = np.nan
    a = fit_stacking(probs, y_masked, task="multilabel", l2=0.01).weights
    scrambled = probs.copy()
    scrambled[:, :100, 0] = np.random.default_rng(3).uniform(0, 1, (2, 100))
    b = fit_stacking(scrambled, y_masked, task="multilabel", l2=0.01).weights
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_finding_without_positives_keeps_equal_weights():
    """All-negative validation items would reward the most confident scale, not the most discriminating one."""
    probs, y = _two_experts(seed=2)
    y[:, 1] = 0
    fit = fit_stacking(probs, y, task="multilabel", classes=["A", "B"])
    np.testing.assert_allclose(fit.weights[1], [0.5, 0.5])
    assert fit.weights[0, 0] > 0.97 and "'B'" in fit.notes[0] and "negative" in fit.notes[0]


def test_two_scales_agree_with_a_brute_force_grid():
    """One finding, two scales: the mixture weight a of scale 0 minimises the BCE of a q0 + (1 - a) q1; a grid
    of 20001 values of a finds the same minimum (no penalty)."""
    rng = np.random.default_rng(7)
    n = 300
    y = rng.integers(0, 2, n).astype(float)
    q0 = np.clip(0.5 + (y - 0.5) * rng.uniform(0, 0.9, n) + rng.normal(0, 0.25, n), 0.01, 0.99)
    q1 = np.clip(0.5 + (y - 0.5) * rng.uniform(0, 0.6, n) + rng.normal(0, 0.15, n), 0.01, 0.99)
    fit = fit_stacking(np.stack([q0, q1])[:, :, None], y[:, None], task="multilabel", l2=0.0)
    grid = np.linspace(0, 1, 20001)
    p = grid[:, None] * q0 + (1 - grid[:, None]) * q1
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)
    best = grid[np.argmin(bce)]
    assert 0.05 < best < 0.95  # an interior optimum: the test is about the optimiser, not a corner
    assert abs(fit.weights[0, 0] - best) < 1e-3
    assert abs(fit.loss - bce.min()) < 1e-7


def _torch_fit(q: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """The classify objective written again with torch (float64), minimised by torch's L-BFGS."""
    qt, yt = torch.from_numpy(q), torch.from_numpy(y)
    s, n, k = q.shape
    w = torch.zeros(k, s, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        a = torch.softmax(w, dim=1)  # (k, s)
        mix = (a.T[:, None, :] * qt).sum(0)  # (n, k)
        p = mix / mix.sum(1, keepdim=True)
        loss = -torch.log(p[torch.arange(n), yt]).mean() + 0.5 * l2 * (w ** 2).sum()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    return torch.softmax(w.detach(), dim=1).numpy()


def test_classify_weights_equal_a_direct_torch_optimisation():
    rng = np.random.default_rng(11)
    s, n, k = 3, 240, 4
    y = rng.integers(0, k, n)
    sharpness = rng.uniform(0.5, 4.0, (s, k))  # each scale is good at some classes, poor at others
    logits = rng.normal(0, 1, (s, n, k)) + sharpness[:, None, :] * np.eye(k)[y][None]
    q = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
    fit = fit_stacking(q, y, task="classify", l2=1e-3)
    np.testing.assert_allclose(fit.weights, _torch_fit(q, y, 1e-3), atol=2e-4)
    assert not np.allclose(fit.weights, 1 / s, atol=0.05)  # the classes' weights do differ
    ens = fit.predict(q)
    np.testing.assert_allclose(ens.sum(1), 1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_analytic_gradients_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(3), size=(2, 50))  # (scales, items, classes)
    y = rng.integers(0, 3, 50)
    sw = rng.uniform(0.5, 2, 50)
    sw /= sw.sum()
    w0 = rng.normal(0, 1, 6)
    f = lambda w: _nll_objective(w, q, y, sw, 0.01)[0]  # noqa: E731
    g = lambda w: _nll_objective(w, q, y, sw, 0.01)[1]  # noqa: E731
    assert check_grad(f, g, w0) < 1e-6
    qb, yb = q[:, :, 0].T, (rng.uniform(size=50) < q[0, :, 0]).astype(float)
    f = lambda w: _bce_objective(w, qb, yb, sw, 0.01)[0]  # noqa: E731
    g = lambda w: _bce_objective(w, qb, yb, sw, 0.01)[1]  # noqa: E731
    assert check_grad(f, g, w0[:2]) < 1e-6


def test_bad_inputs_are_refused_with_a_reason():
    probs, y = _two_experts(n=20)
    with pytest.raises(EnsembleError, match="scales, items, classes"):
        fit_stacking(probs[0], y, task="multilabel")
    with pytest.raises(EnsembleError, match="no validation item"):
        fit_stacking(probs, np.column_stack([y[:, 0], np.full(20, np.nan)]), task="multilabel")
    with pytest.raises(EnsembleError, match="class indices"):
        fit_stacking(probs, np.full(20, 5), task="classify")
    fit = fit_stacking(probs, y, task="multilabel")
    with pytest.raises(EnsembleError, match="same scales"):
        fit.predict(probs[:1])
