"""compare_groups bundles the parts; paper_table prints them as the published study's table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medgap.stats import anova_line, compare_groups, games_howell, paper_table, pairwise_effect_sizes, tukey_hsd


@pytest.fixture(scope="module")
def comparison(study):
    return compare_groups(study, "brisque", "group", reference="natural")


def test_parts_equal_the_standalone_functions(comparison, study, samples):
    c = comparison
    assert c.value == "brisque" and c.reference == "natural" and c.confidence == 0.95
    assert c.anova.F == pytest.approx(stats.f_oneway(*samples.values()).statistic, rel=1e-8)
    pd.testing.assert_frame_equal(c.tukey, tukey_hsd(study, "brisque", "group"))
    pd.testing.assert_frame_equal(c.games_howell, games_howell(study, "brisque", "group"))
    pd.testing.assert_frame_equal(c.effects, pairwise_effect_sizes(study, "brisque", "group"))
    assert (c.effects_vs_reference.group_a == "natural").all() and len(c.effects_vs_reference) == 4


def test_machine_outputs_keep_full_precision(comparison):
    frames = comparison.to_frames()
    assert set(frames) == {"groups", "omnibus", "tukey", "games_howell", "effect_sizes", "effect_sizes_vs_reference",
                           "vs_reference", "dunn", "assumptions", "mixed_model"}
    omnibus = frames["omnibus"].set_index("test")
    assert omnibus.loc["one-way ANOVA", "statistic"] == comparison.anova.F
    assert omnibus.loc["Kruskal-Wallis", "effect_size"] == comparison.kruskal.epsilon_squared
    d = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert d["anova"]["F"] == comparison.anova.F  # exact round trip, no rounding
    assert d["describe"][0]["n"] == 60 and isinstance(d["describe"][0]["n"], int)
    assert d["effects_vs_reference"][3]["cohen_d"] == comparison.effects_vs_reference.cohen_d.iloc[3]


def test_paper_table_on_study_data(comparison):
    table = paper_table(comparison).set_index("group")
    assert table.columns.tolist() == ["n", "mean (95% CI)", "d vs natural (95% CI)"]
    m = comparison.describe.set_index("group").loc["pocus"]
    assert table.loc["pocus", "mean (95% CI)"] == f"{m['mean']:.1f} ({m.ci_low:.1f} to {m.ci_high:.1f})"
    assert table.loc["natural", "d vs natural (95% CI)"] == "reference"
    assert anova_line(comparison).startswith("One-way ANOVA: F(4, 552) = ") and "P < .000001" in anova_line(comparison)


def test_paper_table_hand_case():
    """natural [20, 22, 24]: 22 +/- t(.975, 2) 2 / sqrt(3) = 22 +/- 4.968; pocus [50, 52, 54, 56]: 53 +/- 4.109;
    d = 31 / sqrt(5.6) = 13.100, SE = sqrt(7/12 + d^2/14) = 3.583, CI d +/- t(.975, 5) SE = 3.89 to 22.31 (the
    large-sample interval, interval="approx"; by default groups this small show the noncentral-t interval,
    checked in test_intervals.py)."""
    data = pd.DataFrame({"group": ["natural"] * 3 + ["pocus"] * 4 + ["cxr"],
                         "brisque": [20.0, 22, 24, 50, 52, 54, 56, 13]})
    comparison = compare_groups(data, "brisque", "group", reference="natural")
    assert comparison.vs_reference.set_index("group_b").d_ci_method.to_dict() == {"cxr": "", "pocus": "noncentral t"}
    table = paper_table(comparison, interval="approx")
    assert table.to_dict("records") == [
        {"group": "cxr", "n": 1, "mean (95% CI)": "13.0", "d vs natural (95% CI)": "n/a"},  # n < 2: flagged, no d
        {"group": "natural", "n": 3, "mean (95% CI)": "22.0 (17.0 to 27.0)", "d vs natural (95% CI)": "reference"},
        {"group": "pocus", "n": 4, "mean (95% CI)": "53.0 (48.9 to 57.1)",
         "d vs natural (95% CI)": "13.10 (3.89 to 22.31)"},
    ]
    table = paper_table(compare_groups(data, "brisque", "group", reference="natural", confidence=0.9), digits=2)
    assert table.columns.tolist() == ["group", "n", "mean (90% CI)", "d vs natural (90% CI)"]


@pytest.mark.filterwarnings("error")
def test_edge_cases_bundle_without_warnings():
    data = {"a": [1.0, 2.0, 4.0, np.nan], "b": [3.0, 5.0, 6.5], "c": [9.0], "flat": [5.0, 5.0]}
    c = compare_groups(data, "v")
    assert c.reference == "a" and np.isnan(c.welch.F) and np.isfinite(c.anova.F)
    assert c.effects_vs_reference.set_index("group_b").small_group.to_dict() == {"b": False, "c": True, "flat": False}
    json.dumps(c.to_dict(), allow_nan=False)  # NaN written as null
    with pytest.raises(ValueError, match="reference group 'natural' has no values"):
        compare_groups(data, "v", reference="natural")
    with pytest.raises(ValueError, match="need at least 2 groups"):
        compare_groups({"a": [1.0, 2.0], "b": [np.nan]}, "v")
