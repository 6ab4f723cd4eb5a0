"""describe_groups against NumPy/pandas and scipy.stats.t.interval (1e-8 relative), and group splitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medgap.stats import describe_groups, one_way_anova, split_groups

REL = 1e-8


def test_describe_matches_numpy_and_t_interval(study, samples):
    d = describe_groups(study, "brisque", "group").set_index("group")
    assert list(d.index) == sorted(samples)
    for g, v in samples.items():
        row = d.loc[g]
        assert row.n == v.size
        assert row["mean"] == pytest.approx(np.mean(v), rel=REL)
        assert row.sd == pytest.approx(np.std(v, ddof=1), rel=REL)
        lo, hi = stats.t.interval(0.95, v.size - 1, loc=np.mean(v), scale=stats.sem(v))
        assert (row.ci_low, row.ci_high) == pytest.approx((lo, hi), rel=REL)
        q25, med, q75 = pd.Series(v).quantile([0.25, 0.5, 0.75])
        assert (row.q25, row["median"], row.q75, row.iqr) == pytest.approx((q25, med, q75, q75 - q25), rel=REL)


def test_missing_values_are_dropped_and_counted(study):
    d = describe_groups(study, "brisque", "group").set_index("group")
    assert d.n_missing.to_dict() == {"ct": 0, "cxr": 1, "mr": 0, "natural": 1, "pocus": 1}  # NaN, NaN, +inf
    assert d.n.sum() + d.n_missing.sum() == len(study)


def test_other_confidence_level(samples):
    d = describe_groups(samples, confidence=0.9).set_index("group")
    v = samples["ct"]
    lo, hi = stats.t.interval(0.9, v.size - 1, loc=np.mean(v), scale=stats.sem(v))
    assert (d.loc["ct", "ci_low"], d.loc["ct", "ci_high"]) == pytest.approx((lo, hi), rel=REL)


def test_hand_case_and_small_groups():
    d = describe_groups({"a": [1.0, 2.0, 3.0, 4.0], "one": [7.0], "none": [np.nan], "flat": [5.0] * 3})
    d = d.set_index("group")
    a = d.loc["a"]
    assert (a.n, a["mean"], a["median"], a.q25, a.q75) == (4, 2.5, 2.5, 1.75, 3.25)
    assert a.sd == pytest.approx(np.sqrt(5 / 3), rel=1e-15)
    one = d.loc["one"]
    assert one.n == 1 and one["mean"] == 7 and one["median"] == 7
    assert np.isnan(one.sd) and np.isnan(one.ci_low) and np.isnan(one.ci_high)
    none = d.loc["none"]
    assert none.n == 0 and none.n_missing == 1 and np.isnan(none["mean"])
    flat = d.loc["flat"]
    assert flat.sd == 0 and flat.ci_low == flat.ci_high == 5  # zero variance: a zero-width CI, not NaN


def test_group_order_follows_categories_and_labels_become_strings():
    df = pd.DataFrame({"g": pd.Categorical(["pocus", "natural", "ct"] * 2, categories=["natural", "pocus", "ct", "mr"]),
                       "v": np.arange(6.0)})
    assert list(split_groups(df, "v", "g")) == ["natural", "pocus", "ct"]  # category order, unobserved 'mr' left out
    assert list(split_groups(pd.DataFrame({"g": [2, 1, 10], "v": [1.0, 2.0, 3.0]}), "v", "g")) == ["1", "2", "10"]


def test_rows_without_a_group_label_are_ignored():
    df = pd.DataFrame({"g": ["a", "a", None, "b", "b"], "v": [1.0, 2.0, 100.0, 3.0, 4.0]})
    assert describe_groups(df, "v", "g").n.tolist() == [2, 2]


def test_errors_name_the_input():
    df = pd.DataFrame({"g": ["a", "a", "b"], "v": [1.0, 2.0, np.nan]})
    found = r"found 2 group\(s\): 'a' \(2 values, 0 missing\), 'b' \(0 values, 1 missing\)"
    with pytest.raises(ValueError, match=found):
        one_way_anova(df, "v", "g")
    with pytest.raises(ValueError, match="found 1 group"):
        one_way_anova({"only": [1.0, 2.0]})
    with pytest.raises(KeyError, match="no column 'brisque'; the table has g, v"):
        describe_groups(df, "brisque", "g")
    with pytest.raises(ValueError, match="must be numeric"):
        describe_groups(pd.DataFrame({"g": ["a"], "v": ["x"]}), "v", "g")
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        describe_groups(df, "v", "g", confidence=95)
