"""The unit of analysis (issue 10, item 1): frames are averaged per patient or file before the tests; the default
is patient with a patient column, else file; patients in two groups are said or refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medgap.stats import ComparisonError, UnitError, compare_metrics, paper_table, resolve_units


def _unit_means(frames: pd.DataFrame, key: str) -> dict[str, np.ndarray]:
    """Plain restatement: each unit's mean with pandas, then one array per group (sorted)."""
    means = frames.groupby(["group", key]).brisque.mean().reset_index()
    return {g: v.to_numpy() for g, v in means.groupby("group").brisque}


def test_one_long_clip_dominates_frames_but_not_files(clips):
    frame = compare_metrics(clips, "brisque", unit="frame", n_boot=200)["brisque"]
    file = compare_metrics(clips, "brisque", unit="file", n_boot=200)["brisque"]
    by_file = _unit_means(clips, "path")
    expected = stats.f_oneway(*by_file.values())
    assert file.anova.F == pytest.approx(expected.statistic, rel=1e-10)
    assert file.anova.p == pytest.approx(expected.pvalue, rel=1e-8)
    assert (file.anova.df_between, file.anova.df_within) == (2, 24 + 16 + 10 - 3)
    assert (frame.anova.df_between, frame.anova.df_within) == (2, len(clips) - 3)
    assert frame.anova.p < 1e-20 < file.anova.p  # the 60 correlated frames of one clip were 60 "observations"
    welch_p = stats.ttest_ind(by_file["pocus"], by_file["natural"], equal_var=False).pvalue
    row = file.vs_reference.set_index("group_b").loc["pocus"]
    assert row.p == pytest.approx(welch_p, rel=1e-10) and row.test == "welch"
    assert (row.n_units_b, row.n_frames_b, row.n_units_a, row.n_frames_a) == (10, 87, 24, 24)
    kw = stats.kruskal(*by_file.values())
    assert file.kruskal.H == pytest.approx(kw.statistic, rel=1e-10)
    described = file.describe.set_index("group")
    assert described.loc["pocus", ["n", "n_frames"]].tolist() == [10, 87]
    assert described.loc["pocus", "mean"] == pytest.approx(by_file["pocus"].mean(), rel=1e-12)


def test_patient_is_the_default_with_a_patient_column_and_file_without(clips):
    result = compare_metrics(clips, "brisque", n_boot=200)
    assert result.unit == "patient" and result.unit_column == "group_id" and result["brisque"].unit == "patient"
    by_patient = _unit_means(clips, "group_id")
    assert result["brisque"].anova.F == pytest.approx(stats.f_oneway(*by_patient.values()).statistic, rel=1e-10)
    assert result.counts.set_index("group").loc["pocus"].tolist() == [6, 87]
    table = paper_table(result["brisque"]).set_index("group")
    assert table.loc["pocus", "n patients (frames)"] == "6 (87)"
    no_patients = compare_metrics(clips.drop(columns="group_id"), "brisque", n_boot=200)
    assert no_patients.unit == "file" and no_patients.unit_column == "path"
    named = compare_metrics(clips.rename(columns={"group_id": "subject"}), "brisque", unit_column="subject",
                            n_boot=200)
    assert named.unit == "patient" and named["brisque"].anova == result["brisque"].anova


def test_without_path_or_patient_every_row_is_a_unit_and_said_so():
    df = pd.DataFrame({"group": ["natural"] * 4 + ["ct"] * 4, "brisque": np.arange(8.0)})
    result = compare_metrics(df, n_boot=100)
    assert result.unit == "frame" and "every row is one unit of analysis" in result.notes[0]
    assert paper_table(result["brisque"]).columns[1] == "n"
    with pytest.raises(UnitError, match="unit 'file' needs a 'path' column"):
        compare_metrics(df, unit="file")
    with pytest.raises(UnitError, match="unit 'patient' needs a patient column"):
        compare_metrics(df, unit="patient")
    with pytest.raises(ComparisonError, match="unit 'clip' is not one of patient, file, frame"):
        compare_metrics(df, unit="clip")


def test_rows_without_a_patient_id_fall_back_to_their_file(clips):
    df = clips.copy()
    df.loc[df.group == "natural", "group_id"] = np.nan
    units = resolve_units(df)
    assert units.unit == "patient"
    assert units.notes == ("24 row(s) have no patient id in 'group_id' (natural: 24): its file is its unit",)
    assert units.ids[df.group == "natural"].nunique() == 24


def test_a_patient_in_two_groups_is_split_with_a_note_or_refused(clips):
    df = clips.copy()
    df.loc[df.path == "ct/0_0.dcm", "group_id"] = "u1"  # patient u1 now has ct and pocus rows
    result = compare_metrics(df, "brisque", n_boot=100)
    assert any("1 patient(s) have rows in more than one group: 'u1 (ct, pocus)'" in n for n in result.notes)
    assert result.counts.set_index("group").loc[["ct", "pocus"], "n_units"].tolist() == [9, 6]
    with pytest.raises(UnitError, match=r"1 patient\(s\) have rows in more than one group.*'u1 \(ct, pocus\)'"):
        compare_metrics(df, "brisque", shared_units="error")


def test_lines_for_the_cli_and_report_say_the_unit_model_and_family(clips):
    from medgap.stats import mixed_model_line, reference_tests_line, unit_line

    c = compare_metrics(clips, "brisque", unit="file", test="mixed", n_boot=100)["brisque"]
    assert unit_line(c) == ("Unit of analysis: file (n = 50 files, 143 frames); each file's frames are averaged "
                            "before the tests and effect sizes.")
    assert mixed_model_line(c).startswith("Mixed model (brisque ~ group + (1 | file), REML; 143 frames in 50 files): "
                                          "ICC = 0.9")
    v = c.vs_reference.set_index("group_b")
    assert (v.p == c.mixed.contrasts.set_index("group").p).all() and (v.test == "mixed").all()
    assert reference_tests_line(c).startswith("mixed-model z vs natural, Holm-adjusted over 2 comparison(s) "
                                              "(primary: brisque, mixed vs natural): ct P ")


def test_comparison_options_declare_the_choices_once(clips):
    from medgap._options import ConfigValueError, check_choices
    from medgap.stats import ComparisonOptions

    options = ComparisonOptions(unit="file", bootstrap=100, seed=2)
    check_choices(options)
    assert compare_metrics(clips, "brisque", **options.kwargs()).unit == "file"
    with pytest.raises(ConfigValueError, match="--unit 'files' is not one of patient, file, frame. Did you mean 'file'"):
        check_choices(ComparisonOptions(unit="files"))
