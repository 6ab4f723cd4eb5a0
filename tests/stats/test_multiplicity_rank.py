"""Holm families, Dunn's test, Cliff's delta and the assumption checks (issue 10, item 2), each against an
independent implementation: a plain Holm restatement, scikit-posthocs, an O(n m) loop, SciPy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy import stats
from statsmodels.stats.multitest import multipletests

from medgap.stats import ComparisonError, assumption_checks, cliffs_delta, compare_metrics, dunn_test, holm


def _plain_holm(p: list[float]) -> list[float]:
    """Holm (1979) step by step: the i-th smallest of m P values times (m - i), made monotone, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def test_holm_matches_statsmodels_and_a_plain_restatement_and_skips_nan():
    p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04]
    assert holm(p).tolist() == pytest.approx(_plain_holm(p), rel=1e-12)
    big = np.random.default_rng(0).uniform(0, 0.2, 40) ** 2
    assert holm(big).tolist() == pytest.approx(multipletests(big, method="holm")[1].tolist(), rel=1e-12)
    with_nan = holm([0.01, np.nan, 0.02])
    assert np.isnan(with_nan[1]) and with_nan[[0, 2]].tolist() == pytest.approx(_plain_holm([0.01, 0.02]))


@pytest.fixture(scope="module")
def three_metrics() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    n = 15
    groups = np.repeat(["natural", "ct", "mr", "pocus"], n)
    shift = pd.Series(groups).map({"natural": 0.0, "ct": 0.4, "mr": 0.9, "pocus": 0.1}).to_numpy()
    return pd.DataFrame({"group": groups, "path": [f"{i}.png" for i in range(4 * n)],
                         "brisque": rng.normal(30 + 6 * shift, 6), "niqe": rng.normal(5 + shift, 1),
                         "piqe": rng.normal(40 + 5 * shift, 5)})


def test_primary_and_secondary_families(three_metrics):
    result = compare_metrics(three_metrics, ["brisque", "niqe", "piqe"], n_boot=100)
    assert result.primary == "brisque" and result.test == "welch"
    primary = result["brisque"].vs_reference
    assert primary.p_holm.tolist() == pytest.approx(_plain_holm(primary.p.tolist()), rel=1e-12)
    assert (primary.holm_size == 3).all() and primary.holm_family.iloc[0] == "primary: brisque, welch vs natural"
    secondary = pd.concat([result["niqe"].vs_reference, result["piqe"].vs_reference])
    assert secondary.p_holm.tolist() == pytest.approx(_plain_holm(secondary.p.tolist()), rel=1e-12)
    assert (secondary.holm_size == 6).all()
    assert result.families["secondary"] == {"metrics": ["niqe", "piqe"], "size": 6, "method": "holm",
                                            "test": "welch", "reference": "natural"}
    welch = stats.ttest_ind(three_metrics.niqe[three_metrics.group == "mr"],
                            three_metrics.niqe[three_metrics.group == "natural"], equal_var=False).pvalue
    assert result["niqe"].vs_reference.set_index("group_b").loc["mr", "p"] == pytest.approx(welch, rel=1e-10)
    other = compare_metrics(three_metrics, ["brisque", "niqe", "piqe"], primary="niqe", test="mann-whitney",
                            n_boot=100)
    assert other.primary == "niqe" and (other["niqe"].vs_reference.holm_size == 3).all()
    mw = stats.mannwhitneyu(three_metrics.piqe[three_metrics.group == "ct"],
                            three_metrics.piqe[three_metrics.group == "natural"]).pvalue
    assert other["piqe"].vs_reference.set_index("group_b").loc["ct", "p"] == pytest.approx(mw, rel=1e-10)
    with pytest.raises(ComparisonError, match="primary metric 'piqe' is not among the compared columns"):
        compare_metrics(three_metrics, ["brisque", "niqe"], primary="piqe")


def test_dunn_matches_scikit_posthocs(three_metrics):
    df = three_metrics.assign(brisque=three_metrics.brisque.round(0))  # ties
    ours = dunn_test(df, "brisque", "group")
    raw = sp.posthoc_dunn(df, val_col="brisque", group_col="group", p_adjust=None)
    adjusted = sp.posthoc_dunn(df, val_col="brisque", group_col="group", p_adjust="holm")
    for r in ours.itertuples():
        assert r.p == pytest.approx(raw.loc[r.group_a, r.group_b], rel=1e-10)
        assert r.p_holm == pytest.approx(adjusted.loc[r.group_a, r.group_b], rel=1e-10)
    assert len(ours) == 6 and ours[["group_a", "group_b"]].iloc[0].tolist() == ["ct", "mr"]


def _plain_cliff(a, b) -> float:
    """Every pair: +1 where b > a, -1 where b < a, 0 for ties; mean over n_a n_b pairs."""
    return sum(int(y > x) - int(y < x) for x in a for y in b) / (len(a) * len(b))


def test_cliffs_delta_matches_the_pairwise_count():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 6, 23).astype(float), rng.integers(1, 8, 17).astype(float)  # many ties
    assert cliffs_delta(a, b) == pytest.approx(_plain_cliff(a, b), abs=1e-12)
    assert cliffs_delta([1.0, 2.0], [3.0, 4.0]) == 1.0 and cliffs_delta([3.0, 4.0], [1.0, np.nan]) == -1.0


def test_assumption_checks_against_scipy_and_a_brown_forsythe_restatement():
    rng = np.random.default_rng(3)
    data = {"a": rng.normal(0, 1, 30), "b": rng.normal(0, 3, 25), "c": rng.exponential(1, 20), "d": [1.0, 2.0]}
    checks = assumption_checks(data)
    bf = checks.iloc[0]
    usable = [np.asarray(v) for v in data.values()]
    # Brown-Forsythe = one-way ANOVA of |x - median of its group|
    expected = stats.f_oneway(*[np.abs(v - np.median(v)) for v in usable])
    assert (bf.statistic, bf.p) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-10)
    sw = checks[checks.test == "Shapiro-Wilk"].set_index("group")
    assert sw.loc["c", "statistic"] == pytest.approx(stats.shapiro(data["c"]).statistic, rel=1e-12)
    assert np.isnan(sw.loc["d", "p"]) and sw.loc["d", "note"] == "skipped: fewer than 3 values"
