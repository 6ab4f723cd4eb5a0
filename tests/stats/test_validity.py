"""medgap.stats.validity: SROCC/KROCC/PLCC/RMSE against MOS after the VQEG logistic, with bootstrap CIs over images.

Reference values come from plain float64 restatements written here (average ranks, Kendall's tau-b by pair
counts, Pearson's formula, the logistic written with np.exp), from scipy's own curve_fit where the fit is
compared, and from the closed form of Spearman's rho for a bivariate normal (rho_s = 6/pi * asin(rho/2))."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from medgap.stats.validity import (
    ValidityError,
    fit_logistic,
    logistic5,
    metric_validity,
    validity,
)


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    for v in np.unique(a):
        tie = a == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def _kendall_tau_b(a: np.ndarray, b: np.ndarray) -> float:
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(len(a), 1)
    s = (da * db)[iu].sum()
    n_a = (da[iu] != 0).sum()
    n_b = (db[iu] != 0).sum()
    return float(s / math.sqrt(n_a * n_b))


def _logistic_plain(x, b1, b2, b3, b4, b5):
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5


TRUE = (-60.0, 0.15, 30.0, -0.1, 55.0)  # a decreasing, BRISQUE-like mapping: lower score, higher MOS


@pytest.fixture(scope="module")
def data():
    """120 images: a BRISQUE-like score (rounded to 0.5, so there are ties) and a MOS from a known logistic."""
    rng = np.random.default_rng(3)
    x = np.round(rng.uniform(0, 70, 120) * 2) / 2
    y = _logistic_plain(x, *TRUE) + rng.normal(0, 6, x.size)
    return x, y


def test_logistic5_is_the_vqeg_formula():
    x = np.linspace(-50, 150, 41)
    np.testing.assert_allclose(logistic5(x, *TRUE), _logistic_plain(x, *TRUE), rtol=0, atol=1e-12)
    assert np.all(np.isfinite(logistic5(np.array([-1e6, 1e6]), 10, 5, 0, 0, 0)))  # no overflow at the ends


def test_point_estimates_match_plain_restatements(data):
    x, y = data
    r = metric_validity(x, y, metric="brisque", lower_is_better=True, n_resamples=0)
    assert r.n == 120
    assert r.srocc.value == pytest.approx(-_pearson(_ranks(x), _ranks(y)), abs=1e-12)  # sign: lower is better
    assert r.krocc.value == pytest.approx(-_kendall_tau_b(x, y), abs=1e-12)
    pred = _logistic_plain(x, *r.fit.params)
    assert r.plcc.value == pytest.approx(_pearson(pred, y), abs=1e-9)
    assert r.rmse.value == pytest.approx(math.sqrt(np.mean((y - pred) ** 2)), abs=1e-9)
    assert r.srocc.value > 0.5  # agrees with the raters once signed by direction
    assert math.isnan(r.srocc.low) and math.isnan(r.srocc.high)  # n_resamples=0: no interval


def test_direction_only_flips_the_rank_correlations(data):
    x, y = data
    lower = metric_validity(x, y, lower_is_better=True, n_resamples=0)
    higher = metric_validity(x, y, lower_is_better=False, n_resamples=0)
    assert lower.srocc.value == pytest.approx(-higher.srocc.value)
    assert lower.krocc.value == pytest.approx(-higher.krocc.value)
    assert lower.plcc.value == pytest.approx(higher.plcc.value) and lower.plcc.value > 0
    assert lower.rmse.value == pytest.approx(higher.rmse.value)


def test_logistic_fit_is_a_least_squares_optimum(data):
    """The fitted mapping is at least as close to MOS as the generating curve and as scipy's curve_fit started
    at the true parameters within the same monotonic (decreasing) bounds (an independent optimiser run:
    finite-difference Jacobian, unstandardised scores), and it recovers the curve."""
    from scipy.optimize import curve_fit

    x, y = data
    fit = fit_logistic(x, y)
    assert fit.kind == "logistic5" and fit.note == ""
    sse = float(np.sum((y - fit(x)) ** 2))
    assert sse <= float(np.sum((y - _logistic_plain(x, *TRUE)) ** 2)) + 1e-6
    inf = np.inf
    p, _ = curve_fit(_logistic_plain, x, y, p0=TRUE, bounds=([-inf, 0, -inf, -inf, -inf], [0, inf, inf, 0, inf]),
                     max_nfev=20000)
    assert sse <= float(np.sum((y - _logistic_plain(x, *p)) ** 2)) * (1 + 1e-6)
    assert sse == pytest.approx(float(np.sum((y - _logistic_plain(x, *p)) ** 2)), rel=1e-3)
    grid = np.linspace(0, 70, 50)
    assert np.max(np.abs(fit(grid) - _logistic_plain(grid, *TRUE))) < 8  # noise sd 6 on 120 points


def test_mapping_is_monotonic_in_the_rank_direction():
    """Unconstrained, the 5-parameter form bends back on small noisy sets (a step down inside an upward trend):
    the fitted mapping must be monotonic, here decreasing like the data."""
    rng = np.random.default_rng(11)
    for _ in range(8):
        x = rng.uniform(0, 50, 30)
        y = 60 - 0.3 * x + rng.normal(0, 12, 30)
        fit = fit_logistic(x, y)
        steps = np.diff(fit(np.linspace(x.min(), x.max(), 400)))
        rho = _pearson(_ranks(x), _ranks(y))
        if rho < 0:
            assert np.all(steps <= 1e-9), fit
        else:
            assert np.all(steps >= -1e-9), fit


def test_few_images_fall_back_to_a_line_and_say_so():
    x = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    y = np.array([10.0, 12.0, 11.0, 20.0, 30.0])
    r = metric_validity(x, y, n_resamples=0)
    assert r.fit.kind == "linear" and "at least 8 images" in r.fit.note
    assert r.plcc.value == pytest.approx(abs(_pearson(x, y)), abs=1e-12)  # a line keeps Pearson's r


def test_bootstrap_interval_covers_the_estimate_and_is_seeded():
    rng = np.random.default_rng(5)
    rho = 0.5
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=200)
    x, y = z[:, 0], 50 + 15 * z[:, 1]
    a = metric_validity(x, y, n_resamples=200, seed=1)
    b = metric_validity(x, y, n_resamples=200, seed=1)
    c = metric_validity(x, y, n_resamples=200, seed=2)
    for name in ("srocc", "krocc", "plcc", "rmse"):
        e = getattr(a, name)
        assert e.low < e.value < e.high, name
        assert (e.low, e.high) == (getattr(b, name).low, getattr(b, name).high)
    assert (a.srocc.low, a.srocc.high) != (c.srocc.low, c.srocc.high)
    # the population Spearman correlation of a bivariate normal: 6/pi * asin(rho/2) = 0.4826
    assert a.srocc.low < 6 / math.pi * math.asin(rho / 2) < a.srocc.high
    assert a.srocc.high - a.srocc.low < 0.3  # about 4 standard errors of rho_s at n = 200
    pct = metric_validity(x, y, n_resamples=200, seed=1, method="percentile")
    assert pct.srocc.low < pct.srocc.value < pct.srocc.high and (pct.srocc.low, pct.srocc.high) != (a.srocc.low,
                                                                                                     a.srocc.high)


@pytest.mark.parametrize("x, y, words", [
    ([1, 2, 3], [1, 2], "3 scores but 2 ratings"),
    ([1, 2, np.nan, 4], [1, 2, 3, 4], "finite"),
    ([1, 1, 1, 1], [1, 2, 3, 4], "same score"),
    ([1, 2], [1, 2], "at least 3"),
    ([1, 2, 3, 4], [5, 5, 5, 5], "same rating"),
])
def test_refuses_inputs_it_cannot_compare(x, y, words):
    with pytest.raises(ValidityError, match=words):
        metric_validity(x, y, metric="brisque", n_resamples=0)


def test_argument_checks():
    x, y = np.arange(10.0), np.arange(10.0) ** 2
    with pytest.raises(ValueError, match="confidence"):
        metric_validity(x, y, confidence=95)
    with pytest.raises(ValueError, match="bca, percentile"):
        metric_validity(x, y, method="basic")
    with pytest.raises(ValueError, match="n_resamples"):
        metric_validity(x, y, n_resamples=-1)


def test_result_table_and_strict_json(data):
    x, y = data
    res = validity({"brisque": x, "noise": np.random.default_rng(0).normal(size=x.size)}, y,
                   lower_is_better={"brisque": True}, n_resamples=0)
    df = res.to_frame()
    assert list(df.metric) == ["brisque", "noise"]
    assert {"n", "srocc", "srocc_low", "srocc_high", "krocc", "plcc_low", "rmse_high", "mapping"} <= set(df.columns)
    assert list(df.direction) == ["lower is better", "as scored"]
    text = json.dumps(res.to_dict(), allow_nan=False)  # NaN bounds (no bootstrap) become null
    assert json.loads(text)["metrics"][0]["srocc_low"] is None
    assert json.loads(text)["unit"] == "image"
