"""Standardized mean differences between two groups: Cohen's d and Hedges' g, each with a CI.

Conventions (those of ``pingouin.compute_effsize`` / ``compute_esci``, so results match pingouin):

- Sign: ``d = (mean(b) - mean(a)) / s_pooled`` with ``s_pooled^2 = ((n_a-1) s_a^2 + (n_b-1) s_b^2) /
  (n_a + n_b - 2)``: positive when ``b`` scores higher. Against a reference group, ``a`` is the reference
  (so POCUS vs ImageNet BRISQUE is positive, as published: d = 2.38). pingouin's ``compute_effsize(x, y)``
  is ``(mean(x) - mean(y)) / s_pooled``, i.e. ours with ``x = b, y = a``.
- Hedges' g = J d with the usual approximation ``J = 1 - 3 / (4 (n_a + n_b) - 9)`` (Hedges & Olkin 1985,
  eq. 5.10; pingouin's ``convert_effsize``). ``hedges_correction(..., exact=True)`` gives the exact
  ``J = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2))``, df = n_a + n_b - 2 (they differ by < 1e-3 for df >= 10).
- CI of d and of g: ``stat +/- t_{(1+confidence)/2, n_a+n_b-2} * SE`` with the large-sample
  ``SE = sqrt((n_a+n_b)/(n_a n_b) + stat^2 / (2 (n_a+n_b)))`` (Hedges & Olkin 1985, p. 86), applied to g with
  g itself, as ``pingouin.compute_esci`` does. Not the noncentral-t interval (JASP, R effsize noncentral=TRUE);
  the two agree closely for the group sizes of an image study.
- A group with fewer than 2 values, or a pooled SD of 0, gives NaN and a flag (``small_group``, ``zero_sd``)
  rather than +/-inf.

References: Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences. Hedges, L. V., Olkin, I.
(1985). Statistical Methods for Meta-Analysis.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats

from medgap.stats._checks import check_confidence
from medgap.stats.groups import GroupInput, _compared_groups, sum_of_squares


@dataclass(frozen=True)
class EffectSize:
    """Cohen's d and Hedges' g of ``b`` against ``a`` with their CIs (see the module docstring)."""

    n_a: int
    n_b: int
    mean_diff: float
    pooled_sd: float
    cohen_d: float
    d_ci_low: float
    d_ci_high: float
    hedges_g: float
    g_ci_low: float
    g_ci_high: float
    small_group: bool
    zero_sd: bool

    def to_dict(self) -> dict:
        return asdict(self)


def hedges_correction(n_a: int, n_b: int, exact: bool = False) -> float:
    """Small-sample bias factor J of Hedges' g = J d; NaN below 2 values per group."""
    if min(n_a, n_b) < 2:
        return float("nan")
    df = n_a + n_b - 2
    if exact:
        return float(np.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / np.sqrt(df / 2))
    return 1 - 3 / (4 * df - 1)  # = 1 - 3 / (4 (n_a + n_b) - 9)


def effect_size_ci(stat: float, n_a: int, n_b: int, confidence: float = 0.95) -> tuple[float, float]:
    """CI of a Cohen's d or Hedges' g computed from groups of n_a and n_b values (pingouin's compute_esci)."""
    check_confidence(confidence)
    if min(n_a, n_b) < 2 or not np.isfinite(stat):
        return (float("nan"), float("nan"))
    se = np.sqrt((n_a + n_b) / (n_a * n_b) + stat**2 / (2 * (n_a + n_b)))
    crit = stats.t.ppf((1 + confidence) / 2, n_a + n_b - 2)
    return (float(stat - crit * se), float(stat + crit * se))


def effect_size(a: npt.ArrayLike, b: npt.ArrayLike, confidence: float = 0.95,
                exact_hedges: bool = False) -> EffectSize:
    """Cohen's d and Hedges' g of ``b`` against ``a``; NaN values are dropped first."""
    a, b = (np.asarray(x, dtype=np.float64).ravel() for x in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    na, nb = a.size, b.size
    diff = float(b.mean() - a.mean()) if na and nb else np.nan
    small = min(na, nb) < 2
    pooled = np.nan if small else float(np.sqrt((sum_of_squares(a) + sum_of_squares(b)) / (na + nb - 2)))
    zero = pooled == 0
    d = np.nan if small or zero else diff / pooled
    j = hedges_correction(na, nb, exact=exact_hedges)
    g = d * j
    return EffectSize(na, nb, diff, pooled, d, *effect_size_ci(d, na, nb, confidence), g,
                      *effect_size_ci(g, na, nb, confidence), bool(small), bool(zero))


def _effect_rows(groups: dict[str, np.ndarray], pairs: list[tuple[str, str]], confidence: float) -> pd.DataFrame:
    """``effect_size`` for every pair at once, from per-group n, mean and sum of squares (the same arithmetic
    as ``effect_size``; one call per pair took seconds at 150 groups, 11175 pairs, through scipy's t.ppf)."""
    columns = ["group_a", "group_b", *EffectSize.__dataclass_fields__]
    if not pairs:
        return pd.DataFrame(columns=columns)
    names = list(groups)
    pos = {g: i for i, g in enumerate(names)}
    n = np.array([groups[g].size for g in names])
    mean = np.array([groups[g].mean() for g in names])
    ss = np.array([sum_of_squares(groups[g]) for g in names])
    a = np.array([pos[x] for x, _ in pairs])
    b = np.array([pos[y] for _, y in pairs])
    na, nb = n[a], n[b]
    small = np.minimum(na, nb) < 2
    diff = mean[b] - mean[a]
    dof = na + nb - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.where(small, np.nan, np.sqrt((ss[a] + ss[b]) / dof))
        zero = pooled == 0
        d = np.where(small | zero, np.nan, diff / pooled)
        g = d * np.where(small, np.nan, 1 - 3 / (4 * dof - 1))  # hedges_correction, vectorised
        crit = stats.t.ppf((1 + confidence) / 2, np.where(small, 1, dof))
        out = {"group_a": [x for x, _ in pairs], "group_b": [y for _, y in pairs], "n_a": na, "n_b": nb,
               "mean_diff": diff, "pooled_sd": pooled}
        for name, stat in (("d", d), ("g", g)):
            se = np.sqrt((na + nb) / (na * nb) + stat**2 / (2 * (na + nb)))
            half = np.where(np.isfinite(stat), crit * se, np.nan)  # effect_size_ci: NaN for small or non-finite
            out["cohen_d" if name == "d" else "hedges_g"] = stat
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = stat - half, stat + half
    out["small_group"], out["zero_sd"] = small, zero
    return pd.DataFrame(out, columns=columns)


def pairwise_effect_sizes(data: GroupInput, value: str | None = None, group: str | None = None,
                          confidence: float = 0.95) -> pd.DataFrame:
    """Cohen's d and Hedges' g for every pair of groups, ``group_b`` against ``group_a`` (a before b in group
    order, as the post hoc tables)."""
    check_confidence(confidence)
    groups = _compared_groups(data, value, group)
    return _effect_rows(groups, list(itertools.combinations(groups, 2)), confidence)


def effect_sizes_vs_reference(data: GroupInput, value: str | None = None, group: str | None = None,
                              reference: str | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Cohen's d and Hedges' g of every other group against ``reference`` (default: the first group), which
    is ``group_a`` in every row."""
    check_confidence(confidence)
    groups = _compared_groups(data, value, group)
    reference = resolve_reference(groups, reference)
    return _effect_rows(groups, [(reference, g) for g in groups if g != reference], confidence)


def resolve_reference(groups: dict[str, np.ndarray], reference: object | None) -> str:
    """The reference group's label: the first group when None; ValueError naming the groups when absent."""
    if reference is None:
        return next(iter(groups))
    if str(reference) not in groups:
        raise ValueError(f"reference group {str(reference)!r} has no values; groups with values are "
                         f"{', '.join(map(repr, groups))}. Pass one of them, or None for the first.")
    return str(reference)


def noncentral_t_ci(d: float, n_a: int, n_b: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact CI of Cohen's d (two independent normal groups with equal variances) by inverting the noncentral
    t distribution: t = d sqrt(n_a n_b / (n_a + n_b)) has df = n_a + n_b - 2 and noncentrality
    delta sqrt(n_a n_b / (n_a + n_b)); the bounds are the noncentralities at which the observed t is the
    upper and lower (1 - confidence) / 2 quantile, rescaled to d. NaN below 2 values per group or for a
    non-finite d, and NaN where SciPy's noncentral t cannot be evaluated (an extreme d on a few values).

    Hand-written because no maintained Python library gives it: ``pingouin.compute_esci`` uses the
    large-sample normal SE (it says it differs from JASP's noncentral interval), statsmodels and SciPy give no
    CI of d. It is a few lines on ``scipy.stats.nct`` and ``scipy.optimize.brentq``, as R's MBESS ``ci.smd``.

    References: Steiger, J. H., Fouladi, R. T. (1997). Noncentrality interval estimation and the evaluation of
    statistical models. In What if there were no significance tests?, 221-257. Cumming, G., Finch, S. (2001).
    Educational and Psychological Measurement 61, 532-574.
    """
    from scipy.optimize import brentq

    check_confidence(confidence)
    if min(n_a, n_b) < 2 or not np.isfinite(d):
        return (float("nan"), float("nan"))
    df = n_a + n_b - 2
    scale = np.sqrt(n_a * n_b / (n_a + n_b))
    t = float(d) * scale
    alpha = 1 - confidence

    def bound(target: float) -> float:
        # nct.cdf(t; df, ncp) falls from 1 to 0 as ncp grows: bracket the root by widening around t
        f = lambda ncp: stats.nct.cdf(t, df, ncp) - target  # noqa: E731
        width = 2.0 + abs(t) / np.sqrt(df)
        lo, hi = t - width, t + width
        while f(lo) < 0:
            lo -= width
            width *= 2
        while f(hi) > 0:
            hi += width
            width *= 2
        try:
            return brentq(f, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=200)
        except ValueError:  # SciPy's nct.cdf is NaN far in the tail (a d of 40 on 2 + 2 values): no interval
            return float("nan")

    return (float(bound(1 - alpha / 2) / scale), float(bound(alpha / 2) / scale))


def _weighted_stats(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resample (rows of ``w``): count, mean and sum of squared deviations of ``x`` with weights ``w``
    (x centred first so the sums of squares do not cancel)."""
    c = x.mean() if x.size else 0.0
    xc = x - c
    n = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = (w @ xc) / n
        ss = np.maximum(w @ (xc**2) - n * m**2, 0.0)
    return n, m + c, ss


def cluster_bootstrap_effects(values: npt.ArrayLike, groups: npt.ArrayLike, clusters: npt.ArrayLike,
                              reference: str, *, n_boot: int = 2000, seed: int = 0,
                              confidence: float = 0.95) -> pd.DataFrame:
    """Percentile bootstrap CIs of Cohen's d and Cliff's delta of every group against ``reference``, resampling
    clusters within each group.

    Each resample draws, in every group independently, as many of its clusters as it has, with replacement; a
    drawn cluster brings all its items (items are frames and clusters clips or patients; with one item per
    cluster, e.g. unit means, it is the ordinary two-sample bootstrap stratified by group). The statistics are
    those of the items of the resample (a cluster drawn twice counts twice), computed for every resample at
    once from item weights. The same seed and data give the same draws.

    Returns:
        one row per other group (in sorted order): group_a (reference), group_b, d_boot_low, d_boot_high,
        cliffs_boot_low, cliffs_boot_high, n_boot_valid (resamples where d is defined).
    """
    from medgap.stats.bootstrap import patient_resample_counts, percentile_interval

    check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    x = np.asarray(values, dtype=np.float64).ravel()
    g = np.asarray(groups).astype(str).ravel()
    c = np.asarray(clusters).astype(str).ravel()
    keep = np.isfinite(x)
    x, g, c = x[keep], g[keep], c[keep]
    names = sorted(set(g))
    if reference not in names:
        raise ValueError(f"reference group {reference!r} has no values; groups with values are "
                         f"{', '.join(map(repr, names))}")
    parts = {}
    for name in names:
        sel = g == name
        _, inverse = np.unique(c[sel], return_inverse=True)
        parts[name] = (x[sel], inverse, int(inverse.max()) + 1)
    others = [n for n in names if n != reference]
    rng = np.random.default_rng(seed)
    largest = max(p[0].size for p in parts.values())
    batch = max(1, (1 << 22) // max(largest, 1))
    d_draws, cl_draws = [], []
    xa, ia, ka = parts[reference]
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        weights = {}
        for name in names:  # one draw per group, in sorted order: reproducible from the seed
            xv, inverse, k = parts[name]
            weights[name] = patient_resample_counts(k, b, rng)[:, inverse].astype(np.float64)
        wa = weights[reference]
        na, ma, ssa = _weighted_stats(xa, wa)
        d_cols, cl_cols = [], []
        for name in others:
            xb = parts[name][0]
            wb = weights[name]
            nb, mb, ssb = _weighted_stats(xb, wb)
            with np.errstate(divide="ignore", invalid="ignore"):
                pooled = np.sqrt((ssa + ssb) / (na + nb - 2))
                d = np.where((pooled > 0) & (na >= 2) & (nb >= 2), (mb - ma) / pooled, np.nan)
            sign = np.sign(xb[None, :] - xa[:, None])  # (n_a, n_b): +1 where b is higher
            cl = ((wa @ sign) * wb).sum(axis=1) / (na * nb)
            d_cols.append(d)
            cl_cols.append(cl)
        d_draws.append(np.column_stack(d_cols) if d_cols else np.empty((b, 0)))
        cl_draws.append(np.column_stack(cl_cols) if cl_cols else np.empty((b, 0)))
    d_low, d_high, n_valid = percentile_interval(np.concatenate(d_draws), confidence)
    c_low, c_high, _ = percentile_interval(np.concatenate(cl_draws), confidence)
    return pd.DataFrame({"group_a": reference, "group_b": others, "d_boot_low": d_low, "d_boot_high": d_high,
                         "cliffs_boot_low": c_low, "cliffs_boot_high": c_high, "n_boot_valid": n_valid},
                        columns=["group_a", "group_b", "d_boot_low", "d_boot_high", "cliffs_boot_low",
                                 "cliffs_boot_high", "n_boot_valid"])
