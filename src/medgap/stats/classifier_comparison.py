"""Tests comparing two classifiers, or a classifier and a human reader.

- ``mcnemar_test``: two models on the same cases (paired correctness);
- ``accuracy_vs_reader_test``: a model's accuracy against a reader's as a 2x2 table of correct/incorrect
  counts (chi-square, or Fisher's exact test for small expected counts); the reads are taken as
  independent samples, which is what a reader study reported as counts allows;
- ``delong_test``: two correlated ROC AUCs on the same cases.

All three take items as independent. With several items per patient their P values are too small; the
patient-bootstrap CI of the difference (``medgap.stats.paired_metric_differences``) accounts for that.
Checked against statsmodels, SciPy and a plain O(n^2) DeLong in tests/stats/test_classifier_comparison.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import stats

from medgap.stats._checks import check_confidence

MCNEMAR_EXACT_BELOW = 25
"""Discordant pairs below which McNemar's test is the exact binomial test: the rule statsmodels documents
for ``mcnemar(exact=...)``; the chi-square approximation is poor for fewer (Rosner, Fundamentals of
Biostatistics, 7th ed., 10.4)."""
EXPECTED_COUNT_MIN = 5
"""Smallest expected count for the chi-square test of a 2x2 table (Cochran's rule); Fisher's exact below."""


@dataclass(frozen=True)
class ComparisonResult:
    """One test: its name (with the variant used), statistic, two-sided P value, and the numbers behind it."""

    test: str
    statistic_name: str
    statistic: float
    p: float
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"test": self.test, "statistic_name": self.statistic_name, "statistic": self.statistic,
                "p": self.p, **self.detail}


def mcnemar_test(correct_a: npt.ArrayLike, correct_b: npt.ArrayLike,
                 exact_below: int = MCNEMAR_EXACT_BELOW) -> ComparisonResult:
    """McNemar's test of two classifiers' accuracies on the same cases.

    With b cases only A gets right and c only B gets right: when b + c < ``exact_below`` (25), the exact
    two-sided binomial test of b against Binomial(b + c, 1/2), P = min(1, 2 * P(X <= min(b, c))) and the
    statistic is min(b, c); otherwise the chi-square with continuity correction,
    (|b - c| - 1)^2 / (b + c) on 1 df. As ``statsmodels.stats.contingency_tables.mcnemar``.

    References: McNemar, Psychometrika 12 (1947) 153-157; Edwards, Psychometrika 13 (1948) 185-187.
    """
    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"correct_a and correct_b must be 1-D, non-empty and paired, got {a.shape} and {b_.shape}")
    only_a, only_b = int(np.sum(a & ~b_)), int(np.sum(~a & b_))
    discordant = only_a + only_b
    detail = {"n": int(a.size), "both_correct": int(np.sum(a & b_)), "only_a_correct": only_a,
              "only_b_correct": only_b, "both_wrong": int(np.sum(~a & ~b_)), "accuracy_a": float(a.mean()),
              "accuracy_b": float(b_.mean())}
    if discordant < exact_below:
        p = min(1.0, 2 * float(stats.binom.cdf(min(only_a, only_b), discordant, 0.5)))
        return ComparisonResult("McNemar (exact binomial)", "min(b, c)", float(min(only_a, only_b)), p, detail)
    chi2 = (abs(only_a - only_b) - 1) ** 2 / discordant
    return ComparisonResult("McNemar (chi-square, continuity corrected)", "chi2", float(chi2),
                            float(stats.chi2.sf(chi2, 1)), {**detail, "dof": 1})


def accuracy_vs_reader_test(model_correct: int, model_total: int, reader_correct: int, reader_total: int,
                            correction: bool = True) -> ComparisonResult:
    """A model's accuracy against a reader's, from the 2x2 table [[model correct, wrong], [reader correct,
    wrong]].

    Pearson's chi-square on 1 df, with Yates' continuity correction unless ``correction=False`` (as
    ``scipy.stats.chi2_contingency``); Fisher's exact test (two-sided, statistic = odds ratio) when an expected
    count is below 5, which includes a zero margin (both always right or always wrong), where the
    chi-square is undefined.

    The rows are taken as independent samples; when the reader read the same cases as the model, McNemar's
    test on the paired reads is the stronger test (``mcnemar_test``).
    """
    for name, (k, n) in {"model": (model_correct, model_total), "reader": (reader_correct, reader_total)}.items():
        if not (0 <= k <= n and n > 0):
            raise ValueError(f"{name}: correct must be between 0 and total, and total positive; got {k} of {n}")
    table = np.array([[model_correct, model_total - model_correct],
                      [reader_correct, reader_total - reader_correct]], dtype=np.int64)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    detail = {"table": table.tolist(), "expected": expected.tolist(),
              "accuracy_model": model_correct / model_total, "accuracy_reader": reader_correct / reader_total}
    if (expected < EXPECTED_COUNT_MIN).any():
        odds, p = stats.fisher_exact(table)
        return ComparisonResult("Fisher's exact (an expected count < 5)", "odds_ratio", float(odds), float(p),
                                detail)
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=correction)
    name = "chi-square (Yates-corrected)" if correction else "chi-square"
    return ComparisonResult(name, "chi2", float(chi2), float(p), {**detail, "dof": int(dof)})


def delong_covariance(positive: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUCs of several scores on the same cases and DeLong's covariance matrix of them.

    The fast algorithm of Sun & Xu: structural components from midranks, O(n log n) per score instead of
    DeLong's O(m n) pairwise comparisons. Ties count one half.

    Args:
        positive: (n,) bool, the positive cases.
        scores: (n_scores, n) or (n,), higher meaning more likely positive.

    Returns:
        aucs (n_scores,), covariance (n_scores, n_scores).

    References: DeLong, DeLong & Clarke-Pearson, Biometrics 44 (1988) 837-845; Sun & Xu, IEEE Signal Process
    Lett 21 (2014) 1389-1393.
    """
    pos = np.asarray(positive, dtype=bool)
    z = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if z.shape[1] != pos.size or pos.ndim != 1:
        raise ValueError(f"scores must have shape (n_scores, {pos.size}), got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("scores contain NaN or infinite values")
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's variance needs at least 2 positive and 2 negative cases, got {m} and {n}")
    x, y = z[:, pos], z[:, ~pos]
    tx = stats.rankdata(x, axis=1)  # midranks (average ranks of ties), as in Sun & Xu
    ty = stats.rankdata(y, axis=1)
    tz = stats.rankdata(np.concatenate([x, y], axis=1), axis=1)
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:, :m] - tx) / n  # per positive: share of negatives scored lower (ties one half)
    v01 = 1 - (tz[:, m:] - ty) / m  # per negative: share of positives scored higher
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def delong_test(positive: npt.ArrayLike, score_a: npt.ArrayLike, score_b: npt.ArrayLike,
                confidence: float = 0.95) -> ComparisonResult:
    """DeLong's test of two correlated ROC AUCs (two scores on the same cases), two-sided.

    z = (AUC_a - AUC_b) / SE with SE^2 = var_a + var_b - 2 cov_ab from ``delong_covariance``. When SE is 0
    (e.g. identical scores) the P value is 1 if the AUCs are equal and NaN otherwise. ``detail`` holds both
    AUCs, the difference and its Wald CI.
    """
    check_confidence(confidence)
    pos = np.asarray(positive, dtype=bool)
    aucs, cov = delong_covariance(pos, np.vstack([np.asarray(score_a, float), np.asarray(score_b, float)]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = float(np.sqrt(var)) if var > 0 else 0.0
    if se > 0:
        z = diff / se
        p = float(2 * stats.norm.sf(abs(z)))
    else:
        z, p = (0.0, 1.0) if diff == 0 else (np.nan, np.nan)
    q = stats.norm.ppf(0.5 + confidence / 2)
    return ComparisonResult("DeLong", "z", float(z), p, {
        "auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": diff, "se": se,
        "ci_low": diff - q * se, "ci_high": diff + q * se, "n_positive": int(pos.sum()),
        "n_negative": int((~pos).sum())})
