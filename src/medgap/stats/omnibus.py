"""Omnibus tests across groups: one-way ANOVA, Welch's ANOVA, Kruskal-Wallis.

Each uses every group with at least one finite value (see ``medgap.stats.groups``) and returns a frozen
dataclass with ``to_dict()``. Degenerate input gives NaN rather than a warning or an exception, following
``scipy.stats.f_oneway``: see each function for when.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from medgap.stats.groups import GroupInput, _compared_groups, sum_of_squares, variance


@dataclass(frozen=True)
class AnovaResult:
    """Classic one-way ANOVA; eta_squared = SS_between / SS_total (equal to partial eta-squared here)."""

    F: float
    df_between: int
    df_within: int
    p: float
    eta_squared: float
    ss_between: float
    ss_within: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WelchAnovaResult:
    """Welch's heteroscedastic one-way ANOVA; df2 is fractional."""

    F: float
    df1: float
    df2: float
    p: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class KruskalResult:
    """Kruskal-Wallis H (tie-corrected) with epsilon-squared = H / (n - 1)."""

    H: float
    df: int
    p: float
    epsilon_squared: float

    def to_dict(self) -> dict:
        return asdict(self)


def one_way_anova(data: GroupInput, value: str | None = None, group: str | None = None) -> AnovaResult:
    """One-way ANOVA of ``value`` across ``group``.

    Zero variance within every group gives F = inf, p = 0 when the group means differ and F = p = NaN when
    all values are equal (as SciPy); every group of size 1 (df_within = 0) gives F = p = NaN.
    """
    vs = list(_compared_groups(data, value, group).values())
    allv = np.concatenate(vs)
    k, n = len(vs), allv.size
    ss_within = float(sum(sum_of_squares(v) for v in vs))
    if allv.min() == allv.max():
        ss_between = 0.0
    else:
        grand = allv.mean()
        ss_between = float(sum(v.size * (v.mean() - grand) ** 2 for v in vs))
    dfb, dfw = k - 1, n - k
    if dfw == 0 or ss_between == ss_within == 0:
        F = p = np.nan
    elif ss_within == 0:
        F, p = np.inf, 0.0
    else:
        F = (ss_between / dfb) / (ss_within / dfw)
        p = float(stats.f.sf(F, dfb, dfw))
    total = ss_between + ss_within
    eta = ss_between / total if total > 0 else np.nan
    return AnovaResult(float(F), dfb, dfw, p, eta, ss_between, ss_within)


def welch_anova(data: GroupInput, value: str | None = None, group: str | None = None) -> WelchAnovaResult:
    """Welch's one-way ANOVA for unequal variances.

    The weights n_i / s_i^2 need every group to have at least 2 values and a non-zero SD; otherwise F, df2 and
    p are NaN (pingouin raises instead).

    References: Welch, B. L. (1951). On the comparison of several mean values: an alternative approach.
    Biometrika 38, 330-336.
    """
    vs = list(_compared_groups(data, value, group).values())
    k = len(vs)
    n = np.array([v.size for v in vs], float)
    var = np.array([variance(v) for v in vs])
    if not (np.all(n >= 2) and np.all(var > 0)):
        return WelchAnovaResult(np.nan, k - 1.0, np.nan, np.nan)
    m = np.array([v.mean() for v in vs])
    w = n / var
    mw = (w * m).sum() / w.sum()
    lam = 3 * ((1 - w / w.sum()) ** 2 / (n - 1)).sum() / (k**2 - 1)
    F = ((w * (m - mw) ** 2).sum() / (k - 1)) / (1 + 2 * lam * (k - 2) / 3)
    df2 = 1 / lam
    return WelchAnovaResult(float(F), k - 1.0, float(df2), float(stats.f.sf(F, k - 1, df2)))


def kruskal_wallis(data: GroupInput, value: str | None = None, group: str | None = None) -> KruskalResult:
    """Kruskal-Wallis H test with the tie correction; p from chi-squared with k - 1 df.

    All values equal (the tie correction is 0) gives H = p = NaN, as SciPy.

    References: Kruskal, W. H., Wallis, W. A. (1952). JASA 47, 583-621. Epsilon-squared: Tomczak, M.,
    Tomczak, E. (2014). Trends in Sport Sciences 21, 19-25 (E_R^2 = H / ((n^2 - 1) / (n + 1))).
    """
    vs = list(_compared_groups(data, value, group).values())
    allv = np.concatenate(vs)
    n, k = allv.size, len(vs)
    ranks = stats.rankdata(allv)
    _, ties = np.unique(allv, return_counts=True)
    correction = 1 - (ties**3 - ties).sum() / (n**3 - n)
    if correction <= 0:
        return KruskalResult(np.nan, k - 1, np.nan, np.nan)
    bounds = np.cumsum([0] + [v.size for v in vs])
    # sum of n_i (mean rank_i - mean rank)^2: stabler than sum R_i^2 / n_i - 3 (n + 1)
    spread = sum((b - a) * (ranks[a:b].mean() - (n + 1) / 2) ** 2 for a, b in zip(bounds[:-1], bounds[1:]))
    H = 12 / (n * (n + 1)) * spread / correction
    return KruskalResult(float(H), k - 1, float(stats.chi2.sf(H, k - 1)), float(H / (n - 1)))
