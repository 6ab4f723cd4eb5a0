"""Cluster (patient-grouped) bootstrap: resample patients with replacement, keep all items of a drawn patient.

Frames of one patient, or several images of one study, are not independent observations: resampling items
treats 55 frames of one video as 55 patients and gives CIs that are too narrow. Here a resample draws as many
patients as the data hold, with replacement, and each drawn patient brings all its items; a patient drawn
twice counts twice. A resample is represented by item *weights* (the number of times the item's patient was
drawn), so a statistic written for weighted data (counts become weighted sums) evaluates a whole batch of
resamples with array operations instead of a Python loop, and gives exactly what explicit duplication of
the drawn patients' rows would give.

Intervals are percentile intervals (Efron & Tibshirani 1993, ch. 13). BCa is not used: with clustered data
its acceleration needs a leave-one-patient-out jackknife, and its bias correction is undefined when the
estimate sits on the boundary (a sensitivity of 1.0, common in small test sets), where percentile
intervals still behave.

References: Davison & Hinkley, Bootstrap Methods and their Application (1997), section 3.8 (resampling
clusters); Field & Welsh, J R Stat Soc B 69 (2007) 369-390.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from medgap.stats._checks import check_confidence

# Item weights per batch of resamples: at most this many float64 cells (32 MiB) at once.
_MAX_BATCH_CELLS = 1 << 22


def group_index(groups: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique patient labels and, per item, the index of its patient (labels compared as strings)."""
    labels = np.asarray(groups).astype(str)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"groups must be a non-empty 1-D array of patient ids, got shape {labels.shape}")
    return np.unique(labels, return_inverse=True)


def patient_resample_counts(n_groups: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_groups) int array: how many times each patient is drawn when ``n_groups`` patients are
    drawn with replacement, ``n_boot`` times (each row sums to ``n_groups``)."""
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    offsets = (np.arange(n_boot) * n_groups)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n_groups).reshape(n_boot, n_groups)


def grouped_bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    groups: npt.ArrayLike,
    n_boot: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Bootstrap distribution of a weighted statistic, resampling patients.

    Args:
        statistic: maps item weights of shape (b, n_items) to values of shape (b, m), one row per resample;
            it must treat weight w on an item as w copies of it. Undefined values are NaN.
        groups: patient id of each item (pass the item ids themselves for an item-level bootstrap).
        n_boot: number of resamples.
        seed: seed of ``numpy.random.default_rng``; the same seed and data give the same draws.

    Returns:
        (n_boot, m) array of bootstrap values.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    _, inverse = group_index(groups)
    n_groups = int(inverse.max()) + 1
    rng = np.random.default_rng(seed)
    batch = max(1, _MAX_BATCH_CELLS // inverse.size)
    out = []
    for start in range(0, n_boot, batch):
        counts = patient_resample_counts(n_groups, min(batch, n_boot - start), rng)
        out.append(np.asarray(statistic(counts[:, inverse].astype(np.float64)), dtype=np.float64))
    return np.concatenate(out, axis=0)


def percentile_interval(
    draws: npt.ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of each column of ``draws`` (n_boot, m), ignoring NaN draws.

    NaN marks a resample where the statistic is undefined (e.g. no positive case of a class was drawn); the
    interval is then conditional on the statistic being defined, and the returned count of valid draws lets
    the caller say so. Quantiles interpolate linearly (``numpy.quantile``'s default, Hyndman-Fan type 7).

    Returns:
        low, high, n_valid: arrays of length m; low/high are NaN for a column without valid draws.
    """
    check_confidence(confidence)
    d = np.asarray(draws, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    valid = np.isfinite(d)
    n_valid = valid.sum(axis=0)
    alpha = (1 - confidence) / 2
    low = np.full(d.shape[1], np.nan)
    high = np.full(d.shape[1], np.nan)
    has = n_valid > 0
    if has.any():
        q = np.nanquantile(np.where(valid, d, np.nan)[:, has], [alpha, 1 - alpha], axis=0)
        low[has], high[has] = q[0], q[1]
    return low, high, n_valid
