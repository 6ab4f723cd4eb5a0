"""Validity of a quality metric against human ratings: how well its scores track mean opinion scores (MOS).

For each metric, over the images that have both a score and a MOS (the unit of analysis is the *image*; a
metric's frames are averaged per file before this point):

- **SROCC** (Spearman) and **KROCC** (Kendall's tau-b) between the raw scores and MOS. They are rank-based, so
  no mapping is needed; they measure *monotonicity*.
- **PLCC** (Pearson) and **RMSE** between MOS and the scores *after* the VQEG monotonic 5-parameter logistic
  mapping ``q(x) = b1 * (0.5 - 1 / (1 + exp(b2 * (x - b3)))) + b4 * x + b5``, fitted to MOS by least squares
  (:func:`fit_logistic`). They measure *accuracy* once the scale is matched; RMSE is in MOS units.

Sign convention: SROCC and KROCC are reported **in the metric's declared direction**: for a lower-is-better
metric (BRISQUE, NIQE, PIQE) the correlation with MOS is multiplied by -1. A positive value means the metric
orders the images as the raters did, a negative one that it orders them the wrong way round (published tables
usually give absolute values, which would hide that). PLCC after the fitted mapping is non-negative by
construction (the mapping absorbs the direction).

Confidence intervals come from a bootstrap over images (``scipy.stats.bootstrap``, paired resampling of
(score, MOS) pairs, BCa by default, or percentile); the logistic is refitted in every resample, since the
mapping is part of what PLCC and RMSE estimate.

References: VQEG, "Final report from the Video Quality Experts Group on the validation of objective models of
video quality assessment, phase II" (2003), section 5 (5-parameter logistic with a linear term as used by
Sheikh, Sabir & Bovik, IEEE TIP 15(11):3440-3451, 2006); Efron & Tibshirani, An Introduction to the
Bootstrap (1993), ch. 14 (BCa).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special, stats

from medgap.stats._checks import check_confidence

METHODS = ("bca", "percentile")
"""Bootstrap interval methods (scipy.stats.bootstrap's 'BCa' and 'percentile')."""

STATISTICS = ("srocc", "krocc", "plcc", "rmse")

MIN_IMAGES = 3
"""Fewest images for which correlations are computed at all."""
MIN_IMAGES_LOGISTIC = 8
"""Fewest images for a 5-parameter fit; with fewer, the mapping is linear (said in the fit's note)."""


class ValidityError(ValueError):
    """Scores and ratings that cannot be compared (lengths differ, too few images, non-finite or constant
    values); the message names the metric and what to fix."""


def logistic5(x: npt.ArrayLike, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """The VQEG 5-parameter logistic with a linear term:
    ``b1 * (0.5 - 1 / (1 + exp(b2 * (x - b3)))) + b4 * x + b5`` (overflow-free via ``scipy.special.expit``)."""
    x = np.asarray(x, dtype=np.float64)
    return b1 * (0.5 - special.expit(-b2 * (x - b3))) + b4 * x + b5


@dataclass(frozen=True)
class LogisticFit:
    """A fitted mapping from metric scores to MOS.

    ``kind`` is ``"logistic5"`` (``params`` = b1..b5 of :func:`logistic5`, in score units) or ``"linear"``
    (``params`` = (slope, intercept)): the linear fallback is used when the logistic fit does not converge,
    gives non-finite values, fits worse than a straight line (a local minimum), or there are fewer than
    :data:`MIN_IMAGES_LOGISTIC` images; ``note`` then says which."""

    kind: str
    params: tuple[float, ...]
    note: str = ""

    def __call__(self, x: npt.ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "linear":
            slope, intercept = self.params
            return slope * x + intercept
        return logistic5(x, *self.params)


def _standardise(x: np.ndarray) -> tuple[float, float]:
    mu = float(np.mean(x))
    sd = float(np.std(x))
    return mu, sd if sd > 0 else 1.0


def _to_score_units(p: np.ndarray, mu: float, sd: float) -> tuple[float, ...]:
    """b1..b5 fitted on z = (x - mu) / sd, written for x itself."""
    b1, b2, b3, b4, b5 = map(float, p)
    return (b1, b2 / sd, mu + sd * b3, b4 / sd, b5 - b4 * mu / sd)


def _linear(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _start(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Starting values on standardised scores: the logistic spans the MOS range in the direction of the rank
    correlation, centred on the mean score with unit slope; no linear term; offset at the mean MOS."""
    rho = stats.spearmanr(z, y).statistic
    direction = 1.0 if not np.isfinite(rho) or rho >= 0 else -1.0
    return np.array([direction * float(np.ptp(y)), 1.0, 0.0, direction * 1e-3, float(np.mean(y))])


def _jacobian(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    """d logistic5 / d(b1..b5) at ``z`` (analytic: a few times fewer evaluations than finite differences)."""
    b1, b2, b3 = p[0], p[1], p[2]
    s = special.expit(-b2 * (z - b3))
    d = s * (1 - s)
    return np.column_stack([0.5 - s, b1 * d * (z - b3), -b1 * d * b2, z, np.ones_like(z)])


def _bounds(direction: float) -> tuple[np.ndarray, np.ndarray]:
    """Parameter bounds that keep the mapping monotonic in ``direction`` (+1 increasing, -1 decreasing): the
    logistic part and the linear term both go that way (b1 * b2 and b4 of the sign of ``direction``, b2 >= 0).
    Unconstrained, the 5-parameter form can bend back (a step down inside an upward trend), which VQEG's
    "monotonic mapping" excludes and which inflates PLCC on small sets."""
    inf = np.inf
    if direction >= 0:
        return np.array([0, 0, -inf, 0, -inf]), np.array([inf, inf, inf, inf, inf])
    return np.array([-inf, 0, -inf, -inf, -inf]), np.array([0, inf, inf, 0, inf])


def _fit_z(z: np.ndarray, y: np.ndarray, p0: np.ndarray, max_nfev: int, tol: float) -> tuple[np.ndarray | None, bool]:
    """Least-squares b1..b5 on standardised scores within :func:`_bounds` (``scipy.optimize.least_squares``,
    trust-region reflective, as ``scipy.optimize.curve_fit`` does with bounds, called directly to give it the
    analytic Jacobian and an evaluation budget): (parameters or None when the fit fails, whether it converged
    within ``max_nfev``). The direction is that of ``p0``'s b1."""
    lb, ub = _bounds(1.0 if p0[0] >= 0 else -1.0)
    x0 = np.clip(p0, lb, ub)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            res = optimize.least_squares(lambda p: logistic5(z, *p) - y, x0, jac=lambda p: _jacobian(z, p),
                                         bounds=(lb, ub), method="trf", max_nfev=max_nfev, ftol=tol, xtol=tol)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None, False
    if not np.all(np.isfinite(res.x)):
        return None, False
    return res.x, res.status > 0


def _sse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((y - pred) ** 2))


FULL_NFEV = 5000
"""Evaluation budget of the fit on all images (tolerances 1e-8); a fit that has not converged by then falls back
to a line (data close to linear drive the logistic towards unbounded parameters: a line is then the mapping)."""
RESAMPLE_TOL = 1e-6
"""ftol/xtol of the refit in a resample (the full fit uses scipy's 1e-8)."""
RESAMPLE_NFEV = 400
"""Evaluation budget per bootstrap resample, started from the full fit. When the data ask for a shape that the
logistic reaches only with unbounded parameters (b1 -> inf, b2 -> 0: a cubic term), Levenberg-Marquardt creeps
along a flat valley of the squared error; the best mapping found within the budget is used and the resample is
counted in ``capped_resamples``. Measured on the 627 CLIVE photos (BRISQUE, PIQE; 100 resamples): PLCC within
0.0012 and RMSE within 0.011 MOS points of a 2000-evaluation budget, at a third of the time or less. When the
full fit is a line (fallback), every resample fits a line too."""


def _fit(x: np.ndarray, y: np.ndarray, mu: float, sd: float, p0: np.ndarray | None
         ) -> tuple[LogisticFit, np.ndarray | None, bool]:
    """The fit, its standardised parameters (None for the linear fallback) and whether the evaluation budget
    ran out. ``p0=None``: the fit on all images (strict: not converged -> line); else a resample started at
    ``p0`` (the best mapping within :data:`RESAMPLE_NFEV` evaluations)."""
    linear = _linear(x, y)
    if x.size < MIN_IMAGES_LOGISTIC:
        return LogisticFit("linear", linear, f"linear mapping: a 5-parameter logistic needs at least "
                                             f"{MIN_IMAGES_LOGISTIC} images, got {x.size}"), None, False
    z = (x - mu) / sd
    resample = p0 is not None
    p, converged = _fit_z(z, y, p0 if resample else _start(z, y), RESAMPLE_NFEV if resample else FULL_NFEV,
                          RESAMPLE_TOL if resample else 1e-8)
    capped = resample and p is not None and not converged
    if not resample and not converged:
        return LogisticFit("linear", linear, f"linear mapping: the 5-parameter logistic fit did not converge "
                                             f"within {FULL_NFEV} evaluations"), None, False
    if p is None:
        return LogisticFit("linear", linear, "linear mapping: the 5-parameter logistic fit failed"), None, False
    fit = LogisticFit("logistic5", _to_score_units(p, mu, sd))
    pred = fit(x)
    if not np.all(np.isfinite(pred)):
        return LogisticFit("linear", linear, "linear mapping: the logistic fit gave non-finite values"), None, False
    if _sse(pred, y) > _sse(linear[0] * x + linear[1], y) * (1 + 1e-9):  # a straight line (b1 = 0) fits better
        return LogisticFit("linear", linear, "linear mapping: the logistic fit ended in a local minimum worse "
                                             "than a straight line"), None, False
    return fit, p, capped


def fit_logistic(scores: npt.ArrayLike, mos: npt.ArrayLike) -> LogisticFit:
    """Fit the VQEG 5-parameter logistic (:func:`logistic5`) from scores to MOS by least squares
    (Levenberg-Marquardt as in ``scipy.optimize.curve_fit``, on standardised scores for conditioning; starting
    values in :func:`_start`). Falls back to a straight line, with a note, when the fit does not converge
    within :data:`FULL_NFEV` evaluations or cannot be used (see :class:`LogisticFit`)."""
    x, y = _pairs(scores, mos, "scores")
    mu, sd = _standardise(x)
    return _fit(x, y, mu, sd, None)[0]


def _pairs(scores: npt.ArrayLike, mos: npt.ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(mos, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValidityError(f"{name}: {x.size} scores but {y.size} ratings; give one score per rated image")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValidityError(f"{name}: scores and ratings must be finite; drop the images without a score or "
                            "rating first")
    if x.size < MIN_IMAGES:
        raise ValidityError(f"{name}: {x.size} image(s) with a score and a rating; correlations need at least "
                            f"{MIN_IMAGES}")
    if np.ptp(x) == 0:
        raise ValidityError(f"{name}: every image has the same score ({x[0]:g}); a constant metric has no "
                            "correlation with the ratings")
    if np.ptp(y) == 0:
        raise ValidityError(f"{name}: every image has the same rating ({y[0]:g}); validity needs ratings that vary")
    return x, y


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap confidence interval (NaN bounds when the bootstrap is degenerate)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class MetricValidity:
    """One metric's agreement with the ratings over ``n`` images (see the module docstring)."""

    metric: str
    n: int
    lower_is_better: bool | None
    srocc: Estimate
    krocc: Estimate
    plcc: Estimate
    rmse: Estimate
    fit: LogisticFit
    linear_resamples: int = 0
    """Bootstrap resamples (and BCa jackknife samples) whose refit fell back to a straight line."""
    capped_resamples: int = 0
    """Resamples whose refit used its evaluation budget (:data:`RESAMPLE_NFEV`); the best mapping found counts."""

    @property
    def direction(self) -> str:
        return {True: "lower is better", False: "higher is better"}.get(self.lower_is_better, "as scored")

    def row(self) -> dict[str, object]:
        out: dict[str, object] = {"metric": self.metric, "n": self.n, "direction": self.direction}
        for name in STATISTICS:
            e: Estimate = getattr(self, name)
            out.update({name: e.value, f"{name}_low": e.low, f"{name}_high": e.high})
        out["mapping"] = self.fit.kind
        out["mapping_params"] = list(self.fit.params)
        out["mapping_note"] = self.fit.note
        out["linear_resamples"] = self.linear_resamples
        out["capped_resamples"] = self.capped_resamples
        return out


@dataclass(frozen=True)
class ValidityResult:
    """Validity of several metrics against the same ratings; :meth:`to_frame` gives one row per metric."""

    metrics: dict[str, MetricValidity]
    confidence: float
    n_resamples: int
    method: str
    seed: int
    unit: str = "image"
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, metric: str) -> MetricValidity:
        return self.metrics[metric]

    def __iter__(self):
        return iter(self.metrics.values())

    def __len__(self) -> int:
        return len(self.metrics)

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: ``metric, n, direction, srocc, srocc_low, srocc_high, krocc, ..., plcc, ...,
        rmse, ..., mapping, mapping_params, mapping_note, linear_resamples``."""
        rows = [m.row() for m in self.metrics.values()]
        cols = ["metric", "n", "direction"] + [f"{s}{suffix}" for s in STATISTICS for suffix in ("", "_low", "_high")] \
            + ["mapping", "mapping_params", "mapping_note", "linear_resamples", "capped_resamples"]
        return pd.DataFrame(rows, columns=cols)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (NaN as None): the settings and one entry per metric."""
        from medgap._json import jsonable

        return jsonable({"unit": self.unit, "confidence": self.confidence, "n_resamples": self.n_resamples,
                         "interval": self.method, "seed": self.seed, "sign_convention":
                         "srocc/krocc multiplied by -1 for lower-is-better metrics (positive: agrees with the "
                         "raters); plcc/rmse after the fitted logistic mapping", "notes": self.notes,
                         "metrics": self.to_frame().to_dict(orient="records")})


class _Statistic:
    """SROCC, KROCC (signed by direction), PLCC and RMSE after refitting the mapping, for one resample."""

    def __init__(self, sign: float, mu: float, sd: float, p0: np.ndarray | None):
        self.sign, self.mu, self.sd, self.p0 = sign, mu, sd, p0
        self.linear = 0
        self.capped = 0

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if np.ptp(x) == 0 or np.ptp(y) == 0:  # a resample of one distinct image (tiny n): undefined
            return np.full(4, np.nan)
        if self.p0 is None:  # the full fit is a line: so is every resample's (the same estimator)
            return _point(x, y, LogisticFit("linear", _linear(x, y)), self.sign)
        fit, _, capped = _fit(x, y, self.mu, self.sd, self.p0)
        self.linear += fit.kind == "linear"
        self.capped += capped
        return _point(x, y, fit, self.sign)


def _point(x: np.ndarray, y: np.ndarray, fit: LogisticFit, sign: float) -> np.ndarray:
    pred = fit(x)
    srocc = sign * stats.spearmanr(x, y).statistic
    krocc = sign * stats.kendalltau(x, y).statistic
    plcc = stats.pearsonr(pred, y).statistic if np.ptp(pred) > 0 else np.nan
    rmse = math.sqrt(float(np.mean((y - pred) ** 2)))
    return np.array([srocc, krocc, plcc, rmse], dtype=np.float64)


def metric_validity(
    scores: npt.ArrayLike,
    mos: npt.ArrayLike,
    *,
    metric: str = "score",
    lower_is_better: bool | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    method: str = "bca",
    seed: int = 0,
) -> MetricValidity:
    """SROCC, KROCC, PLCC and RMSE of one metric's ``scores`` against ``mos`` (one value per image), with
    bootstrap CIs over images.

    ``lower_is_better``: the metric's direction (``medgap.quality.get_metric_info(name).lower_is_better``);
    True flips the sign of SROCC/KROCC so that positive means agreement with the raters; None leaves them as
    computed. ``method``: ``"bca"`` (bias-corrected and accelerated; its jackknife refits the mapping n more
    times) or ``"percentile"``. ``n_resamples=0`` skips the bootstrap (NaN bounds). Same seed and data, same
    intervals.
    """
    check_confidence(confidence)
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 0:
        raise ValueError(f"n_resamples must be a whole number >= 0 (0: no intervals), got {n_resamples!r}")
    x, y = _pairs(scores, mos, metric)
    sign = -1.0 if lower_is_better else 1.0
    mu, sd = _standardise(x)
    fit, p, _ = _fit(x, y, mu, sd, None)
    point = _point(x, y, fit, sign)
    low = high = np.full(4, np.nan)
    # resamples refit the logistic from the full fit's parameters, or a line when the full fit is a line
    statistic = _Statistic(sign, mu, sd, p)
    if n_resamples > 0:
        with warnings.catch_warnings():
            # a degenerate bootstrap distribution (tiny n) gives NaN bounds, which the result shows
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.bootstrap((x, y), statistic, paired=True, vectorized=False, n_resamples=int(n_resamples),
                                  confidence_level=confidence, method="BCa" if method == "bca" else "percentile",
                                  rng=np.random.default_rng(seed))
        low = np.asarray(res.confidence_interval.low, dtype=np.float64)
        high = np.asarray(res.confidence_interval.high, dtype=np.float64)
    est = [Estimate(float(v), float(lo), float(hi)) for v, lo, hi in zip(point, low, high)]
    return MetricValidity(metric, int(x.size), lower_is_better, *est, fit=fit, linear_resamples=statistic.linear,
                          capped_resamples=statistic.capped)


def validity(
    scores: Mapping[str, npt.ArrayLike],
    mos: npt.ArrayLike,
    *,
    lower_is_better: Mapping[str, bool | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    method: str = "bca",
    seed: int = 0,
) -> ValidityResult:
    """:func:`metric_validity` for each ``{metric: scores}`` against the same ``mos`` (same seed for each, so
    the resampled images are the same across metrics when they cover the same images)."""
    directions = dict(lower_is_better or {})
    out = {name: metric_validity(s, mos, metric=name, lower_is_better=directions.get(name), confidence=confidence,
                                 n_resamples=n_resamples, method=method, seed=seed)
           for name, s in scores.items()}
    return ValidityResult(out, confidence, n_resamples, method, seed)


__all__ = ["METHODS", "Estimate", "LogisticFit", "MetricValidity", "ValidityError", "ValidityResult",
           "fit_logistic", "logistic5", "metric_validity", "validity"]
