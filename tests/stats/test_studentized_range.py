"""The vectorised studentized range (medgap.stats._studentized_range) against scipy.stats.studentized_range
and against exact identities, and Games-Howell with 150 groups (issue 8: one scipy ppf per pair took over
ten minutes there; benchmarks/posthoc_bench.py times it).

SciPy evaluates sf as 1 - cdf with quad (about 1e-11 absolute noise). Measured (k = 3, 40, 150; random
df in [1, 2e4], q over the bulk and the tail): our sf within 2.1e-11 absolute of scipy's at 600 points, our
ppf within 2.5e-11 relative of scipy's at 150 df. So sf is compared to 1e-8 relative or 1e-11 absolute here
(df up to 5000), and ppf to 1e-9 relative. The k = 2 identity Q = sqrt(2) |T| gives exact values far into
the tail, where relative accuracy is checked to 1e-10 (measured: 4e-13 down to p = 1e-18).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medgap.stats import games_howell, tukey_hsd
from medgap.stats._studentized_range import studentized_range_ppf, studentized_range_sf


@pytest.mark.parametrize("k", [3, 7, 40, 150])
def test_sf_and_ppf_against_scipy(k):
    rng = np.random.default_rng(k)
    df = np.concatenate([[1.0, 2.0, 2.7, 3.9], np.exp(rng.uniform(np.log(4), np.log(5000), 4))])
    q = rng.uniform(0.5, 3 * np.sqrt(np.log(k)) + 4, df.size)
    np.testing.assert_allclose(studentized_range_sf(q, k, df), stats.studentized_range.sf(q, k, df),
                               rtol=1e-8, atol=1e-11)
    some = df[[0, 2, 5]]
    np.testing.assert_allclose(studentized_range_ppf(0.95, k, some), stats.studentized_range.ppf(0.95, k, some),
                               rtol=1e-9)


@pytest.mark.parametrize("df", [1.0, 2.5, 7.0, 50.0, np.inf])
def test_two_means_is_welch_t_far_into_the_tail(df):
    """k = 2: P(Q > q) = 2 P(T > q / sqrt(2)) exactly; p values down to 1e-15 keep 1e-10 relative accuracy."""
    q = np.array([0.01, 0.5, 3.0, 10.0, 30.0, 100.0, 1000.0])
    exact = 2 * stats.t.sf(q / np.sqrt(2), df)
    keep = exact > 1e-15
    np.testing.assert_allclose(studentized_range_sf(q, 2, df)[keep], exact[keep], rtol=1e-10)
    np.testing.assert_allclose(studentized_range_ppf(0.95, 2, df), np.sqrt(2) * stats.t.ppf(0.975, df),
                               rtol=1e-10)


def test_large_df_tends_to_the_infinite_df_limit_and_nan_propagates():
    q = np.array([2.0, 4.0, 6.0])
    far = studentized_range_sf(q, 10, 1e7)
    np.testing.assert_allclose(far, studentized_range_sf(q, 10, np.inf), rtol=1e-5)
    np.testing.assert_allclose(studentized_range_ppf(0.95, 10, [1e7, np.inf]),
                               stats.studentized_range.ppf(0.95, 10, np.inf), rtol=1e-6)
    out = studentized_range_sf([np.nan, 3.0, 3.0, 0.0], 4, [5.0, np.nan, -1.0, 5.0])
    assert np.isnan(out[:3]).all() and out[3] == 1.0
    assert np.isnan(studentized_range_ppf(0.95, 4, [np.nan, 0.0])).all()


def test_games_howell_150_groups_against_scipy_on_a_sample_of_pairs():
    """150 groups x 3 values (a folder with one subfolder per patient): 11175 pairs, each with its own df."""
    rng = np.random.default_rng(8)
    k = 150
    data = pd.DataFrame({"group": np.repeat([f"p{i:03d}" for i in range(k)], 3),
                         "score": rng.normal(np.repeat(rng.normal(30, 8, k), 3), rng.uniform(1, 10, 3 * k))})
    gh = games_howell(data, "score", "group")
    assert len(gh) == k * (k - 1) // 2 and gh.p_adj.notna().all() and gh.df.nunique() == len(gh)
    rows = gh.iloc[rng.choice(len(gh), 12, replace=False)]
    q = np.sqrt(2) * np.abs(rows.t.to_numpy())
    np.testing.assert_allclose(rows.p_adj, stats.studentized_range.sf(q, k, rows.df.to_numpy()),
                               rtol=1e-8, atol=1e-11)
    few = rows.iloc[:3]
    crit = stats.studentized_range.ppf(0.95, k, few.df.to_numpy())
    np.testing.assert_allclose(few.ci_high - few["diff"], crit / np.sqrt(2) * few.se, rtol=1e-9)
    tk = tukey_hsd(data, "score", "group")  # one df: its critical value against scipy's
    crit = stats.studentized_range.ppf(0.95, k, tk.df.iloc[0])
    np.testing.assert_allclose(tk.ci_high - tk["diff"], crit / np.sqrt(2) * tk.se, rtol=1e-9)
