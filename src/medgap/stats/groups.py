"""Splitting a tidy table into groups, and per-group descriptives.

Every test in ``medgap.stats`` takes the same input: a tidy DataFrame (one row per image, a value column
and a group column) or a mapping ``{group: values}``. Group order is the sorted labels for a DataFrame (the
category order for a Categorical column, which is how a caller fixes a paper's row order) and the mapping's
own order for a mapping; labels become ``str``. Rows without a group label are ignored. NaN and +/-inf values
are missing: dropped, and counted in ``describe_groups``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

from medgap.stats._checks import check_confidence

GroupInput = pd.DataFrame | Mapping[object, npt.ArrayLike]


def _raw_groups(data: GroupInput, value: str | None, group: str | None) -> dict[str, np.ndarray]:
    """All values per group (missing ones included), as float64, in group order."""
    if isinstance(data, pd.DataFrame):
        if value is None or group is None:
            raise TypeError("a DataFrame needs value= and group= (the column names to compare)")
        missing = [c for c in (value, group) if c not in data.columns]
        if missing:
            raise KeyError(f"no column {', '.join(map(repr, missing))}; the table has "
                           f"{', '.join(map(str, data.columns))}")
        out = {}
        for label, sub in data.groupby(group, sort=True, observed=True):
            try:
                out[str(label)] = sub[value].to_numpy(np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(f"column {value!r} must be numeric (group {label!r}: {err})") from err
        return out
    return {str(label): np.asarray(v, dtype=np.float64).ravel() for label, v in data.items()}


def split_groups(data: GroupInput, value: str | None = None, group: str | None = None) -> dict[str, np.ndarray]:
    """Finite values per group, in group order (groups whose values are all missing keep an empty array)."""
    return {g: v[np.isfinite(v)] for g, v in _raw_groups(data, value, group).items()}


def _compared_groups(data: GroupInput, value: str | None, group: str | None) -> dict[str, np.ndarray]:
    """The groups with at least one finite value; ValueError naming every group when fewer than 2."""
    raw = _raw_groups(data, value, group)
    groups = {g: v[np.isfinite(v)] for g, v in raw.items()}
    usable = {g: v for g, v in groups.items() if v.size}
    if len(usable) < 2:
        found = ", ".join(f"{g!r} ({groups[g].size} values, {raw[g].size - groups[g].size} missing)" for g in raw)
        what = f" {value!r}" if value else ""
        raise ValueError(f"need at least 2 groups with a finite value to compare{what}; found {len(raw)} group(s)"
                         f"{': ' + found if found else ''}. Check the group column and the failed/missing values.")
    return usable


def sum_of_squares(v: np.ndarray) -> float:
    """Sum of squared deviations from the mean; exactly 0 for constant input (the mean of equal floats can
    differ from them in the last bit, which would turn zero variance into 1e-30 and an F of 1e+30)."""
    if v.size == 0:
        return float("nan")
    if v.min() == v.max():
        return 0.0
    return float(((v - v.mean()) ** 2).sum())


def variance(v: np.ndarray) -> float:
    """Sample variance (ddof=1); NaN below 2 values, exactly 0 for constant input."""
    return sum_of_squares(v) / (v.size - 1) if v.size > 1 else float("nan")


def describe_groups(data: GroupInput, value: str | None = None, group: str | None = None,
                    confidence: float = 0.95) -> pd.DataFrame:
    """One row per group: n, n_missing, mean, sd (ddof=1), t-based CI of the mean, median, q25, q75, iqr.

    The CI is ``mean +/- t_{(1+confidence)/2, n-1} * sd / sqrt(n)``. Quantiles are NumPy's default (linear,
    Hyndman-Fan type 7, as pandas). A group with one value has NaN sd and CI; one whose values are all missing
    has n = 0 and NaN statistics; zero variance gives sd = 0 and a zero-width CI.
    """
    check_confidence(confidence)
    rows = []
    for g, raw in _raw_groups(data, value, group).items():
        v = raw[np.isfinite(raw)]
        n = v.size
        mean = float(v.mean()) if n else np.nan
        sd = float(np.sqrt(variance(v)))
        if n > 1:
            half = special.stdtrit(n - 1, (1 + confidence) / 2) * sd / np.sqrt(n)  # Student's t quantile (= stats.t.ppf)
            lo, hi = mean - half, mean + half
        else:
            lo = hi = np.nan
        q25, med, q75 = (float(q) for q in np.percentile(v, [25, 50, 75])) if n else (np.nan,) * 3
        rows.append(dict(group=g, n=n, n_missing=raw.size - n, mean=mean, sd=sd, ci_low=lo, ci_high=hi,
                         median=med, q25=q25, q75=q75, iqr=q75 - q25))
    columns = ["group", "n", "n_missing", "mean", "sd", "ci_low", "ci_high", "median", "q25", "q75", "iqr"]
    return pd.DataFrame(rows, columns=columns)
