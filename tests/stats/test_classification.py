"""Clinical evaluation statistics against scikit-learn, statsmodels, SciPy and a plain O(n^2) DeLong."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar

from medgap.stats import accuracy_vs_reader, bootstrap_ci, classification_metrics, delong_test, mcnemar_test

RNG = np.random.default_rng(3)
CLASSES = ["covid", "pneumonia", "regular"]


def _predictions(n=300, skill=1.5):
    y = RNG.integers(0, 3, n)
    logits = RNG.normal(size=(n, 3))
    logits[np.arange(n), y] += skill
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, prob


def test_metrics_against_sklearn():
    y, prob = _predictions()
    m = classification_metrics(y, prob, CLASSES)
    pred = prob.argmax(1)
    assert m["accuracy"] == pytest.approx((pred == y).mean())
    rec = recall_score(y, pred, average=None)
    prec = precision_score(y, pred, average=None)
    f1 = f1_score(y, pred, average=None)
    cm = confusion_matrix(y, pred)
    for c, name in enumerate(CLASSES):
        tn = cm.sum() - cm[c].sum() - cm[:, c].sum() + cm[c, c]
        spec = tn / (cm.sum() - cm[c].sum())
        assert m[f"{name}/sensitivity"] == pytest.approx(rec[c], rel=1e-12)
        assert m[f"{name}/specificity"] == pytest.approx(spec, rel=1e-12)
        assert m[f"{name}/ppv"] == pytest.approx(prec[c], rel=1e-12)
        assert m[f"{name}/f1"] == pytest.approx(f1[c], rel=1e-12)
        assert m[f"{name}/youden"] == pytest.approx(rec[c] + spec - 1, rel=1e-12)
        assert m[f"{name}/auc"] == pytest.approx(roc_auc_score(y == c, prob[:, c]), rel=1e-12)
    assert m["macro_auc"] == pytest.approx(roc_auc_score(y, prob, multi_class="ovr", average="macro"), rel=1e-12)


def test_bootstrap_resamples_patients():
    y, prob = _predictions(200)
    # one "patient" holds 100 items that are all classified correctly
    groups = np.array([f"p{i}" for i in range(200)])
    groups[:100] = "big"
    prob[:100] = np.eye(3)[y[:100]] * 0.9 + 0.05
    by_patient = bootstrap_ci(y, prob, CLASSES, groups, n_boot=400, seed=1).set_index(["class", "metric"])
    by_item = bootstrap_ci(y, prob, CLASSES, np.arange(200).astype(str), n_boot=400, seed=1).set_index(["class", "metric"])
    acc_p, acc_i = by_patient.loc[("overall", "accuracy")], by_item.loc[("overall", "accuracy")]
    assert acc_p.value == acc_i.value
    assert (acc_p.ci_high - acc_p.ci_low) > 2 * (acc_i.ci_high - acc_i.ci_low)  # the cluster widens the CI
    again = bootstrap_ci(y, prob, CLASSES, groups, n_boot=400, seed=1).set_index(["class", "metric"])
    assert again.loc[("overall", "accuracy")].ci_low == acc_p.ci_low  # seeded


def test_mcnemar_against_statsmodels():
    a = RNG.random(120) < 0.8
    b = RNG.random(120) < 0.65
    r = mcnemar_test(a, b)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    exact = table[0][1] + table[1][0] < 25
    ref = mcnemar(table, exact=exact, correction=True)
    assert r.p == pytest.approx(ref.pvalue, rel=1e-12) and r.statistic == pytest.approx(ref.statistic)


def test_accuracy_vs_reader_chi_square_and_fisher():
    r = accuracy_vs_reader(85, 100, 70, 100)
    chi2, p, _, _ = stats.chi2_contingency([[85, 15], [70, 30]], correction=True)
    assert r.name.startswith("chi-square") and r.p == pytest.approx(p, rel=1e-12) and r.statistic == pytest.approx(chi2)
    small = accuracy_vs_reader(9, 10, 5, 10)
    assert small.name == "Fisher's exact"
    assert small.p == pytest.approx(stats.fisher_exact([[9, 1], [5, 5]])[1], rel=1e-12)


def _delong_slow(pos, a, b):
    """DeLong, DeLong & Clarke-Pearson (1988) written plainly: structural components by O(n^2) comparison."""
    def psi(x, y):
        return (x > y) + 0.5 * (x == y)

    X = [np.array([s[pos], s[~pos]], dtype=object) for s in (a, b)]
    m, n = pos.sum(), (~pos).sum()
    v10 = np.array([[np.mean([psi(xi, yj) for yj in s[~pos]]) for xi in s[pos]] for s in (a, b)])
    v01 = np.array([[np.mean([psi(xi, yj) for xi in s[pos]]) for yj in s[~pos]] for s in (a, b)])
    auc = v10.mean(axis=1)
    s10, s01 = np.cov(v10), np.cov(v01)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    z = (auc[0] - auc[1]) / np.sqrt(var)
    return auc, z, 2 * stats.norm.sf(abs(z))


def test_delong_against_plain_implementation():
    n = 80
    pos = RNG.random(n) < 0.4
    a = pos * 1.2 + RNG.normal(size=n)
    b = np.round(pos * 0.6 + RNG.normal(size=n), 1)  # ties too
    r = delong_test(pos, a, b)
    auc, z, p = _delong_slow(pos, a, b)
    assert r.detail["auc_a"] == pytest.approx(roc_auc_score(pos, a), rel=1e-12)
    assert r.detail["auc_b"] == pytest.approx(auc[1], rel=1e-12)
    assert r.statistic == pytest.approx(z, rel=1e-9) and r.p == pytest.approx(p, rel=1e-9)
