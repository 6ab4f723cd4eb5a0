"""Rank-based comparisons after Kruskal-Wallis: Dunn's test (scikit-posthocs) and Cliff's delta.

Cliff's delta of ``b`` against ``a`` is P(b > a) - P(b < a) over all pairs of one value of each (ties count
zero): positive when ``b`` scores higher, as Cohen's d here (equal to 2 U_b / (n_a n_b) - 1 with the
Mann-Whitney U of b). No maintained Python library gives a CI for it (pingouin's CLES and the
``cliffs-delta`` package give the point value only), so its CI comes from the same bootstrap over units as
Cohen's d (``medgap.stats.effect_sizes.cluster_bootstrap_effects``).

Dunn's test is written here (the z of each pair's mean-rank difference with the tie-corrected variance, as
``scikit_posthocs.posthoc_dunn``, which tests/stats checks it against) rather than called from scikit-posthocs:
that package imports ``matplotlib.pyplot`` and seaborn when it is imported (~1 s, and pyplot's global state,
which medgap's library code never loads: tests/report/test_no_global_backend.py). Holm's adjustment is
``medgap.stats.multiplicity.holm`` (checked against statsmodels' ``multipletests``).

References: Cliff, N. (1993). Dominance statistics: ordinal analyses to answer ordinal questions. Psychological
Bulletin 114, 494-509. Dunn, O. J. (1964). Multiple comparisons using rank sums. Technometrics 6, 241-252.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from medgap.stats.groups import GroupInput, _compared_groups

DUNN_COLUMNS = ["group_a", "group_b", "n_a", "n_b", "mean_rank_a", "mean_rank_b", "z", "p", "p_holm",
                "cliffs_delta"]


def cliffs_delta(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cliff's delta of ``b`` against ``a`` (NaN values dropped; NaN when a group is empty): the pairs with b
    higher minus those with b lower, over n_a n_b, counted with a sorted copy of ``a`` (O((n_a + n_b) log n_a),
    so Dunn's table stays fast with many groups)."""
    a, b = (np.asarray(x, dtype=np.float64).ravel() for x in (a, b))
    a, b = np.sort(a[np.isfinite(a)]), b[np.isfinite(b)]
    if not (a.size and b.size):
        return float("nan")
    below = np.searchsorted(a, b, side="left").sum()  # pairs with a < b
    above = (a.size - np.searchsorted(a, b, side="right")).sum()  # pairs with a > b
    return float((below - above) / (a.size * b.size))


def dunn_test(data: GroupInput, value: str | None = None, group: str | None = None) -> pd.DataFrame:
    """Dunn's test for every pair of groups (``group_a`` before ``group_b`` in group order): mean ranks in the
    pooled sample, ``z = (R_b - R_a) / sqrt((N (N + 1) / 12 - T / (12 (N - 1))) (1/n_a + 1/n_b))`` with T the
    sum of t^3 - t over tied values, the two-sided ``p`` from the normal distribution, ``p_holm`` adjusted
    over all pairs by Holm's method, and Cliff's delta of b against a. All values equal: z and p are NaN.
    Fewer than 2 groups with values: ValueError (see ``split_groups``)."""
    from medgap.stats.multiplicity import holm

    groups = _compared_groups(data, value, group)
    names = list(groups)
    allv = np.concatenate(list(groups.values()))
    n = allv.size
    ranks = stats.rankdata(allv)
    bounds = np.cumsum([0] + [v.size for v in groups.values()])
    mean_rank = np.array([ranks[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    _, ties = np.unique(allv, return_counts=True)
    spread = n * (n + 1) / 12 - (ties**3 - ties).sum() / (12 * (n - 1)) if n > 1 else 0.0
    sizes = np.array([v.size for v in groups.values()])
    pairs = list(itertools.combinations(range(len(names)), 2))
    i, j = (np.array(x, dtype=int) for x in zip(*pairs))
    with np.errstate(divide="ignore", invalid="ignore"):  # all values tied: spread 0, z and p NaN
        z = np.where(spread > 0, (mean_rank[j] - mean_rank[i]) / np.sqrt(spread * (1 / sizes[i] + 1 / sizes[j])),
                     np.nan)
    out = pd.DataFrame({"group_a": [names[x] for x in i], "group_b": [names[y] for y in j], "n_a": sizes[i],
                        "n_b": sizes[j], "mean_rank_a": mean_rank[i], "mean_rank_b": mean_rank[j], "z": z,
                        "p": 2 * stats.norm.sf(np.abs(z)), "p_holm": np.nan,
                        "cliffs_delta": [cliffs_delta(groups[names[x]], groups[names[y]]) for x, y in pairs]},
                       columns=DUNN_COLUMNS)
    out["p_holm"] = holm(out["p"].to_numpy(np.float64)) if len(out) else []
    return out
