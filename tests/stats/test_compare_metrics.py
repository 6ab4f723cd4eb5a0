"""compare_metrics: every metric column of a scores table compared across groups, columns and directions from
the metric registry, notes returned instead of printed (issue 9, item 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgap.quality import get_metric_info
from medgap.stats import ComparisonError, MetricComparison, compare_groups, compare_metrics, metric_columns


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    """brisque (a quality score), niqe with one group's values all missing, two imagestats columns, an
    unregistered column, and a brisque_msc feature column that is not a score."""
    rng = np.random.default_rng(3)
    n = 12
    df = pd.DataFrame({"group": np.repeat(["ct", "natural", "pocus"], n), "path": [f"f{i}.png" for i in range(3 * n)],
                       "brisque": rng.normal(30, 6, 3 * n), "niqe": rng.normal(5, 1, 3 * n),
                       "entropy": rng.normal(6, 0.5, 3 * n), "edge_density": rng.normal(0.05, 0.004, 3 * n),
                       "my_score": rng.normal(0, 1, 3 * n)})
    df.loc[df.group != "ct", "niqe"] = np.nan  # one group with values: skipped
    return df


def test_columns_and_directions_come_from_the_registry(scores):
    assert metric_columns(scores) == {"brisque": True, "niqe": True, "entropy": None, "edge_density": None}
    assert get_metric_info("brisque").lower_is_better is True


def test_compares_every_metric_column_like_compare_groups(scores, capsys):
    result = compare_metrics(scores)
    assert isinstance(result, MetricComparison)
    assert list(result) == ["brisque", "entropy", "edge_density"] and result.reference == "natural"
    assert result.groups == ["ct", "natural", "pocus"]
    assert result.lower_is_better == {"brisque": True, "entropy": None, "edge_density": None}
    one = compare_groups(scores, "brisque", "group", reference="natural")
    assert result["brisque"].anova == one.anova
    pd.testing.assert_frame_equal(result["brisque"].effects_vs_reference, one.effects_vs_reference)
    assert set(result.skipped) == {"niqe"} and "need at least 2 groups" in result.skipped["niqe"]
    assert any(n.startswith("skipped niqe: need at least 2 groups") for n in result.notes)
    assert capsys.readouterr() == ("", "")  # the library prints nothing
    assert result.to_dict()["brisque"]["lower_is_better"] is True


def test_named_columns_and_reference(scores):
    result = compare_metrics(scores, ["my_score", "brisque"], reference="ct", confidence=0.9)
    assert list(result) == ["my_score", "brisque"] and result.reference == "ct"
    assert result["my_score"].confidence == 0.9 and result["my_score"].reference == "ct"
    assert result.lower_is_better == {"my_score": None, "brisque": True} and not result.notes


def test_an_unknown_reference_is_an_error_naming_the_groups(scores):
    """Defect: a reference that is not a group silently fell back to the first group."""
    with pytest.raises(ComparisonError, match=r"reference group 'natral' is not one of the groups \('ct', "
                                              r"'natural', 'pocus'\); did you mean 'natural'\?"):
        compare_metrics(scores, reference="natral")
    with pytest.raises(ComparisonError, match=r"'xray' is not one of the groups \('ct', 'natural', 'pocus'\)$"):
        compare_metrics(scores, reference="xray")


def test_without_natural_the_first_group_is_the_reference_and_said_so(scores):
    result = compare_metrics(scores[scores.group != "natural"], ["brisque"])
    assert result.reference == "ct" and result["brisque"].reference == "ct"
    assert result.notes == ["no group 'natural': effect sizes are against 'ct', the first group "
                            "(choose another with reference=)"]


def test_bad_tables_and_options_raise(scores):
    with pytest.raises(ComparisonError, match="no column 'nope' in the table"):
        compare_metrics(scores, ["brisque", "nope"])
    with pytest.raises(ComparisonError, match="no 'modality' column to compare by"):
        compare_metrics(scores, group="modality")
    with pytest.raises(ComparisonError, match="no column of a registered metric"):
        compare_metrics(scores[["group", "my_score"]])
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        compare_metrics(scores, confidence=95)


def test_every_column_skipped_gives_an_empty_result_with_the_reasons():
    result = compare_metrics(pd.DataFrame({"group": ["a"] * 3, "brisque": [1.0, 2.0, 3.0]}))
    assert len(result) == 0 and list(result.skipped) == ["brisque"] and result.notes[-1].startswith("skipped brisque")
