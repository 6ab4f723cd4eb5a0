"""`medgap evaluate` on synthetic run directories shaped like `medgap finetune`'s: results against the
library and the reference tests, the --against / --reader options, usage errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from typer.testing import CliRunner

from medgap.cli import app
from medgap.cli.evaluate import EvaluateConfig
from medgap.stats import classification_metrics_ci

from _eval_runs import CLASSES, N_BOOT, write_run, write_split

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, ["evaluate", *args, "--bootstrap", str(N_BOOT)])


def test_evaluate_writes_the_report_files_and_matches_the_library(runs):
    run, _, df, _ = runs
    r = _invoke(str(run))
    assert r.exit_code == 0, r.output
    for name in ("evaluation.json", "evaluation_metrics.csv", "confusion_matrix.png", "roc_curves.png"):
        assert (run / name).stat().st_size > 0, name
    assert "sensitivity" in r.output and "95% CI" in r.output and "accuracy per fold" in r.output
    assert "pooled held-out predictions of 3 folds" in r.output

    doc = json.loads((run / "evaluation.json").read_text())
    assert doc["data"]["items"] == len(df) and doc["data"]["patients"] == df.group_id.nunique()  # val rows skipped
    idx = {c: i for i, c in enumerate(CLASSES)}
    ref = classification_metrics_ci(df.label.map(idx), df.pred.map(idx), CLASSES, df.group_id,
                                    df[[f"prob_{c}" for c in CLASSES]].to_numpy(), n_boot=N_BOOT, seed=0)
    got = pd.read_csv(run / "evaluation_metrics.csv")
    pd.testing.assert_frame_equal(got[ref.columns], ref, check_dtype=False, rtol=1e-12)
    assert doc["config"]["bootstrap"] == N_BOOT and doc["config"]["split"] == "test"
    per_fold = df.assign(ok=df.label == df.pred).groupby("fold").ok.mean()
    assert [f["accuracy"] for f in doc["per_fold"]] == pytest.approx(per_fold.tolist(), rel=1e-12)
    cm = pd.crosstab(df.label, df.pred).reindex(index=CLASSES, columns=CLASSES, fill_value=0).to_numpy()
    assert doc["confusion_matrix"]["counts"] == cm.tolist()
    assert any("not independent" in n for n in doc["notes"])


def test_aggregate_file_is_soft_voting_per_video(runs):
    """--aggregate file: one row per video with the mean of its frames' probabilities, checked against a pandas
    groupby; the per-item outputs stay as they were."""
    run, _, df, _ = runs
    assert _invoke(str(run)).exit_code == 0
    item_metrics = (run / "evaluation_metrics.csv").read_bytes()
    r = _invoke(str(run), "--aggregate", "file")
    assert r.exit_code == 0, r.output
    prob_cols = [f"prob_{c}" for c in CLASSES]
    per_video = df.groupby("path", sort=False).agg({**{c: "mean" for c in prob_cols}, "label": "first",
                                                    "group_id": "first"})
    idx = {c: i for i, c in enumerate(CLASSES)}
    prob = per_video[prob_cols].to_numpy()
    ref = classification_metrics_ci(per_video.label.map(idx), prob.argmax(1), CLASSES, per_video.group_id, prob,
                                    n_boot=N_BOOT, seed=0)
    got = pd.read_csv(run / "evaluation_file_metrics.csv")
    pd.testing.assert_frame_equal(got[ref.columns], ref, check_dtype=False, rtol=1e-12)
    assert json.loads((run / "evaluation_file.json").read_text())["data"]["items"] == len(per_video)
    assert (run / "confusion_matrix_file.png").exists()
    assert (run / "evaluation_metrics.csv").read_bytes() == item_metrics


def test_aggregate_patient_refuses_a_patient_with_two_classes(runs):
    run, _, df, _ = runs
    table = pd.read_csv(run / "predictions.csv")
    first = table.group_id == df.group_id.iloc[0]
    other = next(c for c in CLASSES if c != table.label[first].iloc[0])
    table.loc[first.idxmax(), ["label", "path"]] = [other, "another_clip.mp4"]  # a second clip, another class
    table.to_csv(run / "predictions.csv", index=False)
    r = _invoke(str(run), "--aggregate", "patient")
    assert r.exit_code == 2 and "has items of several classes" in r.output and "--aggregate file" in r.output
    assert _invoke(str(run), "--aggregate", "file").exit_code == 0


def test_config_runs_without_the_cli(runs):
    run, *_ = runs
    ev = EvaluateConfig(run, bootstrap=N_BOOT, seed=3).run()
    assert ev.metrics.boot_valid.max() == N_BOOT and len(ev.per_fold) == 3
    assert {p.name for p in ev.outputs} >= {"evaluation.json", "roc_curves.png"}


def test_against_another_run_on_the_shared_items(runs):
    run, other, a, b = runs
    r = _invoke(str(run), "--against", str(other))
    assert r.exit_code == 0, r.output
    doc = json.loads((run / "evaluation.json").read_text())
    both = a.merge(b, on="item_id", suffixes=("", "_b"))
    assert len(both) < len(a)  # scratch lacks 4 patients: compared on the shared items, said so
    assert any("shared items" in n for n in doc["notes"])
    ok_a, ok_b = both.label == both.pred, both.label == both.pred_b
    table = [[np.sum(ok_a & ok_b), np.sum(ok_a & ~ok_b)], [np.sum(~ok_a & ok_b), np.sum(~ok_a & ~ok_b)]]
    ref = mcnemar(table, exact=table[0][1] + table[1][0] < 25, correction=True)
    tests = {t["comparison"]: t for t in doc["tests"]}
    assert tests["vs scratch"]["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert {f"AUC {c} vs scratch" for c in CLASSES} <= tests.keys()
    assert tests["AUC covid vs scratch"]["n_positive"] == int((both.label == "covid").sum())
    diffs = pd.read_csv(run / "evaluation_differences.csv").set_index(["class", "metric"])
    assert diffs.loc[("overall", "accuracy"), "difference"] == pytest.approx(ok_a.mean() - ok_b.mean(), rel=1e-12)
    assert "DeLong" in r.output and "McNemar" in r.output


def test_against_with_no_shared_items_is_a_usage_error(runs, tmp_path):
    run, *_ = runs
    other = tmp_path / "elsewhere"
    df = write_run(other, seed=3, skill=1.0)
    renamed = df.assign(item_id="other/" + df.item_id)
    renamed.to_csv(other / "predictions.csv", index=False)
    write_split(other, renamed)  # a consistent run of other items, not a damaged one
    r = _invoke(str(run), "--against", str(other))
    assert r.exit_code == 2
    assert "share no item_id" in r.output and "same data" in r.output


def test_reader_as_counts_and_as_a_file(runs, tmp_path):
    run, _, df, _ = runs
    r = _invoke(str(run), "--reader-correct", "71", "--reader-total", "100")
    assert r.exit_code == 0, r.output
    test = json.loads((run / "evaluation.json").read_text())["tests"][0]
    k = int((df.label == df.pred).sum())
    chi2, p, _, expected = stats.chi2_contingency([[k, len(df) - k], [71, 29]], correction=True)
    assert (expected >= 5).all() and test["p"] == pytest.approx(p, rel=1e-12)
    assert "reader" in r.output

    rng = np.random.default_rng(4)
    reads = df[["item_id", "label"]].sample(frac=0.7, random_state=0)
    reads["pred"] = np.where(rng.random(len(reads)) < 0.8, reads.label, "regular")
    reads.to_csv(tmp_path / "reader.csv", index=False)
    r = _invoke(str(run), "--reader", str(tmp_path / "reader.csv"))
    assert r.exit_code == 0, r.output
    tests = json.loads((run / "evaluation.json").read_text())["tests"]
    assert [t["comparison"] for t in tests] == ["model vs reader", "model vs reader, paired"]
    both = reads.merge(df, on="item_id", suffixes=("_reader", ""))
    mk, rk = int((both.pred == both.label).sum()), int((both.pred_reader == both.label).sum())
    ref = stats.chi2_contingency([[mk, len(both) - mk], [rk, len(both) - rk]], correction=True)
    assert tests[0]["table"] == [[mk, len(both) - mk], [rk, len(both) - rk]]
    assert tests[0]["p"] == pytest.approx(ref[1], rel=1e-12)

    reads.assign(pred="effusion").to_csv(tmp_path / "bad.csv", index=False)
    r = _invoke(str(run), "--reader", str(tmp_path / "bad.csv"))
    assert r.exit_code == 2 and "effusion" in r.output


@pytest.mark.parametrize("args, message", [
    (["--reader-correct", "5"], "go together"),
    (["--reader", "x.csv", "--reader-correct", "5", "--reader-total", "9"], "not both"),
    (["--reader-correct", "12", "--reader-total", "9"], "between 0 and --reader-total"),
    (["--split", "train"], "split == 'train'"),
])
def test_usage_errors_exit_2_with_the_fix(runs, args, message):
    run, *_ = runs
    r = _invoke(str(run), *args)
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_missing_and_broken_run_directories(runs, tmp_path):
    run, *_ = runs
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _invoke(str(empty))
    assert r.exit_code == 2 and "predictions.csv" in r.output and "medgap finetune" in r.output
    df = pd.read_csv(run / "predictions.csv")
    df.loc[3, "label"] = "effusion"
    df.to_csv(run / "predictions.csv", index=False)
    r = _invoke(str(run))
    assert r.exit_code == 2 and "effusion" in r.output and "classes.json" in r.output


def test_help_explains_the_options():
    r = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "160"})
    assert r.exit_code == 0
    for text in ("--against", "--reader-correct", "--bootstrap", "patients", "medgap evaluate runs/lite0"):
        assert text in r.output, text


def test_against_aligns_classes_listed_in_another_order(runs):
    run, other, *_ = runs
    assert _invoke(str(run), "--against", str(other)).exit_code == 0
    before = json.loads((run / "evaluation.json").read_text())["tests"]
    (other / "classes.json").write_text(json.dumps(CLASSES[::-1]))  # prob_<class> columns are found by name
    r = _invoke(str(run), "--against", str(other))
    assert r.exit_code == 0, r.output
    assert json.loads((run / "evaluation.json").read_text())["tests"] == before


def _flat(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize("cut", ["line", "mid-number", "mid-row"])
def test_a_truncated_predictions_csv_is_refused(runs, cut):
    """predictions.csv cut short (issue 8, defect 13): at a line boundary only split.csv tells; inside a number the
    row's probabilities no longer sum to 1; inside a row its last columns are empty."""
    run, _, df, _ = runs
    write_split(run, df)
    assert _invoke(str(run)).exit_code == 0
    text = (run / "predictions.csv").read_text()
    lines = text.splitlines(keepends=True)
    half = len(lines) // 2
    row = lines[half]
    if cut == "line":
        short = "".join(lines[:half])
    elif cut == "mid-number":  # the last probability loses its digits: "0.2345678" -> "0."
        short = "".join(lines[:half]) + row[: row.rindex(",") + 3]
    else:
        short = "".join(lines[:half]) + row[: len(row) // 2]
    (run / "predictions.csv").write_text(short)
    r = _invoke(str(run))
    assert r.exit_code == 2, r.output
    out = _flat(r.output)
    expected = {"line": "cut short", "mid-number": "do not sum to 1", "mid-row": "predictions.csv: column"}[cut]
    assert expected in out, out


def test_a_malformed_probability_is_refused_naming_the_value(runs):
    run, _, df, _ = runs
    bad = pd.read_csv(run / "predictions.csv", dtype=str)
    bad.loc[2, "prob_covid"] = "0.3x"
    bad.to_csv(run / "predictions.csv", index=False)
    r = _invoke(str(run))
    assert r.exit_code == 2, r.output
    assert "'0.3x' in prob_covid" in _flat(r.output)

    bad.loc[2, "prob_covid"] = "0.9"  # a number, but the row no longer sums to 1
    bad.to_csv(run / "predictions.csv", index=False)
    r = _invoke(str(run))
    assert r.exit_code == 2 and "do not sum to 1" in _flat(r.output), r.output


def test_predictions_from_another_run_than_split_csv_are_refused(runs):
    run, _, df, _ = runs
    write_split(run, df.iloc[: len(df) // 2])
    r = _invoke(str(run))
    assert r.exit_code == 2 and "never held out" in _flat(r.output), r.output


def test_names_with_markup_print_as_they_are(tmp_path):
    """A run directory and a class named like rich markup print verbatim (issue 8, defect 11)."""
    run = tmp_path / "run[old]"
    df = write_run(run, seed=1, skill=1.5)
    names = {"covid": "[covid]", "pneumonia": "pneumonia[/]", "regular": "regular"}
    df = pd.read_csv(run / "predictions.csv", dtype=str)
    df[["label", "pred"]] = df[["label", "pred"]].replace(names)
    df.rename(columns={f"prob_{a}": f"prob_{b}" for a, b in names.items()}).to_csv(run / "predictions.csv",
                                                                                    index=False)
    (run / "classes.json").write_text(json.dumps(list(names.values())))
    r = runner.invoke(app, ["evaluate", str(run), "--bootstrap", "100"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for text in ("run[old]", "[covid]", "pneumonia[/]"):
        assert text in r.output, text


def test_what_was_assumed_is_printed_and_recorded(runs):
    """The notes of medgap.evaluation (classes from the prob_ columns, the unit of analysis) reach the terminal
    and evaluation.json."""
    run, *_ = runs
    (run / "classes.json").unlink()
    r = runner.invoke(app, ["evaluate", str(run), "--bootstrap", "100", "--aggregate", "file"],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    out = _flat(r.output)
    assert "classes taken from the prob_ columns" in out
    assert "unit of analysis: file" in out and "resample patients" in out
    doc = json.loads((run / "evaluation_file.json").read_text())
    assert any("classes taken from the prob_ columns" in n for n in doc["notes"])
    assert doc["unit_of_analysis"]["unit"] == "file"
