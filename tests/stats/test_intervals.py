"""Intervals of d (issue 10, item 2): the exact noncentral-t CI against a brute-force inversion of a noncentral t
distribution computed here by numerical integration (not scipy.stats.nct), and the bootstrap over units
against a plain resampling loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from medgap.stats import cluster_bootstrap_effects, compare_groups, compare_metrics, noncentral_t_ci


def _nct_cdf(t: float, df: int, ncp: float) -> float:
    """P(T <= t) for T = (Z + ncp) / sqrt(V / df): the integral over V ~ chi2(df) of Phi(t sqrt(v / df) - ncp)."""
    f = lambda v: stats.norm.cdf(t * np.sqrt(v / df) - ncp) * stats.chi2.pdf(v, df)  # noqa: E731
    return integrate.quad(f, 0, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0]


def _invert(t: float, df: int, target: float) -> float:
    # the cdf falls from 1 to 0 as ncp runs over [t - 30, t + 30] for the cases below
    return optimize.brentq(lambda ncp: _nct_cdf(t, df, ncp) - target, t - 30, t + 30, xtol=1e-10)


@pytest.mark.parametrize(("d", "n_a", "n_b", "confidence"),
                         [(0.5, 20, 20, 0.95), (1.2, 5, 7, 0.95), (-0.8, 10, 4, 0.90), (13.1, 3, 4, 0.95)])
def test_noncentral_t_ci_matches_a_brute_force_inversion(d, n_a, n_b, confidence):
    scale = np.sqrt(n_a * n_b / (n_a + n_b))
    df = n_a + n_b - 2
    alpha = 1 - confidence
    expected = (_invert(d * scale, df, 1 - alpha / 2) / scale, _invert(d * scale, df, alpha / 2) / scale)
    assert noncentral_t_ci(d, n_a, n_b, confidence) == pytest.approx(expected, abs=2e-6)


def test_noncentral_t_ci_edge_cases():
    assert np.isnan(noncentral_t_ci(1.0, 1, 5)).all() and np.isnan(noncentral_t_ci(np.nan, 5, 5)).all()
    low, high = noncentral_t_ci(0.0, 30, 30)
    assert low == pytest.approx(-high, abs=1e-9)  # symmetric at d = 0


def test_small_groups_report_the_noncentral_t_interval_and_large_ones_the_bootstrap():
    rng = np.random.default_rng(4)
    small = {"natural": rng.normal(20, 3, 6), "ct": rng.normal(26, 3, 5), "mr": rng.normal(24, 3, 40)}
    small["natural2"] = rng.normal(20, 3, 40)
    c = compare_groups(small, "v", reference="natural2", n_boot=500).vs_reference.set_index("group_b")
    assert c.loc["ct", "d_ci_method"] == "noncentral t" and c.loc["mr", "d_ci_method"] == "bootstrap"
    assert (c.loc["ct", "d_ci_low"], c.loc["ct", "d_ci_high"]) == (c.loc["ct", "d_nct_low"], c.loc["ct", "d_nct_high"])
    assert (c.loc["mr", "d_ci_low"], c.loc["mr", "d_ci_high"]) == (c.loc["mr", "d_boot_low"], c.loc["mr", "d_boot_high"])


def _loop_bootstrap(frames: pd.DataFrame, cluster: str, n_boot: int, seed: int) -> tuple[float, float]:
    """Plain restatement: draw clusters with replacement within each group, stack their frames, Cohen's d of
    pocus against natural (pooled SD, ddof 1), percentile interval."""
    rng = np.random.default_rng(seed)
    by_group = {g: [c.brisque.to_numpy() for _, c in sub.groupby(cluster)] for g, sub in frames.groupby("group")}
    ds = []
    for _ in range(n_boot):
        drawn = {g: np.concatenate([cl[i] for i in rng.integers(0, len(cl), len(cl))]) for g, cl in by_group.items()}
        a, b = drawn["natural"], drawn["pocus"]
        pooled = np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
        ds.append((b.mean() - a.mean()) / pooled)
    return tuple(np.percentile(ds, [2.5, 97.5]))


def test_cluster_bootstrap_is_reproducible_wider_than_frames_and_matches_a_loop(clips):
    frames = clips[clips.group != "ct"]
    by_clip = cluster_bootstrap_effects(frames.brisque, frames.group, frames.path, "natural", n_boot=3000, seed=7)
    again = cluster_bootstrap_effects(frames.brisque, frames.group, frames.path, "natural", n_boot=3000, seed=7)
    pd.testing.assert_frame_equal(by_clip, again)
    other = cluster_bootstrap_effects(frames.brisque, frames.group, frames.path, "natural", n_boot=3000, seed=8)
    assert not other.equals(by_clip)
    by_frame = cluster_bootstrap_effects(frames.brisque, frames.group, np.arange(len(frames)), "natural",
                                         n_boot=3000, seed=7)
    clip_width = float(by_clip.d_boot_high.iloc[0] - by_clip.d_boot_low.iloc[0])
    frame_width = float(by_frame.d_boot_high.iloc[0] - by_frame.d_boot_low.iloc[0])
    assert clip_width > 1.5 * frame_width  # 60 frames of one clip are one draw, not 60
    low, high = _loop_bootstrap(frames, "path", 3000, seed=1)  # other draws: agreement to Monte Carlo error
    assert (by_clip.d_boot_low.iloc[0], by_clip.d_boot_high.iloc[0]) == pytest.approx((low, high), abs=0.08)


def test_compare_metrics_bootstrap_is_seeded(clips):
    one = compare_metrics(clips, "brisque", n_boot=300, seed=3)["brisque"].vs_reference
    two = compare_metrics(clips, "brisque", n_boot=300, seed=3)["brisque"].vs_reference
    three = compare_metrics(clips, "brisque", n_boot=300, seed=4)["brisque"].vs_reference
    pd.testing.assert_frame_equal(one, two)
    assert not np.allclose(one.d_boot_low, three.d_boot_low)


def test_an_extreme_d_on_few_values_gives_no_noncentral_interval_instead_of_failing():
    """Two groups of 2 values with a tiny spread (d about 40): SciPy's nct.cdf is NaN that far in the tail. The
    comparison must still be made (it used to skip the whole metric), its bound left undefined."""
    import pandas as pd

    from medgap.stats import compare_groups, noncentral_t_ci

    lo, hi = noncentral_t_ci(40.0, 2, 2)
    assert not (np.isfinite(lo) and np.isfinite(hi))  # the lower bound is out of SciPy's reach
    df = pd.DataFrame({"group": ["a", "a", "b", "b"],  # the BRISQUE scores of the test that found it
                       "v": [98.38016895259408, 98.54125662676834, 104.13942636151388, 104.38311629085636],
                       "unit": ["1", "2", "3", "4"]})
    cmp = compare_groups(df, "v", "group", units="unit")
    row = cmp.vs_reference.iloc[0]
    assert row.cohen_d > 20 and row.p < 0.01
