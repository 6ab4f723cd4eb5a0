"""Evaluating a classifier like a clinical paper: per-class sensitivity, specificity, PPV, NPV, F1, Youden's
index, ROC AUC (one-vs-rest, and macro), accuracy; bootstrap 95% CIs that resample patients, not images;
McNemar between two models on the same cases; chi-square (or Fisher) of a model's accuracy against a reader's;
DeLong's test for two correlated AUCs.

Pure functions of arrays; checked against scikit-learn, statsmodels and SciPy in tests/stats/.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney statistic (ties count one half); NaN without both classes."""
    n1 = int(positive.sum())
    n0 = positive.size - n1
    if n1 == 0 or n0 == 0:
        return np.nan
    ranks = stats.rankdata(score)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Flat dict: accuracy, macro_auc, and per class ``<class>/sensitivity`` etc. ``y_true`` holds class
    indices, ``prob`` (n, k) probabilities; the prediction is the argmax."""
    y_true = np.asarray(y_true)
    pred = prob.argmax(1)
    out = {"accuracy": float((pred == y_true).mean())}
    aucs = []
    for c, name in enumerate(classes):
        pos, hit = y_true == c, pred == c
        tp, fn = np.sum(pos & hit), np.sum(pos & ~hit)
        fp, tn = np.sum(~pos & hit), np.sum(~pos & ~hit)
        sens = tp / (tp + fn) if tp + fn else np.nan
        spec = tn / (tn + fp) if tn + fp else np.nan
        ppv = tp / (tp + fp) if tp + fp else np.nan
        npv = tn / (tn + fn) if tn + fn else np.nan
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else np.nan
        auc = _auc(prob[:, c], pos)
        aucs.append(auc)
        out.update({f"{name}/sensitivity": sens, f"{name}/specificity": spec, f"{name}/ppv": ppv,
                    f"{name}/npv": npv, f"{name}/f1": f1, f"{name}/youden": sens + spec - 1, f"{name}/auc": auc})
    out["macro_auc"] = float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else np.nan
    return {k: float(v) for k, v in out.items()}


def bootstrap_ci(y_true, prob, classes, groups, n_boot: int = 2000, seed: int = 0,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Point estimate and percentile bootstrap CI of every metric, resampling patient groups with replacement
    (all items of a drawn patient enter together), seeded."""
    y_true, prob, groups = np.asarray(y_true), np.asarray(prob), np.asarray(groups)
    point = classification_metrics(y_true, prob, classes)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(uniq))]
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in point}
    for _ in range(n_boot):
        idx = np.concatenate([members[g] for g in rng.integers(0, len(uniq), len(uniq))])
        m = classification_metrics(y_true[idx], prob[idx], classes)
        for k in point:
            draws[k].append(m[k])
    lo_q, hi_q = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    rows = []
    for k, v in point.items():
        d = np.array(draws[k], float)
        d = d[np.isfinite(d)]
        lo, hi = (np.percentile(d, lo_q), np.percentile(d, hi_q)) if d.size else (np.nan, np.nan)
        cls, _, metric = k.rpartition("/")
        rows.append({"class": cls or "overall", "metric": metric, "value": v, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TestResult:
    name: str
    statistic: float
    p: float
    detail: dict

    def to_dict(self) -> dict:
        return {"name": self.name, "statistic": self.statistic, "p": self.p, **self.detail}


def mcnemar_test(correct_a, correct_b) -> TestResult:
    """McNemar on paired correctness: exact binomial when the discordant pairs are fewer than 25, else the
    chi-square with continuity correction (statsmodels' rule of thumb)."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    exact = table[0, 1] + table[1, 0] < 25
    r = mcnemar(table, exact=exact, correction=True)
    return TestResult("McNemar (exact)" if exact else "McNemar (chi-square, corrected)", float(r.statistic),
                      float(r.pvalue), {"only_a_correct": int(table[0, 1]), "only_b_correct": int(table[1, 0])})


def accuracy_vs_reader(model_correct: int, model_total: int, reader_correct: int, reader_total: int) -> TestResult:
    """Chi-square test (Yates) of two accuracies as a 2x2 table; Fisher's exact test when an expected count is
    below 5."""
    table = np.array([[model_correct, model_total - model_correct], [reader_correct, reader_total - reader_correct]])
    chi2, p, dof, expected = stats.chi2_contingency(table, correction=True)
    if (expected < 5).any():
        odds, p = stats.fisher_exact(table)
        return TestResult("Fisher's exact", float(odds), float(p), {"table": table.tolist()})
    return TestResult("chi-square (Yates)", float(chi2), float(p), {"table": table.tolist(), "dof": int(dof)})


def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x)


def delong_test(y_positive, score_a, score_b) -> TestResult:
    """DeLong's test for two correlated ROC AUCs on the same cases (fast algorithm of Sun & Xu, 2014)."""
    pos = np.asarray(y_positive, bool)
    scores = np.vstack([np.asarray(score_a, float), np.asarray(score_b, float)])
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise ValueError("DeLong's test needs at least two positive and two negative cases")
    x, y = scores[:, pos], scores[:, ~pos]
    tx = np.array([_midrank(r) for r in x])
    ty = np.array([_midrank(r) for r in y])
    tz = np.array([_midrank(r) for r in scores[:, np.r_[np.flatnonzero(pos), np.flatnonzero(~pos)]]])
    aucs = tz[:, :m].sum(axis=1) / m / n - (m + 1.0) / 2.0 / n
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.cov(v01) / m + np.cov(v10) / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (aucs[0] - aucs[1]) / np.sqrt(var) if var > 0 else np.nan
    p = 2 * stats.norm.sf(abs(z)) if np.isfinite(z) else np.nan
    return TestResult("DeLong", float(z), float(p), {"auc_a": float(aucs[0]), "auc_b": float(aucs[1])})
