"""medgap.evaluation's parts: read_run (schema, config, split), aggregate, align_runs, read_reader."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _eval_runs import CLASSES, write_run

from medgap.evaluation import EvaluationError, aggregate, align_runs, read_reader, read_run
from medgap.evaluation.schema import PREDICTIONS_COLUMNS, REQUIRED_COLUMNS, prob_column


def test_read_run_returns_the_held_out_rows_with_config_and_split(runs):
    run_dir, _, df, _ = runs
    run = read_run(run_dir)
    assert run.unit == "item" and run.split_name == "test" and run.classes == CLASSES and run.notes == ()
    assert list(run.predictions.columns) == [*PREDICTIONS_COLUMNS, *map(prob_column, CLASSES)]
    assert set(REQUIRED_COLUMNS) <= set(run.predictions.columns)
    assert list(run.predictions.item_id) == list(df.item_id)  # the validation rows are not held out
    assert run.config == {"backbone": "efficientnet_lite0", "folds": 3, "seed": 1}
    assert set(run.split.columns) == {"item_id", "group_id", "label", "fold", "role"}
    np.testing.assert_array_equal(run.y_true, df.label.map(CLASSES.index))
    np.testing.assert_allclose(run.prob, df[[prob_column(c) for c in CLASSES]].to_numpy())
    assert len(read_run(run_dir, "val").predictions) == 5


def test_item_ids_stay_text(tmp_path):
    run_dir = tmp_path / "run"
    df = write_run(run_dir, seed=1, skill=1.5)
    table = pd.read_csv(run_dir / "predictions.csv", dtype=str)
    table["item_id"] = [f"{i:03d}" for i in range(len(table))]
    table.to_csv(run_dir / "predictions.csv", index=False)
    (run_dir / "split.csv").unlink()
    assert read_run(run_dir).predictions.item_id[0] == "000" and len(df) > 0


def test_aggregate_by_patient_and_its_refusal(runs):
    run_dir, _, df, _ = runs
    run = read_run(run_dir)
    by_patient = aggregate(run, "patient")
    assert by_patient.unit == "patient" and len(by_patient.predictions) == df.group_id.nunique()
    assert by_patient.predictions["items"].sum() == len(df)
    np.testing.assert_allclose(by_patient.prob.sum(axis=1), 1)
    assert aggregate(run, "item") is run

    table = pd.read_csv(run_dir / "predictions.csv")
    first = table.group_id == df.group_id.iloc[0]
    other = next(c for c in CLASSES if c != table.label[first].iloc[0])
    table.loc[first.idxmax(), ["label", "path"]] = [other, "another_clip.mp4"]
    table.to_csv(run_dir / "predictions.csv", index=False)
    with pytest.raises(EvaluationError, match="has items of several classes"):
        aggregate(read_run(run_dir), "patient")


def test_align_runs_on_shared_items_in_either_class_order(runs):
    a_dir, b_dir, a_df, b_df = runs
    a = read_run(a_dir)
    pair = align_runs(a, read_run(b_dir))
    assert pair.items.size == len(b_df) < len(a_df) and "shared items" in pair.notes[0]
    with pytest.raises(EvaluationError, match="aggregate both runs to the same unit"):
        align_runs(a, aggregate(read_run(b_dir), "file"))
    (b_dir / "classes.json").write_text(json.dumps(CLASSES[::-1]))
    again = align_runs(a, read_run(b_dir))
    np.testing.assert_array_equal(again.pred_b, pair.pred_b)
    np.testing.assert_allclose(again.prob_b, pair.prob_b)

    (b_dir / "classes.json").write_text(json.dumps(["a", "b", "c"]))
    b = pd.read_csv(b_dir / "predictions.csv")
    b = b.rename(columns={f"prob_{c}": f"prob_{n}" for c, n in zip(CLASSES, "abc")})
    b[["label", "pred"]] = b[["label", "pred"]].replace(dict(zip(CLASSES, "abc")))
    b.to_csv(b_dir / "predictions.csv", index=False)
    with pytest.raises(EvaluationError, match="compare runs trained on the same classes"):
        align_runs(a, read_run(b_dir))


def test_read_reader_joins_and_refuses(runs, tmp_path):
    run_dir, _, df, _ = runs
    run = read_run(run_dir)
    reads = df[["item_id", "label"]].head(10).assign(pred="regular")
    reads.to_csv(tmp_path / "reads.csv", index=False)
    both = read_reader(tmp_path / "reads.csv", run)
    assert list(both.columns) == ["item_id", "label", "pred", "pred_reader"] and len(both) == 10
    reads.assign(label="covid").to_csv(tmp_path / "bad.csv", index=False)
    if (df.label.head(10) != "covid").any():
        with pytest.raises(EvaluationError, match="differs from predictions.csv"):
            read_reader(tmp_path / "bad.csv", run)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(EvaluationError, match="not a CSV table"):
        read_reader(tmp_path / "empty.csv", run)
