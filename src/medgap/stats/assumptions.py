"""Checks of the assumptions behind ANOVA and the t-based intervals: equal variances (Brown-Forsythe, i.e.
Levene's test centred on the median) and normality per group (Shapiro-Wilk), both from SciPy.

They describe the data rather than gate the analysis: Welch's ANOVA, Games-Howell and Kruskal-Wallis are
reported either way. Shapiro-Wilk needs 3 values; smaller groups are listed with the reason instead.

References: Brown, M. B., Forsythe, A. B. (1974). JASA 69, 364-367. Shapiro, S. S., Wilk, M. B. (1965).
Biometrika 52, 591-611.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from medgap.stats.groups import GroupInput, _compared_groups

ASSUMPTION_COLUMNS = ["test", "group", "n", "statistic", "p", "note"]
BROWN_FORSYTHE = "Brown-Forsythe (Levene, median-centred)"
SHAPIRO_WILK = "Shapiro-Wilk"


def assumption_checks(data: GroupInput, value: str | None = None, group: str | None = None) -> pd.DataFrame:
    """One row for the Brown-Forsythe test across the groups with 2 or more values (``group`` = "all") and one
    per group for Shapiro-Wilk (statistic W); a test that cannot run has NaN and a ``note`` saying why."""
    groups = _compared_groups(data, value, group)
    rows = []
    usable = [v for v in groups.values() if v.size >= 2]
    n_all = int(sum(v.size for v in usable))
    if len(usable) >= 2 and any(np.ptp(v) > 0 for v in usable):
        left_out = [g for g, v in groups.items() if v.size < 2]
        r = stats.levene(*usable, center="median")
        note = f"left out (fewer than 2 values): {', '.join(left_out)}" if left_out else ""
        rows.append(dict(test=BROWN_FORSYTHE, group="all", n=n_all, statistic=float(r.statistic), p=float(r.pvalue),
                         note=note))
    else:
        rows.append(dict(test=BROWN_FORSYTHE, group="all", n=n_all, statistic=np.nan, p=np.nan,
                         note="skipped: needs 2 groups with 2 or more values, not all constant"))
    for g, v in groups.items():
        if v.size < 3:
            rows.append(dict(test=SHAPIRO_WILK, group=g, n=v.size, statistic=np.nan, p=np.nan,
                             note="skipped: fewer than 3 values"))
        elif np.ptp(v) == 0:
            rows.append(dict(test=SHAPIRO_WILK, group=g, n=v.size, statistic=np.nan, p=np.nan,
                             note="skipped: all values equal"))
        else:
            with warnings.catch_warnings():  # "p-value may not be accurate for N > 5000": said in the note
                warnings.simplefilter("ignore", UserWarning)
                r = stats.shapiro(v)
            rows.append(dict(test=SHAPIRO_WILK, group=g, n=v.size, statistic=float(r.statistic), p=float(r.pvalue),
                             note="p approximate above 5000 values" if v.size > 5000 else ""))
    return pd.DataFrame(rows, columns=ASSUMPTION_COLUMNS)
