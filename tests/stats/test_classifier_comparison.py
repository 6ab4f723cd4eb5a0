"""McNemar against statsmodels, model-vs-reader against SciPy's chi-square and Fisher tests, and the fast
DeLong against DeLong's O(m n) definition written out in this file."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar

from medgap.stats import accuracy_vs_reader_test, delong_covariance, delong_test, mcnemar_test


def _paired(only_a: int, only_b: int, both: int = 30, neither: int = 10):
    a = np.r_[np.ones(both + only_a), np.zeros(only_b + neither)].astype(bool)
    b = np.r_[np.ones(both), np.zeros(only_a), np.ones(only_b), np.zeros(neither)].astype(bool)
    return a, b


@pytest.mark.parametrize("only_a, only_b", [(0, 0), (3, 9), (1, 0), (12, 12), (10, 14), (15, 10), (40, 22)])
def test_mcnemar_matches_statsmodels(only_a, only_b):
    a, b = _paired(only_a, only_b)
    r = mcnemar_test(a, b)
    exact = only_a + only_b < 25  # the stated rule; (12, 12) and (10, 14) are exact, (15, 10) is not
    ref = mcnemar([[30, only_a], [only_b, 10]], exact=exact, correction=True)
    assert r.test.startswith("McNemar (exact" if exact else "McNemar (chi-square")
    assert r.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert (r.detail["only_a_correct"], r.detail["only_b_correct"]) == (only_a, only_b)


def test_model_vs_reader_chi_square_matches_scipy():
    r = accuracy_vs_reader_test(85, 100, 70, 100)
    chi2, p, dof, _ = stats.chi2_contingency([[85, 15], [70, 30]], correction=True)
    assert r.test.startswith("chi-square (Yates") and r.detail["dof"] == dof == 1
    assert (r.statistic, r.p) == pytest.approx((chi2, p), rel=1e-12)
    plain = accuracy_vs_reader_test(85, 100, 70, 120, correction=False)
    chi2, p, _, _ = stats.chi2_contingency([[85, 15], [70, 50]], correction=False)
    assert (plain.statistic, plain.p) == pytest.approx((chi2, p), rel=1e-12)


def test_model_vs_reader_uses_fisher_for_small_expected_counts():
    r = accuracy_vs_reader_test(9, 10, 5, 10)  # expected wrong reads 3 < 5
    odds, p = stats.fisher_exact([[9, 1], [5, 5]])
    assert r.test.startswith("Fisher")
    assert (r.statistic, r.p) == pytest.approx((odds, p), rel=1e-12)
    perfect = accuracy_vs_reader_test(40, 40, 30, 30)  # a zero margin: chi-square undefined, Fisher P = 1
    assert perfect.test.startswith("Fisher") and perfect.p == 1.0
    with pytest.raises(ValueError, match="reader"):
        accuracy_vs_reader_test(5, 10, 11, 10)


def _delong_plain(pos: np.ndarray, scores: list[np.ndarray]):
    """DeLong, DeLong & Clarke-Pearson (1988), eqs. for V10, V01, S10, S01, with explicit loops over all
    positive-negative pairs: psi(x, y) = 1 if x > y, 1/2 if equal, 0 otherwise."""
    def psi(x, y):
        return 1.0 if x > y else 0.5 if x == y else 0.0

    m, n = int(pos.sum()), int((~pos).sum())
    v10, v01, auc = [], [], []
    for s in scores:
        x, y = s[pos], s[~pos]
        v10.append([sum(psi(xi, yj) for yj in y) / n for xi in x])
        v01.append([sum(psi(xi, yj) for xi in x) / m for yj in y])
        auc.append(sum(v10[-1]) / m)
    k = len(scores)
    s10 = [[sum((v10[r][i] - auc[r]) * (v10[t][i] - auc[t]) for i in range(m)) / (m - 1) for t in range(k)]
           for r in range(k)]
    s01 = [[sum((v01[r][j] - auc[r]) * (v01[t][j] - auc[t]) for j in range(n)) / (n - 1) for t in range(k)]
           for r in range(k)]
    cov = np.array(s10) / m + np.array(s01) / n
    return np.array(auc), cov


def _scores(seed: int, n: int = 90):
    rng = np.random.default_rng(seed)
    pos = rng.random(n) < 0.4
    a = pos * 1.2 + rng.normal(size=n)
    b = np.round(pos * 0.6 + rng.normal(size=n), 1)  # ties within b
    c = np.round(0.5 * a + 0.5 * rng.normal(size=n), 0)  # many ties, correlated with a
    return pos, a, b, c


def test_fast_delong_matches_the_pairwise_definition():
    pos, a, b, c = _scores(0)
    aucs, cov = delong_covariance(pos, np.vstack([a, b, c]))
    ref_auc, ref_cov = _delong_plain(pos, [a, b, c])
    np.testing.assert_allclose(aucs, ref_auc, rtol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10)
    for s, auc in zip((a, b, c), aucs):
        assert auc == pytest.approx(roc_auc_score(pos, s), rel=1e-12)

    r = delong_test(pos, a, c)
    var = ref_cov[0, 0] + ref_cov[2, 2] - 2 * ref_cov[0, 2]
    z = (ref_auc[0] - ref_auc[2]) / np.sqrt(var)
    assert r.statistic == pytest.approx(z, rel=1e-10)
    assert r.p == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    half = stats.norm.ppf(0.975) * np.sqrt(var)
    assert (r.detail["ci_low"], r.detail["ci_high"]) == pytest.approx((z * np.sqrt(var) - half,
                                                                        z * np.sqrt(var) + half), rel=1e-10)


def test_delong_auc_matches_torchmetrics():
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.classification")
    pos, a, b, _ = _scores(1)
    r = delong_test(pos, a, b)
    target = torch.from_numpy(pos.astype(np.int64))
    for key, s in (("auc_a", a), ("auc_b", b)):  # torchmetrics returns float32: agreement to ~1e-7
        assert r.detail[key] == pytest.approx(float(tm.BinaryAUROC(thresholds=None)(torch.from_numpy(s), target)),
                                              rel=1e-6)


def test_delong_degenerate_cases():
    pos, a, _, _ = _scores(2)
    same = delong_test(pos, a, a)
    assert same.statistic == 0 and same.p == 1.0 and same.detail["se"] == 0
    with pytest.raises(ValueError, match="2 positive and 2 negative"):
        delong_test(np.array([1, 0, 0, 0], bool), np.arange(4.0), np.arange(4.0))
