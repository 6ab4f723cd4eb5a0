"""Means and CIs of small-valued metrics keep significant digits (issue 9, defect: an edge density of
0.0523 printed as ``0.1 (0.0 to 0.1)``); P values keep the AMA style (tests/stats/test_format_p_ci.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgap.stats import compare_groups, format_ci, format_value, paper_table


@pytest.mark.parametrize("args, text", [
    ((0.2, 0.19, 0.21), "0.200 (0.190 to 0.210)"),
    ((21.66, 20.94, 22.46), "21.7 (20.9 to 22.5)"),  # the BRISQUE range prints as before
    ((0.01, -0.04, 0.06), "0.0100 (-0.0400 to 0.0600)"),
    ((412.3, 398.0, 426.1), "412 (398 to 426)"),
    ((5.2e-6, 4.1e-6, 6.3e-6), "5.20e-06 (4.10e-06 to 6.30e-06)"),
    ((0.0523, float("nan"), float("nan")), "0.0523"),
    ((float("nan"), 1.0, 2.0), "n/a"),
])
def test_format_ci_significant(args, text):
    assert format_ci(*args, digits=None) == text


@pytest.mark.parametrize("x, text", [(0.0523, "0.0523"), (21.66, "21.7"), (3.14159, "3.14"), (-0.5, "-0.500"),
                                     (0.0, "0.00"), (2.5e-7, "2.50e-07"), (float("nan"), "n/a")])
def test_format_value(x, text):
    assert format_value(x) == text


def test_paper_table_prints_small_means_with_significant_digits():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"group": np.repeat(["a", "b"], 50),
                         "edge_density": np.r_[rng.normal(0.052, 0.004, 50), rng.normal(0.21, 0.01, 50)]})
    table = paper_table(compare_groups(data, "edge_density", "group", reference="a")).set_index("group")
    d = compare_groups(data, "edge_density", "group").describe.set_index("group")
    assert table.loc["a", "mean (95% CI)"] == f"{d.loc['a', 'mean']:.4f} ({d.loc['a', 'ci_low']:.4f} to " \
                                              f"{d.loc['a', 'ci_high']:.4f})"
    assert table.loc["b", "mean (95% CI)"].startswith(f"{d.loc['b', 'mean']:.3f} (")
    assert "0.1 (" not in table.loc["a", "mean (95% CI)"] and "0.2 (0.2 to 0.2)" not in table.loc["b", "mean (95% CI)"]


def test_a_wide_ci_does_not_round_the_estimate_away():
    """The embedded default's cr group (n = 2) printed 56 (-359 to 471): decimals came from the widest bound."""
    from medgap.stats.format import format_ci

    assert format_ci(55.98, -358.62, 470.58, digits=None) == "56.0 (-358.6 to 470.6)"
    assert format_ci(0.001, -5.0, 5.0, digits=None) == "0.0010 (-5.0000 to 5.0000)"  # capped: +2 decimals
