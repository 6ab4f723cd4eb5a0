"""Classification metrics against scikit-learn, statsmodels and torchmetrics; the patient bootstrap against a
plain loop over explicitly resampled patients."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint

from medgap.stats import (
    classification_metrics,
    classification_metrics_ci,
    confusion_matrix,
    grouped_bootstrap,
    paired_metric_differences,
    roc_auc,
    roc_curve,
    wilson_interval,
)

CLASSES = ["covid", "pneumonia", "regular"]


def clustered_predictions(seed: int, n_patients: int = 40, k: int = 3, skill: float = 1.2):
    """Patients with 1-11 items each (video frames), one label per patient and a per-patient shift of the
    logits (items of a patient are correlated, as frames are); probabilities rounded to 2 decimals so scores
    tie. The prediction is the argmax with 10% replaced at random, so it is not a function of ``prob``."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, n_patients)
    label = rng.integers(0, k, n_patients)
    shift = rng.normal(0, 1.0, (n_patients, k))
    groups = np.repeat([f"p{i:03d}" for i in range(n_patients)], sizes)
    y = np.repeat(label, sizes)
    logits = rng.normal(size=(y.size, k)) + np.repeat(shift, sizes, axis=0)
    logits[np.arange(y.size), y] += skill
    prob = np.round(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 2)
    pred = prob.argmax(1)
    flip = rng.random(y.size) < 0.1
    pred[flip] = rng.integers(0, k, int(flip.sum()))
    return y, pred, prob, groups


def _by_key(table):
    return table.set_index(["class", "metric"])


def test_metrics_match_scikit_learn():
    y, pred, prob, _ = clustered_predictions(1)
    m = _by_key(classification_metrics(y, pred, CLASSES, prob)).value
    cm = skm.confusion_matrix(y, pred)
    np.testing.assert_array_equal(confusion_matrix(y, pred, 3), cm)
    assert m["overall", "accuracy"] == pytest.approx(skm.accuracy_score(y, pred), rel=1e-12)
    assert m["overall", "balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), rel=1e-12)
    assert m["overall", "macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), rel=1e-12)
    # one-vs-rest macro AUC; the indicator form because rounded probabilities do not sum to 1 exactly
    macro = skm.roc_auc_score(np.eye(3)[y], prob, average="macro")
    assert m["overall", "macro_auc"] == pytest.approx(macro, rel=1e-12)
    for c, name in enumerate(CLASSES):
        t, p = y == c, pred == c
        sens, spec = skm.recall_score(t, p), skm.recall_score(t, p, pos_label=False)
        assert m[name, "sensitivity"] == pytest.approx(sens, rel=1e-12)
        assert m[name, "specificity"] == pytest.approx(spec, rel=1e-12)
        assert m[name, "ppv"] == pytest.approx(skm.precision_score(t, p), rel=1e-12)
        assert m[name, "npv"] == pytest.approx(skm.precision_score(t, p, pos_label=False), rel=1e-12)
        assert m[name, "f1"] == pytest.approx(skm.f1_score(t, p), rel=1e-12)
        assert m[name, "youden"] == pytest.approx(sens + spec - 1, rel=1e-12)
        assert m[name, "auc"] == pytest.approx(skm.roc_auc_score(t, prob[:, c]), rel=1e-12)
        assert roc_auc(t, prob[:, c]) == pytest.approx(skm.roc_auc_score(t, prob[:, c]), rel=1e-12)


def test_metrics_match_torchmetrics():
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.classification")
    y, pred, prob, _ = clustered_predictions(2)
    m = _by_key(classification_metrics(y, pred, CLASSES, prob)).value
    yt, pt, st = torch.from_numpy(y), torch.from_numpy(pred), torch.from_numpy(prob)
    per_class = {
        "sensitivity": tm.MulticlassRecall(3, average=None)(pt, yt),
        "specificity": tm.MulticlassSpecificity(3, average=None)(pt, yt),
        "ppv": tm.MulticlassPrecision(3, average=None)(pt, yt),
        "f1": tm.MulticlassF1Score(3, average=None)(pt, yt),
        "auc": tm.MulticlassAUROC(3, average=None, thresholds=None)(st, yt),
    }
    for metric, values in per_class.items():  # torchmetrics returns float32: agreement to ~1e-7
        np.testing.assert_allclose([m[c, metric] for c in CLASSES], values.double().numpy(), rtol=1e-6)
    assert m["overall", "accuracy"] == pytest.approx(float(tm.MulticlassAccuracy(3, average="micro")(pt, yt)),
                                                     rel=1e-6)
    assert m["overall", "macro_auc"] == pytest.approx(float(tm.MulticlassAUROC(3, average="macro")(st, yt)),
                                                      rel=1e-6)


def test_undefined_metrics_are_nan_not_zero():
    y = np.array([0, 0, 1, 1, 1, 0])
    pred = np.array([0, 0, 0, 0, 0, 0])  # class 1 never predicted, class 2 never present
    m = _by_key(classification_metrics(y, pred, ["a", "b", "c"], np.eye(3)[pred])).value
    assert np.isnan(m["b", "ppv"])  # scikit-learn: 0 with a warning
    assert m["b", "sensitivity"] == 0
    assert np.isnan(m["c", "sensitivity"]) and np.isnan(m["c", "auc"])
    assert np.isnan(m["overall", "macro_auc"]) and np.isnan(m["overall", "balanced_accuracy"])
    assert m["overall", "accuracy"] == pytest.approx(0.5)


def test_wilson_matches_statsmodels():
    k = np.array([0, 1, 7, 50, 99, 100, 3])
    n = np.array([10, 10, 20, 100, 100, 100, 3])
    for conf in (0.95, 0.9):
        low, high = wilson_interval(k, n, conf)
        ref_low, ref_high = proportion_confint(k, n, alpha=1 - conf, method="wilson")
        np.testing.assert_allclose(low, ref_low, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(high, ref_high, rtol=1e-12, atol=1e-15)
    assert np.isnan(wilson_interval(0, 0)[0])
    y, pred, prob, _ = clustered_predictions(3)
    row = _by_key(classification_metrics(y, pred, CLASSES, prob)).loc[("covid", "sensitivity")]
    tp, pos = np.sum((y == 0) & (pred == 0)), np.sum(y == 0)
    assert (row.successes, row.total) == (tp, pos)
    assert (row.wilson_low, row.wilson_high) == pytest.approx(proportion_confint(tp, pos, method="wilson"), rel=1e-12)


def test_roc_curve_matches_scikit_learn():
    y, _, prob, _ = clustered_predictions(4)
    for c in range(3):
        fpr, tpr, thr = roc_curve(y == c, prob[:, c])
        ref = skm.roc_curve(y == c, prob[:, c], drop_intermediate=False)
        for ours, theirs in zip((fpr, tpr, thr), ref):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12)
        assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(y == c, prob[:, c]), rel=1e-12)


def test_bootstrap_matches_a_loop_over_resampled_patients():
    """Plain restatement: draw patients with replacement, concatenate all their items, score with
    scikit-learn, take np.percentile. The draws are the ones classification_metrics_ci makes (same seed), read
    back as item weights; they are first checked to be whole patients."""
    y, pred, prob, groups = clustered_predictions(5, n_patients=25)
    n_boot, seed = 200, 7
    weights = grouped_bootstrap(lambda w: w, groups, n_boot, seed)
    labels, first = np.unique(groups, return_index=True)
    for g in labels:  # every item of a patient carries the patient's count
        assert (weights[:, groups == g] == weights[:, [np.flatnonzero(groups == g)[0]]]).all()
    np.testing.assert_array_equal(weights[:, first].sum(axis=1), len(labels))  # as many patients as the data

    acc, sens, auc = [], [], []
    for w in weights:
        idx = np.concatenate([np.flatnonzero(groups == g) for g, c in zip(labels, w[first]) for _ in range(int(c))])
        yt, pt = y[idx], pred[idx]
        acc.append(skm.accuracy_score(yt, pt))
        sens.append(skm.recall_score(yt == 1, pt == 1) if (yt == 1).any() else np.nan)
        auc.append(skm.roc_auc_score(yt == 2, prob[idx, 2]) if 0 < (yt == 2).sum() < yt.size else np.nan)

    table = _by_key(classification_metrics_ci(y, pred, CLASSES, groups, prob, n_boot=n_boot, seed=seed))
    for key, draws in {("overall", "accuracy"): acc, ("pneumonia", "sensitivity"): sens,
                       ("regular", "auc"): auc}.items():
        d = np.asarray(draws)
        d = d[np.isfinite(d)]
        row = table.loc[key]
        assert row.boot_valid == d.size
        assert (row.ci_low, row.ci_high) == pytest.approx(tuple(np.percentile(d, [2.5, 97.5])), rel=1e-12)


def test_bootstrap_resamples_patients_not_items():
    """One patient holds 120 of 200 items, all right: resampling patients puts the 120 in or out together,
    so the accuracy CI is far wider than the item bootstrap's (which treats them as 120 patients)."""
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.6, y, (y + 1) % 3)
    pred[:120] = y[:120]
    groups = np.array(["big"] * 120 + [f"p{i}" for i in range(80)])
    by_patient = _by_key(classification_metrics_ci(y, pred, CLASSES, groups, n_boot=500, seed=1))
    by_item = _by_key(classification_metrics_ci(y, pred, CLASSES, np.arange(200), n_boot=500, seed=1))
    p, i = by_patient.loc[("overall", "accuracy")], by_item.loc[("overall", "accuracy")]
    assert p.value == i.value and p.wilson_low == i.wilson_low  # same point estimate and Wilson interval
    assert p.ci_high - p.ci_low > 3 * (i.ci_high - i.ci_low)


def test_bootstrap_is_seeded():
    y, pred, prob, groups = clustered_predictions(8)
    a = classification_metrics_ci(y, pred, CLASSES, groups, prob, n_boot=200, seed=3)
    b = classification_metrics_ci(y, pred, CLASSES, groups, prob, n_boot=200, seed=3)
    c = classification_metrics_ci(y, pred, CLASSES, groups, prob, n_boot=200, seed=4)
    assert a.equals(b)
    assert not np.allclose(a.ci_low, c.ci_low, equal_nan=True)
    assert ((a.ci_low <= a.value) & (a.value <= a.ci_high)).all()


def test_paired_differences_keep_the_pairing():
    """Model B = model A: every resample's difference is exactly 0. Against another model, each difference
    column equals A's and B's points, and the CI is that of a loop with shared draws."""
    y, pred, prob, groups = clustered_predictions(9)
    same = paired_metric_differences(y, pred, pred, CLASSES, groups, prob, prob, n_boot=200, seed=0)
    assert (same.difference == 0).all() and (same.ci_low == 0).all() and (same.ci_high == 0).all()
    rng = np.random.default_rng(10)  # model B: A's scores with noise, its decisions partly re-drawn
    prob_b = np.round(prob + rng.normal(0, 0.15, prob.shape), 2)
    pred_b = np.where(rng.random(y.size) < 0.3, rng.integers(0, 3, y.size), pred)
    d = _by_key(paired_metric_differences(y, pred, pred_b, CLASSES, groups, prob, prob_b, n_boot=200, seed=2))
    a = _by_key(classification_metrics(y, pred, CLASSES, prob)).value
    b = _by_key(classification_metrics(y, pred_b, CLASSES, prob_b)).value
    np.testing.assert_allclose(d.difference, (a - b)[d.index], rtol=1e-12)
    weights = grouped_bootstrap(lambda w: w, groups, 200, 2)
    loop = []
    for w in weights:
        idx = np.repeat(np.arange(y.size), w.astype(int))  # same multiset as repeating the drawn patients
        loop.append(skm.accuracy_score(y[idx], pred[idx]) - skm.accuracy_score(y[idx], pred_b[idx]))
    row = d.loc[("overall", "accuracy")]
    assert (row.ci_low, row.ci_high) == pytest.approx(tuple(np.percentile(loop, [2.5, 97.5])), rel=1e-12)


def test_input_errors_say_what_to_fix():
    with pytest.raises(ValueError, match="class indices"):
        classification_metrics(np.array(["a", "b"]), np.array([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="outside 0..1"):
        classification_metrics([0, 2], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        classification_metrics([0, 1], [0, 1], ["a", "b"], prob=np.ones((2, 3)))
    with pytest.raises(ValueError, match="one patient id per item"):
        classification_metrics_ci([0, 1], [0, 1], ["a", "b"], groups=["p"])
