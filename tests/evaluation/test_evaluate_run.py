"""medgap.evaluation.evaluate_run without the command line: the same numbers as `medgap evaluate` wrote (run in a
subprocess, so medgap.cli is never imported here), notes returned instead of printed, library errors for a bad
run or option, and the files of medgap.report.evaluation."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _eval_runs import CLASSES, N_BOOT, write_run

from medgap.evaluation import Evaluation, EvaluationError, EvaluationOptions, evaluate_run
from medgap.report.evaluation import evaluation_document, write_evaluation


def _cli(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "medgap", "evaluate", *args, "--bootstrap", str(N_BOOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def _json(value: object) -> object:
    return json.loads(json.dumps(value))


def test_the_numbers_equal_what_the_command_wrote(runs):
    """evaluate_run and `medgap evaluate` agree on every table, test and note, with --against and per file."""
    run, other, *_ = runs
    _cli(str(run), "--against", str(other), "--aggregate", "file")
    ev = evaluate_run(run, against=other, aggregate="file", bootstrap=N_BOOT)
    written = pd.read_csv(run / "evaluation_file_metrics.csv")
    pd.testing.assert_frame_equal(written, ev.metrics, check_dtype=False, rtol=1e-12)
    differences = pd.read_csv(run / "evaluation_file_differences.csv")
    pd.testing.assert_frame_equal(differences, ev.differences, check_dtype=False, rtol=1e-12)
    doc = json.loads((run / "evaluation_file.json").read_text())
    assert doc["confusion_matrix"]["counts"] == ev.confusion.tolist()
    assert doc["per_fold"] == _json(ev.per_fold.to_dict("records"))
    assert [t["comparison"] for t in doc["tests"]] == [what for what, _ in ev.tests]
    assert [t["p"] for t in doc["tests"]] == pytest.approx([r.p for _, r in ev.tests], rel=1e-12)
    assert doc["notes"] == ev.notes and any("shared items" in n for n in ev.notes)
    assert doc["data"]["items"] == ev.summary()["items"] == ev.run.predictions.item_id.nunique()
    assert doc == _json(evaluation_document(ev))  # and everything else in the file, options included


def test_the_unit_of_analysis_is_said(runs):
    run, _, df, _ = runs
    for unit, n in (("item", len(df)), ("file", df.path.nunique()), ("patient", df.group_id.nunique())):
        ev = evaluate_run(run, aggregate=unit, bootstrap=N_BOOT)
        assert ev.unit == unit and len(ev.run.predictions) == n == ev.summary()["items"]
        assert ev.unit_of_analysis.startswith(f"unit of analysis: {unit}")
        assert f"resample patients (group_id, {df.group_id.nunique()} patients)" in ev.unit_of_analysis
        assert evaluation_document(ev)["unit_of_analysis"]["unit"] == unit
    per_video = df.groupby("path", sort=False)[[f"prob_{c}" for c in CLASSES]].mean()
    ev = evaluate_run(run, aggregate="file", bootstrap=N_BOOT)
    np.testing.assert_allclose(ev.run.prob, per_video.to_numpy(), rtol=1e-12)  # soft voting
    assert list(ev.run.predictions.item_id) == list(per_video.index)
    assert set(ev.overall["class"]) == {"overall"} and set(ev.per_class["class"]) == set(CLASSES)


def test_notes_are_returned_not_printed(runs, tmp_path, capsys):
    """A run without classes.json and with patients missing: what was assumed comes back in ev.notes."""
    run, other, df, _ = runs
    (run / "classes.json").unlink()
    table = pd.read_csv(run / "predictions.csv", dtype=str)
    table.loc[table.index[:3], "group_id"] = np.nan
    table.to_csv(run / "predictions.csv", index=False)
    ev = evaluate_run(run, against=other, reader_correct=71, reader_total=100, bootstrap=N_BOOT)
    assert capsys.readouterr() == ("", "")
    text = "\n".join(ev.notes)
    for expected in ("classes taken from the prob_ columns", "3 item(s) without group_id", "shared items",
                     "not independent", "reader given as counts"):
        assert expected in text, expected
    assert ev.run.classes == CLASSES
    assert ev.run.groups[0] == f"item:{table.item_id[0]}"


def test_a_bad_run_raises_evaluation_error_naming_the_file(runs, tmp_path):
    run, _, df, _ = runs
    with pytest.raises(EvaluationError, match="no such run directory"):
        evaluate_run(tmp_path / "nowhere")
    lines = (run / "predictions.csv").read_text().splitlines(keepends=True)
    (run / "predictions.csv").write_text("".join(lines[: len(lines) // 2]))  # cut at a line: only split.csv tells
    with pytest.raises(EvaluationError, match="cut short") as e:
        evaluate_run(run, bootstrap=N_BOOT)
    assert str(run / "predictions.csv") in str(e.value) and "medgap finetune" in str(e.value)
    assert isinstance(e.value, ValueError)

    write_run(run, seed=1, skill=1.5)
    bad = pd.read_csv(run / "predictions.csv", dtype=str)
    bad.loc[2, "prob_covid"] = "0.3x"
    bad.to_csv(run / "predictions.csv", index=False)
    with pytest.raises(EvaluationError, match=r"'0.3x' in prob_covid"):
        evaluate_run(run, bootstrap=N_BOOT)


@pytest.mark.parametrize("options, message", [
    ({"reader_correct": 5}, "go together"),
    ({"reader": "x.csv", "reader_correct": 5, "reader_total": 9}, "not both"),
    ({"reader_correct": 12, "reader_total": 9}, "between 0 and --reader-total"),
    ({"aggregate": "video"}, "not one of item, file, patient"),
    ({"bootstrap": 10}, "too few resamples"),
    ({"bootstrap": 200.5}, "must be an integer"),
    ({"split": "train"}, "split == 'train'"),
])
def test_bad_options_raise_evaluation_error(runs, options, message):
    run, *_ = runs
    with pytest.raises(EvaluationError, match=message):
        evaluate_run(run, **options)


def test_numpy_integers_are_accepted(runs):
    run, *_ = runs
    ev = evaluate_run(run, bootstrap=np.int64(N_BOOT), reader_correct=np.int32(7), reader_total=np.int64(10))
    assert ev.metrics.boot_valid.max() == N_BOOT and ev.options.bootstrap == N_BOOT


def test_the_options_are_declared_once():
    """evaluate_run's keywords are EvaluationOptions' fields (the command's config is that dataclass)."""
    params = inspect.signature(evaluate_run).parameters
    assert list(params) == [f.name for f in fields(EvaluationOptions)]
    defaults = EvaluationOptions(Path("."))
    assert all(params[f.name].default == getattr(defaults, f.name) for f in fields(EvaluationOptions)[1:])


def test_the_library_imports_neither_the_cli_nor_torch():
    code = ("import sys, medgap.evaluation, medgap.report.evaluation; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('medgap.cli')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_write_evaluation_names_and_content(runs, tmp_path):
    run, other, *_ = runs
    ev = evaluate_run(run, against=other, bootstrap=N_BOOT)
    assert isinstance(ev, Evaluation) and ev.outputs == []
    out = tmp_path / "report"
    out.mkdir()
    paths = write_evaluation(ev, out)
    assert [p.name for p in paths] == ["evaluation.json", "evaluation_metrics.csv", "evaluation_differences.csv",
                                       "confusion_matrix.png", "roc_curves.png"]
    assert ev.outputs == paths and all(p.stat().st_size > 0 for p in paths)
    doc = json.loads(paths[0].read_text())
    assert doc["config"]["against"] == str(other) and doc["against"]["run_dir"] == str(other)
    assert all(v is None or np.isfinite(v) for m in doc["metrics"] for v in m.values() if not isinstance(v, str))
    ev = evaluate_run(run, bootstrap=N_BOOT)  # without --against: the stale differences file goes
    write_evaluation(ev, out)
    assert not (out / "evaluation_differences.csv").exists()
