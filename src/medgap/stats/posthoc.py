"""Post hoc pairwise comparisons after an omnibus test: Tukey HSD and Games-Howell.

Both refer ``sqrt(2) * |diff| / se`` to the studentized range distribution with k groups (every group with a
value) and differ only in the standard error and degrees of freedom, so they share one core. One row per pair
(``group_a`` before ``group_b`` in group order) with ``diff = mean(b) - mean(a)`` (statsmodels' sign; pingouin
and ``scipy.stats.tukey_hsd`` report a - b), ``se`` the standard error of ``diff``, ``t = diff / se``, ``df``,
the simultaneous CI ``diff +/- q_{confidence, k, df} / sqrt(2) * se`` and the adjusted ``p_adj``.
``small_group`` marks pairs with a group of fewer than 2 values.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from medgap.stats._studentized_range import studentized_range_ppf, studentized_range_sf
from medgap.stats._checks import check_confidence
from medgap.stats.groups import GroupInput, _compared_groups, sum_of_squares, variance

POSTHOC_COLUMNS = ["group_a", "group_b", "n_a", "n_b", "diff", "se", "t", "df", "ci_low", "ci_high", "p_adj",
                   "small_group"]


def _pair_index(k: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = zip(*itertools.combinations(range(k), 2))
    return np.array(a), np.array(b)


def _studentized_range_pairs(names: list[str], means: np.ndarray, sizes: np.ndarray, se: np.ndarray,
                             df: np.ndarray, confidence: float) -> pd.DataFrame:
    """Rows for every pair given per-pair standard errors and degrees of freedom (NaN propagates)."""
    k = len(names)
    a, b = _pair_index(k)
    diff = means[b] - means[a]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / se
    p = np.full(diff.shape, np.nan)
    half = np.full(diff.shape, np.nan)
    ok = np.isfinite(df) & (df > 0) & ~np.isnan(t)
    if ok.any():
        # vectorised over pairs: scipy's studentized_range integrates numerically per value (~10 ms per sf,
        # ~0.2 s per ppf), which for Games-Howell's per-pair df took minutes at 40 groups (issue 8)
        p[ok] = studentized_range_sf(np.sqrt(2) * np.abs(t[ok]), k, df[ok])
        # one quantile per distinct df (Tukey has one; each Games-Howell pair its own)
        dfs, inverse = np.unique(df[ok], return_inverse=True)
        q = studentized_range_ppf(confidence, k, dfs)[inverse]
        half[ok] = q / np.sqrt(2) * se[ok]
    return pd.DataFrame({
        "group_a": [names[i] for i in a], "group_b": [names[j] for j in b], "n_a": sizes[a], "n_b": sizes[b],
        "diff": diff, "se": se, "t": t, "df": df, "ci_low": diff - half, "ci_high": diff + half, "p_adj": p,
        "small_group": np.minimum(sizes[a], sizes[b]) < 2,
    }, columns=POSTHOC_COLUMNS)


def tukey_hsd(data: GroupInput, value: str | None = None, group: str | None = None,
              confidence: float = 0.95) -> pd.DataFrame:
    """Tukey's HSD (Tukey-Kramer for unequal n): se = sqrt(MSE (1/n_a + 1/n_b)), df = N - k.

    A group with a single value is compared through the pooled MSE (valid, but flagged ``small_group``);
    with no within-group df every p and CI is NaN.

    References: Tukey, J. W. (1949); Kramer, C. Y. (1956). Biometrics 12, 307-310.
    """
    check_confidence(confidence)
    groups = _compared_groups(data, value, group)
    vs = list(groups.values())
    sizes = np.array([v.size for v in vs])
    df_within = sizes.sum() - len(vs)
    mse = sum(sum_of_squares(v) for v in vs) / df_within if df_within > 0 else np.nan
    a, b = _pair_index(len(vs))
    se = np.sqrt(mse * (1 / sizes[a] + 1 / sizes[b]))
    return _studentized_range_pairs(list(groups), np.array([v.mean() for v in vs]), sizes, se,
                                    np.full(a.shape, float(df_within)), confidence)


def games_howell(data: GroupInput, value: str | None = None, group: str | None = None,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Games-Howell test (unequal variances and n): Welch's se = sqrt(s_a^2/n_a + s_b^2/n_b) and
    Welch-Satterthwaite df per pair. Pairs with a group of fewer than 2 values, or two constant groups, are NaN.

    References: Games, P. A., Howell, J. F. (1976). Journal of Educational Statistics 1, 113-125.
    """
    check_confidence(confidence)
    groups = _compared_groups(data, value, group)
    vs = list(groups.values())
    sizes = np.array([v.size for v in vs])
    v_over_n = np.array([variance(v) for v in vs]) / sizes
    a, b = _pair_index(len(vs))
    se2 = v_over_n[a] + v_over_n[b]
    with np.errstate(divide="ignore", invalid="ignore"):
        df = se2**2 / (v_over_n[a] ** 2 / (sizes[a] - 1) + v_over_n[b] ** 2 / (sizes[b] - 1))
    return _studentized_range_pairs(list(groups), np.array([v.mean() for v in vs]), sizes, np.sqrt(se2), df,
                                    confidence)
