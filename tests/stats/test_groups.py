"""Group statistics against SciPy, statsmodels and pingouin (to 1e-8 relative)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multicomp import pairwise_tukeyhsd

from medgap.stats import (
    compare_groups,
    describe_groups,
    effect_sizes,
    format_ci,
    format_p,
    games_howell,
    kruskal,
    one_way_anova,
    paper_table,
    tukey_hsd,
    welch_anova,
)

REL = 1e-8


@pytest.fixture(scope="module")
def study() -> pd.DataFrame:
    """Groups drawn with the published study's means (ImageNet 21.7, CXR 13.2, CT 35.1, MR 31.6, POCUS 56.6)."""
    rng = np.random.default_rng(42)
    spec = {"natural": (21.7, 12, 150), "cxr": (13.2, 10, 80), "ct": (35.1, 15, 60), "mr": (31.6, 11, 70),
            "pocus": (56.6, 14, 200)}
    frames = [pd.DataFrame({"group": g, "brisque": rng.normal(m, s, n)}) for g, (m, s, n) in spec.items()]
    df = pd.concat(frames, ignore_index=True)
    df.loc[[3, 170], "brisque"] = np.nan  # a failed image in two groups
    return df


def _clean(df):
    return df.dropna(subset=["brisque"])


def test_describe(study):
    d = describe_groups(study, "brisque", "group").set_index("group")
    for g, v in _clean(study).groupby("group").brisque:
        row = d.loc[g]
        assert row.n == len(v)
        assert row["mean"] == pytest.approx(v.mean(), rel=REL) and row.sd == pytest.approx(v.std(ddof=1), rel=REL)
        lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        assert (row.ci_low, row.ci_high) == pytest.approx((lo, hi), rel=REL)
        assert row["median"] == pytest.approx(v.median(), rel=REL)
    assert d.loc["natural", "n_missing"] == 1 and d.loc["cxr", "n_missing"] == 1


def test_anova_against_scipy_statsmodels_pingouin(study):
    a = one_way_anova(study, "brisque", "group")
    clean = _clean(study)
    F, p = stats.f_oneway(*[v.to_numpy() for _, v in clean.groupby("group").brisque])
    assert a.F == pytest.approx(F, rel=REL) and a.p == pytest.approx(p, rel=1e-6, abs=1e-300)
    table = anova_lm(ols("brisque ~ C(group)", data=clean).fit())
    assert a.df_between == table.df.iloc[0] and a.df_within == table.df.iloc[1]
    aov = pg.anova(data=clean, dv="brisque", between="group", detailed=True)
    assert a.eta_squared == pytest.approx(aov.np2.iloc[0], rel=REL)


def test_welch_and_kruskal(study):
    clean = _clean(study)
    w = welch_anova(study, "brisque", "group")
    ref = pg.welch_anova(data=clean, dv="brisque", between="group")
    assert w.F == pytest.approx(ref.F.iloc[0], rel=REL) and w.df2 == pytest.approx(ref.ddof2.iloc[0], rel=REL)
    k = kruskal(study, "brisque", "group")
    H, p = stats.kruskal(*[v.to_numpy() for _, v in clean.groupby("group").brisque])
    assert k.H == pytest.approx(H, rel=REL) and k.p == pytest.approx(p, rel=1e-6, abs=1e-300)


def test_tukey_against_statsmodels(study):
    clean = _clean(study)
    t = tukey_hsd(study, "brisque", "group")
    sm = pairwise_tukeyhsd(clean.brisque, clean.group)
    ref = pd.DataFrame(sm._results_table.data[1:], columns=sm._results_table.data[0])
    for r in t.itertuples():
        s = ref[(ref.group1 == r.group_a) & (ref.group2 == r.group_b)].iloc[0]
        assert r.diff == pytest.approx(s.meandiff, abs=1e-3)  # statsmodels rounds its table to 4 decimals
        assert r.ci_low == pytest.approx(s.lower, abs=1e-3)
    assert t.p_adj.max() <= 1
    np.testing.assert_allclose(np.sort(t["diff"].abs()), np.sort(np.abs(sm.meandiffs)), rtol=REL)


def test_games_howell_against_pingouin(study):
    clean = _clean(study)
    gh = games_howell(study, "brisque", "group")
    ref = pg.pairwise_gameshowell(data=clean, dv="brisque", between="group")
    for r in gh.itertuples():
        s = ref[(ref.A == r.group_a) & (ref.B == r.group_b)].iloc[0]
        assert -r.diff == pytest.approx(s["diff"], rel=REL)  # pingouin: mean(A) - mean(B)
        assert r.df == pytest.approx(s["df"], rel=REL)
        assert r.p_adj == pytest.approx(s.pval, rel=1e-6, abs=1e-12)


def test_effect_sizes_against_pingouin(study):
    clean = _clean(study)
    eff = effect_sizes(study, "brisque", "group", reference="natural").set_index("group_b")
    nat = clean[clean.group == "natural"].brisque.to_numpy()
    for g in ("cxr", "ct", "mr", "pocus"):
        x = clean[clean.group == g].brisque.to_numpy()
        d = pg.compute_effsize(x, nat, eftype="cohen")
        g_ = pg.compute_effsize(x, nat, eftype="hedges")
        ci = pg.compute_esci(stat=d, nx=len(x), ny=len(nat), eftype="cohen", decimals=12)
        assert eff.loc[g, "cohen_d"] == pytest.approx(d, rel=REL)
        assert eff.loc[g, "hedges_g"] == pytest.approx(g_, rel=REL)
        assert (eff.loc[g, "d_ci_low"], eff.loc[g, "d_ci_high"]) == pytest.approx(tuple(ci), rel=1e-8)
    assert eff.loc["pocus", "cohen_d"] > 2  # POCUS is far from ImageNet, as published (d = 2.38)


def test_compare_groups_and_paper_table(study):
    c = compare_groups(study, "brisque", "group", reference="natural")
    table = paper_table(c)
    row = table.set_index("group").loc["pocus"]
    m = c.describe.set_index("group").loc["pocus"]
    assert row["mean (95% CI)"] == f"{m['mean']:.1f} ({m.ci_low:.1f} to {m.ci_high:.1f})"
    assert table.set_index("group").loc["natural"].iloc[-1] == "reference"
    assert set(c.to_dict()) >= {"anova", "welch", "kruskal", "tukey", "games_howell", "effects"}


@pytest.mark.parametrize(
    "p, text",
    [(0.5, "P = .50"), (0.03, "P = .03"), (0.0123, "P = .01"), (0.002, "P = .002"), (0.0004, "P = .0004"),
     (2e-7, "P < .000001"), (0.999, "P > .99"), (float("nan"), "P = n/a")],
)
def test_format_p(p, text):
    assert format_p(p) == text


def test_edge_cases():
    with pytest.raises(ValueError, match="at least 2 groups"):
        one_way_anova(pd.DataFrame({"g": ["a", "a"], "v": [1.0, 2.0]}), "v", "g")
    eff = effect_sizes(pd.DataFrame({"g": ["a", "a", "b"], "v": [1.0, 2.0, 3.0]}), "v", "g")
    assert eff.small_group.iloc[0] and np.isnan(eff.cohen_d.iloc[0])
    assert format_ci(1.0, float("nan"), float("nan")) == "1.0"


def test_welch_is_undefined_with_a_zero_variance_group():
    df = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 3, "v": [0.0, 0.0, 0.0, 1.0, 2.0, 4.0]})
    w = welch_anova(df, "v", "g")
    assert np.isnan(w.F) and np.isnan(w.p)
    assert format_p(w.p) == "P = n/a"
