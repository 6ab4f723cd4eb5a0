"""One-way ANOVA, Welch's ANOVA and Kruskal-Wallis against SciPy, statsmodels and pingouin (1e-8 relative)."""

from __future__ import annotations

import numpy as np
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm

from medgap.stats import kruskal_wallis, one_way_anova, welch_anova

REL = 1e-8


@pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")  # inside pingouin.anova
def test_anova_against_scipy_statsmodels_pingouin(study, clean, samples):
    a = one_way_anova(study, "brisque", "group")
    F, p = stats.f_oneway(*samples.values())
    assert a.F == pytest.approx(F, rel=REL) and a.p == pytest.approx(p, rel=REL)
    table = anova_lm(ols("brisque ~ C(group)", data=clean).fit())
    assert (a.df_between, a.df_within) == (table.df.iloc[0], table.df.iloc[1])
    assert (a.ss_between, a.ss_within) == pytest.approx(tuple(table.sum_sq.iloc[:2]), rel=REL)
    assert a.F == pytest.approx(table.F.iloc[0], rel=REL) and a.p == pytest.approx(table["PR(>F)"].iloc[0], rel=REL)
    aov = pg.anova(data=clean, dv="brisque", between="group", detailed=True)
    assert a.eta_squared == pytest.approx(aov.np2.iloc[0], rel=REL)  # one-way: partial eta^2 = eta^2
    assert a.p < 1e-6  # as published (P <= .000001)


def test_welch_against_pingouin(study, clean):
    w = welch_anova(study, "brisque", "group")
    ref = pg.welch_anova(data=clean, dv="brisque", between="group").iloc[0]
    assert (w.F, w.df1, w.df2, w.p) == pytest.approx((ref.F, ref.ddof1, ref.ddof2, ref.p_unc), rel=REL)


def test_kruskal_against_scipy_and_pingouin(study, clean, samples):
    k = kruskal_wallis(study, "brisque", "group")
    H, p = stats.kruskal(*samples.values())
    assert k.H == pytest.approx(H, rel=REL) and k.p == pytest.approx(p, rel=REL) and k.df == 4
    ref = pg.kruskal(data=clean, dv="brisque", between="group").iloc[0]
    assert (k.H, k.p) == pytest.approx((ref.H, ref.p_unc), rel=REL)
    assert k.epsilon_squared == pytest.approx(H / (len(clean) - 1), rel=REL)


def test_kruskal_with_ties_against_scipy():
    rng = np.random.default_rng(7)
    groups = {g: rng.integers(0, 6, n).astype(float) for g, n in (("a", 12), ("b", 9), ("c", 15))}
    H, p = stats.kruskal(*groups.values())
    k = kruskal_wallis(groups)
    assert (k.H, k.p) == pytest.approx((H, p), rel=REL)


def test_hand_case():
    """[1, 2, 3] vs [4, 5, 6]: SS_between = 13.5, SS_within = 4, F = 13.5 on (1, 4); H = 27/7."""
    a = one_way_anova({"a": [1, 2, 3], "b": [4, 5, 6]})
    assert (a.F, a.df_between, a.df_within, a.eta_squared) == pytest.approx((13.5, 1, 4, 13.5 / 17.5), rel=1e-14)
    assert kruskal_wallis({"a": [1, 2, 3], "b": [4, 5, 6]}).H == pytest.approx(27 / 7, rel=1e-14)


@pytest.mark.filterwarnings("error")
def test_zero_variance_and_small_groups():
    flat = {"a": [0.1] * 3, "b": [0.1] * 4}  # the mean of 0.1s is not exactly 0.1; SS must still be exactly 0
    a = one_way_anova(flat)
    assert np.isnan(a.F) and np.isnan(a.p) and np.isnan(a.eta_squared) and a.ss_within == 0
    assert np.isnan(kruskal_wallis(flat).H) and np.isnan(welch_anova(flat).F)
    steps = {"a": [0.1] * 3, "b": [0.7] * 4}  # constant groups, different means: as scipy, F = inf and p = 0
    a = one_way_anova(steps)
    assert (a.F, a.p, a.eta_squared) == (np.inf, 0.0, 1.0)
    assert tuple(stats.f_oneway(*steps.values())) == (np.inf, 0.0)
    small = {"a": [1.0, 2.0, 4.0], "b": [3.0, 5.0], "c": [9.0]}  # a single value still enters the ANOVA
    a = one_way_anova(small)
    F, p = stats.f_oneway(*small.values())
    assert (a.F, a.p) == pytest.approx((F, p), rel=REL)
    w = welch_anova(small)  # its weight n / s^2 is undefined: NaN (pingouin raises)
    assert np.isnan(w.F) and np.isnan(w.p) and w.df1 == 2
    singles = one_way_anova({"a": [1.0], "b": [2.0]})  # no within-group df
    assert np.isnan(singles.F) and singles.df_within == 0


def test_to_dict():
    assert set(one_way_anova({"a": [1, 2, 3], "b": [4, 5, 7]}).to_dict()) == {
        "F", "df_between", "df_within", "p", "eta_squared", "ss_between", "ss_within"}


@pytest.mark.filterwarnings("error")
def test_welch_is_undefined_with_one_zero_variance_group():
    """A constant group (e.g. a background fraction of 0 on every image) has weight n / 0."""
    w = welch_anova({"a": [0.0, 0.0, 0.0], "b": [1.0, 2.0, 4.0], "c": [3.0, 3.5, 5.0]})
    assert np.isnan(w.F) and np.isnan(w.df2) and np.isnan(w.p)
