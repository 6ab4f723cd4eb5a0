"""Tukey HSD and Games-Howell against scipy.stats.tukey_hsd, statsmodels and pingouin (1e-8 relative).

All three references get their p values and quantiles from scipy.stats.studentized_range (statsmodels since
SciPy 1.7), as medgap does, but each computes the means, standard errors and df itself. studentized_range.sf
integrates numerically, so p values below ~1e-12 carry absolute noise of that size: those are checked to
1e-12 absolute, the rest to 1e-8 relative.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.sandbox.stats.multicomp import MultiComparison

from medgap.stats import games_howell, tukey_hsd

REL = 1e-8
P_ABS = 1e-12


def _statsmodels(clean: pd.DataFrame, use_var: str):
    return MultiComparison(clean.brisque.to_numpy(), clean.group.to_numpy()).tukeyhsd(alpha=0.05, use_var=use_var)


def _check_against_scipy(table: pd.DataFrame, samples: dict[str, np.ndarray], equal_var: bool) -> None:
    res = stats.tukey_hsd(*samples.values(), equal_var=equal_var)
    ci = res.confidence_interval(0.95)
    names = list(samples)
    pairs = list(itertools.combinations(range(len(names)), 2))
    i, j = np.array(pairs).T
    assert table.group_a.tolist() == [names[k] for k in i] and table.group_b.tolist() == [names[k] for k in j]
    # scipy's [i, j] entries are mean(i) - mean(j); ours mean(b) - mean(a) with a = i, b = j
    np.testing.assert_allclose(table["diff"], -res.statistic[i, j], rtol=REL)
    np.testing.assert_allclose(table.ci_low, -ci.high[i, j], rtol=REL)
    np.testing.assert_allclose(table.ci_high, -ci.low[i, j], rtol=REL)
    np.testing.assert_allclose(table.p_adj, res.pvalue[i, j], rtol=REL, atol=P_ABS)


def _check_against_statsmodels(table: pd.DataFrame, sm) -> None:
    np.testing.assert_allclose(table["diff"], sm.meandiffs, rtol=REL)  # statsmodels: mean(group2) - mean(group1)
    np.testing.assert_allclose(table.se, sm.std_pairs * np.sqrt(2), rtol=REL)  # it reports se / sqrt(2)
    np.testing.assert_allclose(table[["ci_low", "ci_high"]], sm.confint, rtol=REL)
    np.testing.assert_allclose(table.p_adj, sm.pvalues, rtol=REL, atol=P_ABS)


def _check_against_pingouin(table: pd.DataFrame, ref: pd.DataFrame, p_column: str) -> None:
    assert table.group_a.tolist() == ref.A.tolist() and table.group_b.tolist() == ref.B.tolist()
    np.testing.assert_allclose(table["diff"], -ref["diff"], rtol=REL)  # pingouin: mean(A) - mean(B)
    np.testing.assert_allclose(table.se, ref.se, rtol=REL)
    np.testing.assert_allclose(table.t, -ref["T"], rtol=REL)
    np.testing.assert_allclose(table.p_adj, ref[p_column], rtol=REL, atol=P_ABS)


def test_tukey_against_scipy_statsmodels_pingouin(study, clean, samples):
    t = tukey_hsd(study, "brisque", "group")
    assert len(t) == 10 and (t.df == len(clean) - 5).all() and not t.small_group.any()
    assert (t.p_adj > 1e-6).any() and (t.p_adj < 1e-6).any()  # both regimes of the tolerance are exercised
    _check_against_scipy(t, samples, equal_var=True)
    _check_against_statsmodels(t, _statsmodels(clean, "equal"))
    _check_against_pingouin(t, pg.pairwise_tukey(data=clean, dv="brisque", between="group"), "p_tukey")


def test_games_howell_against_scipy_statsmodels_pingouin(study, clean, samples):
    gh = games_howell(study, "brisque", "group")
    assert (gh.p_adj > 1e-6).any()
    _check_against_scipy(gh, samples, equal_var=False)
    sm = _statsmodels(clean, "unequal")
    _check_against_statsmodels(gh, sm)
    np.testing.assert_allclose(gh.df, sm.df_total, rtol=REL)
    ref = pg.pairwise_gameshowell(data=clean, dv="brisque", between="group")
    _check_against_pingouin(gh, ref, "pval")
    np.testing.assert_allclose(gh.df, ref.df, rtol=REL)


def test_other_confidence_level(samples):
    t = tukey_hsd(samples, confidence=0.9)
    ci = stats.tukey_hsd(*samples.values()).confidence_interval(0.9)
    np.testing.assert_allclose(t.ci_high, -ci.low[np.triu_indices(5, 1)], rtol=REL)


def test_games_howell_formula_by_hand():
    """Two groups: Games-Howell is Welch's t test with p from the studentized range with k = 2, which equals
    the two-sided Welch t test p (q = sqrt(2) |t| for two means)."""
    a, b = np.array([1.0, 2.0, 4.0, 7.0]), np.array([3.0, 8.0, 9.0, 12.0, 15.0])
    row = games_howell({"a": a, "b": b}).iloc[0]
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert (row.t, row.p_adj) == pytest.approx((welch.statistic, welch.pvalue), rel=1e-7)
    assert row.df == pytest.approx(welch.df, rel=REL)
    lo, hi = welch.confidence_interval(0.95)
    assert (row.ci_low, row.ci_high) == pytest.approx((lo, hi), rel=1e-7)


@pytest.mark.filterwarnings("error")
def test_small_and_constant_groups(samples):
    data = {"a": [1.0, 2.0, 4.0, 3.5], "b": [3.0, 5.0, 6.5], "c": [9.0]}
    t = tukey_hsd(data)  # the single value is compared through the pooled MSE, and flagged
    assert t.small_group.tolist() == [False, True, True] and t.p_adj.notna().all()
    sm = MultiComparison(np.concatenate(list(data.values())), np.repeat(list(data), [4, 3, 1])).tukeyhsd()
    _check_against_statsmodels(t, sm)
    gh = games_howell(data)  # no SD for the single value: its pairs are NaN, and flagged
    assert gh.small_group.tolist() == [False, True, True]
    assert gh.p_adj.isna().tolist() == [False, True, True] and gh.ci_low.isna().tolist() == [False, True, True]
    steps = tukey_hsd({"a": [2.0] * 3, "b": [5.0] * 3})  # no within-group variance: diff is certain
    assert steps.p_adj.iloc[0] == 0 and steps.ci_low.iloc[0] == steps.ci_high.iloc[0] == 3
    flat = games_howell({"a": [2.0] * 3, "b": [2.0] * 3})
    assert flat["diff"].iloc[0] == 0 and np.isnan(flat.p_adj.iloc[0])
