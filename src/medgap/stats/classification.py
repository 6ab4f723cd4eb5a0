"""Evaluating a classifier the way a clinical paper reports it, with confidence intervals.

Per class (one-vs-rest): sensitivity (recall), specificity, PPV (precision), NPV, F1, Youden's index
(sensitivity + specificity - 1) and ROC AUC; overall: accuracy, balanced accuracy (mean sensitivity), macro
F1 and macro AUC (mean of the one-vs-rest AUCs, as ``sklearn.metrics.roc_auc_score(multi_class="ovr")``).

Two kinds of 95% CI:

- percentile bootstrap that resamples *patients* (``medgap.stats.bootstrap``): the CI to report when a
  patient contributes several items (video frames, several images); every metric has one;
- Wilson score intervals for the metrics that are proportions (accuracy, sensitivity, specificity, PPV,
  NPV): closed form, but they treat items as independent, so with several items per patient they are too
  narrow.

Conventions: ``y_true`` and ``y_pred`` hold class indices 0..k-1 into ``classes``; ``prob`` is (n, k), one
score per class (probabilities or any monotone score; only AUC uses it). The confusion matrix has true
classes in rows and predicted classes in columns (scikit-learn's layout). A metric whose denominator is 0
(e.g. PPV of a class never predicted) is NaN, where scikit-learn warns and returns 0; a macro metric is NaN
when any class's metric is, so its definition does not change between bootstrap resamples.

Every number is checked against scikit-learn, statsmodels and torchmetrics in tests/stats/.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from medgap.stats._checks import check_confidence
from medgap.stats.bootstrap import grouped_bootstrap, percentile_interval

OVERALL = "overall"
"""The ``class`` label of the rows that summarise all classes."""
OVERALL_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "macro_auc")
CLASS_METRICS = ("sensitivity", "specificity", "ppv", "npv", "f1", "youden", "auc")
PROPORTIONS = ("accuracy", "sensitivity", "specificity", "ppv", "npv")
"""Metrics that are a count over a count, so have a Wilson interval."""


# --------------------------------------------------------------------------------------------------------
# input checks


def _labels(y: npt.ArrayLike, n_classes: int, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D class indices, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.floating) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} must hold class indices 0..{n_classes - 1} (map class names to their "
                             f"position in `classes` first), got dtype {a.dtype}")
    a = a.astype(np.int64)
    bad = (a < 0) | (a >= n_classes)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} value(s) outside 0..{n_classes - 1}, e.g. {a[bad][0]}")
    return a


def _check(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, classes: Sequence[str],
           prob: npt.ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    k = len(classes)
    if k < 2:
        raise ValueError(f"need at least 2 classes, got {list(classes)}")
    t, p = _labels(y_true, k, "y_true"), _labels(y_pred, k, "y_pred")
    if t.size != p.size or t.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of equal length, got {t.size} and {p.size}")
    if prob is None:
        return t, p, None
    s = np.asarray(prob, dtype=np.float64)
    if s.shape != (t.size, k):
        raise ValueError(f"prob must have shape (n_items, n_classes) = {(t.size, k)}, got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"prob has {int((~np.isfinite(s)).sum())} missing or infinite value(s)")
    return t, p, s


# --------------------------------------------------------------------------------------------------------
# weighted core: weights (b, n) are item multiplicities, one row per (bootstrap) resample


def _sum_by_code(codes: np.ndarray, weights: np.ndarray, length: int) -> np.ndarray:
    """(b, length): per row of ``weights``, the sum of the weights of the items with each code."""
    out = np.zeros((weights.shape[0], length))
    if codes.size == 0:
        return out
    order = np.argsort(codes, kind="stable")
    c = codes[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    out[:, c[starts]] = np.add.reduceat(weights[:, order], starts, axis=1)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _weighted_auc(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(b,) ROC AUC per weight row: the weighted Mann-Whitney statistic, P(score+ > score-) + P(tie) / 2."""
    _, tie = np.unique(score, return_inverse=True)
    n_tie = int(tie.max()) + 1
    wp = _sum_by_code(tie[positive], weights[:, positive], n_tie)
    wn = _sum_by_code(tie[~positive], weights[:, ~positive], n_tie)
    below = np.cumsum(wn, axis=1) - wn  # negative weight strictly below each tie block
    return _ratio((wp * (below + 0.5 * wn)).sum(axis=1), wp.sum(axis=1) * wn.sum(axis=1))


def _counts(y_true: np.ndarray, y_pred: np.ndarray, k: int, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class tp, fn, fp, tn of shape (b, k) and the total (b, 1), from the weighted confusion matrix."""
    cm = _sum_by_code(y_true * k + y_pred, weights, k * k).reshape(-1, k, k)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    actual, predicted = cm.sum(axis=2), cm.sum(axis=1)
    total = cm.sum(axis=(1, 2))[:, None]
    return {"tp": tp, "fn": actual - tp, "fp": predicted - tp, "tn": total - actual - predicted + tp,
            "total": total}


def _metric_matrix(y_true: np.ndarray, y_pred: np.ndarray, prob: np.ndarray | None, k: int,
                   weights: np.ndarray) -> np.ndarray:
    """(b, m) metric values in the order of ``_metric_keys`` for each row of item weights."""
    c = _counts(y_true, y_pred, k, weights)
    tp, fn, fp, tn = c["tp"], c["fn"], c["fp"], c["tn"]
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    per_class = {"sensitivity": sens, "specificity": spec, "ppv": _ratio(tp, tp + fp), "npv": _ratio(tn, tn + fn),
                 "f1": _ratio(2 * tp, 2 * tp + fp + fn), "youden": sens + spec - 1}
    if prob is not None:
        per_class["auc"] = np.stack([_weighted_auc(y_true == j, prob[:, j], weights) for j in range(k)], axis=1)
    # np.mean propagates NaN: a macro metric is undefined when one of its classes is
    overall = {"accuracy": _ratio(tp.sum(axis=1), c["total"][:, 0]), "balanced_accuracy": sens.mean(axis=1),
               "macro_f1": per_class["f1"].mean(axis=1)}
    if prob is not None:
        overall["macro_auc"] = per_class["auc"].mean(axis=1)
    columns = list(overall.values()) + [per_class[m][:, j] for j in range(k) for m in per_class]
    return np.stack(columns, axis=1)


def _metric_keys(classes: Sequence[str], with_auc: bool) -> list[tuple[str, str]]:
    overall = [m for m in OVERALL_METRICS if with_auc or m != "macro_auc"]
    per_class = [m for m in CLASS_METRICS if with_auc or m != "auc"]
    return [(OVERALL, m) for m in overall] + [(str(c), m) for c in classes for m in per_class]


# --------------------------------------------------------------------------------------------------------
# public functions


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, n_classes: int) -> np.ndarray:
    """(k, k) counts, true class in rows, predicted class in columns."""
    t, p = _labels(y_true, n_classes, "y_true"), _labels(y_pred, n_classes, "y_pred")
    if t.size != p.size:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} and {p.size}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def roc_auc(positive: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """ROC AUC of a binary problem (ties count one half); NaN without both positives and negatives."""
    pos = np.asarray(positive, dtype=bool)
    return float(_weighted_auc(pos, np.asarray(score, dtype=np.float64), np.ones((1, pos.size)))[0])


def roc_curve(positive: npt.ArrayLike, score: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold (``score >= threshold`` is positive), from
    (0, 0) at threshold +inf to (1, 1); as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.

    Returns:
        fpr, tpr, thresholds (decreasing).
    """
    pos = np.asarray(positive, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"a ROC curve needs positive and negative cases, got {n_pos} and {n_neg}")
    order = np.argsort(-s, kind="mergesort")
    s, pos = s[order], pos[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]  # last item of each block of tied scores
    tps = np.cumsum(pos)[last]
    fps = last + 1 - tps
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos], np.r_[np.inf, s[last]]


def wilson_interval(successes: npt.ArrayLike, total: npt.ArrayLike,
                    confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion (no continuity correction); NaN where ``total`` is 0.

    References: Wilson, J Am Stat Assoc 22 (1927) 209-212; Newcombe, Stat Med 17 (1998) 857-872.
    """
    check_confidence(confidence)
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(total, dtype=np.float64)
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    ok = n > 0
    return np.where(ok, centre - half, np.nan), np.where(ok, centre + half, np.nan)


def classification_metrics(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    classes: Sequence[str],
    prob: npt.ArrayLike | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Every metric as one row: ``class`` (a class name or ``"overall"``), ``metric``, ``value``, and for
    proportions ``successes``, ``total``, ``wilson_low``, ``wilson_high`` (NaN for the other metrics).

    Without ``prob`` the AUC rows are left out.
    """
    t, p, s = _check(y_true, y_pred, classes, prob)
    k = len(classes)
    values = _metric_matrix(t, p, s, k, np.ones((1, t.size)))[0]
    keys = _metric_keys(classes, s is not None)
    c = {name: v[0] for name, v in _counts(t, p, k, np.ones((1, t.size))).items()}
    fractions = {"sensitivity": (c["tp"], c["tp"] + c["fn"]), "specificity": (c["tn"], c["tn"] + c["fp"]),
                 "ppv": (c["tp"], c["tp"] + c["fp"]), "npv": (c["tn"], c["tn"] + c["fn"])}
    successes, total = np.full(len(keys), np.nan), np.full(len(keys), np.nan)
    for i, (cls, metric) in enumerate(keys):
        if metric == "accuracy":
            successes[i], total[i] = c["tp"].sum(), c["total"][0]
        elif metric in fractions:
            j = list(map(str, classes)).index(cls)
            successes[i], total[i] = fractions[metric][0][j], fractions[metric][1][j]
    low, high = wilson_interval(np.nan_to_num(successes), np.nan_to_num(total), confidence)
    return pd.DataFrame({
        "class": [k_[0] for k_ in keys], "metric": [k_[1] for k_ in keys], "value": values,
        "successes": successes, "total": total, "wilson_low": low, "wilson_high": high,
    })


def classification_metrics_ci(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    classes: Sequence[str],
    groups: npt.ArrayLike,
    prob: npt.ArrayLike | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """``classification_metrics`` plus a percentile bootstrap CI per metric that resamples patients.

    Args:
        groups: patient id of each item; all items of a drawn patient enter the resample together (pass the
            item ids for an item-level bootstrap).
        n_boot, seed: number of resamples and the seed (same seed and data, same CIs).

    Returns:
        The table of ``classification_metrics`` with ``ci_low``, ``ci_high`` and ``boot_valid`` (resamples
        where the metric was defined; the CI is conditional on that when fewer than ``n_boot``).
    """
    t, p, s = _check(y_true, y_pred, classes, prob)
    g = np.asarray(groups)
    if g.shape != t.shape:
        raise ValueError(f"groups must give one patient id per item ({t.size}), got shape {g.shape}")
    table = classification_metrics(t, p, classes, s, confidence)
    draws = grouped_bootstrap(lambda w: _metric_matrix(t, p, s, len(classes), w), g, n_boot, seed)
    table["ci_low"], table["ci_high"], table["boot_valid"] = percentile_interval(draws, confidence)
    return table


def paired_metric_differences(
    y_true: npt.ArrayLike,
    pred_a: npt.ArrayLike,
    pred_b: npt.ArrayLike,
    classes: Sequence[str],
    groups: npt.ArrayLike,
    prob_a: npt.ArrayLike | None = None,
    prob_b: npt.ArrayLike | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Metric of model A minus model B on the same items, with a percentile CI from one patient bootstrap
    applied to both (the pairing is kept: each resample scores both models on the same drawn patients).

    Unlike McNemar's and DeLong's tests, which take items as independent, this CI accounts for several
    items per patient. AUC rows need both ``prob_a`` and ``prob_b``.

    Returns:
        Columns ``class``, ``metric``, ``value_a``, ``value_b``, ``difference``, ``ci_low``, ``ci_high``,
        ``boot_valid``.
    """
    t, pa, sa = _check(y_true, pred_a, classes, prob_a)
    _, pb, sb = _check(t, pred_b, classes, prob_b)
    if (sa is None) != (sb is None):
        sa = sb = None
    g = np.asarray(groups)
    if g.shape != t.shape:
        raise ValueError(f"groups must give one patient id per item ({t.size}), got shape {g.shape}")
    k = len(classes)
    ones = np.ones((1, t.size))
    va, vb = _metric_matrix(t, pa, sa, k, ones)[0], _metric_matrix(t, pb, sb, k, ones)[0]
    draws = grouped_bootstrap(lambda w: _metric_matrix(t, pa, sa, k, w) - _metric_matrix(t, pb, sb, k, w),
                              g, n_boot, seed)
    low, high, valid = percentile_interval(draws, confidence)
    keys = _metric_keys(classes, sa is not None)
    return pd.DataFrame({"class": [c for c, _ in keys], "metric": [m for _, m in keys], "value_a": va,
                         "value_b": vb, "difference": va - vb, "ci_low": low, "ci_high": high,
                         "boot_valid": valid})
