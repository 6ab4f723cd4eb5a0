"""evaluate_task_run: regression (MAE, RMSE, Spearman) and multi-label (AUC per finding) runs with patient-
bootstrap CIs, checked against SciPy/scikit-learn and an explicit restatement of the patient resampling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from medgap.evaluation import EvaluationError, evaluate_run, evaluate_task_run


def _write(run, task, table, outputs):
    run.mkdir(parents=True)
    table.to_csv(run / "predictions.csv", index=False)
    (run / "config.json").write_text(json.dumps({"task": task, "folds": 2}))
    (run / "classes.json").write_text(json.dumps(outputs))


def _common(n_patients=15, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, n_patients)
    patient = np.repeat(np.arange(n_patients), sizes)
    return rng, patient, pd.DataFrame({"item_id": [f"f{i}.png" for i in range(patient.size)],
                                       "path": [f"f{i}.png" for i in range(patient.size)], "frame": 0,
                                       "group_id": [f"p{p:02d}" for p in patient], "fold": patient % 2,
                                       "split": "test"})


def test_regression_metrics_and_their_patient_bootstrap(tmp_path):
    rng, patient, df = _common()
    target = rng.integers(0, 4, patient.size).astype(float)
    pred = target + rng.normal(0, 0.8, patient.size) + rng.normal(0, 0.5, patient.max() + 1)[patient]
    df = df.assign(label=target.astype(int).astype(str), pred=pred, target=target)
    _write(tmp_path / "run", "regress", df, ["severity"])
    ev = evaluate_task_run(tmp_path / "run", bootstrap=300, seed=4)
    m = ev.metrics.set_index("metric")
    assert ev.task == "regress" and set(m.finding) == {"severity"}
    assert m.loc["mae", "value"] == pytest.approx(np.abs(pred - target).mean(), rel=1e-12)
    assert m.loc["rmse", "value"] == pytest.approx(np.sqrt(((pred - target) ** 2).mean()), rel=1e-12)
    assert m.loc["spearman", "value"] == pytest.approx(spearmanr(pred, target).statistic, rel=1e-12)
    # the same resamples restated: draw patients (sorted ids) with numpy's generator, duplicate their rows
    ids = np.array(sorted(df.group_id.unique()))
    draws = np.random.default_rng(4).integers(0, ids.size, size=(300, ids.size))
    maes = []
    for row in draws:
        sample = pd.concat([df[df.group_id == ids[g]] for g in row])
        maes.append(np.abs(sample.pred - sample.target).mean())
    lo, hi = np.quantile(maes, [0.025, 0.975])
    assert (m.loc["mae", "ci_low"], m.loc["mae", "ci_high"]) == pytest.approx((lo, hi), rel=1e-10)
    assert m.loc["mae", "boot_valid"] == 300
    with pytest.raises(EvaluationError, match="evaluate_task_run"):
        evaluate_run(tmp_path / "run", bootstrap=100)


def test_multilabel_auc_per_finding_over_known_items(tmp_path):
    rng, patient, df = _common(20, seed=1)
    cols = {}
    for f in ("a_lines", "b_lines"):
        y = rng.integers(0, 2, patient.size).astype(float)
        y[rng.random(patient.size) < 0.2] = np.nan  # not known
        cols[f"label_{f}"] = y
        cols[f"prob_{f}"] = np.clip(0.5 + 0.3 * (np.nan_to_num(y, nan=0.5) - 0.5) + rng.normal(0, 0.2, y.size), 0, 1)
    df = df.assign(label="-", pred="-", **cols)
    _write(tmp_path / "run", "multilabel", df, ["a_lines", "b_lines"])
    ev = evaluate_task_run(tmp_path / "run", bootstrap=200)
    for f in ("a_lines", "b_lines"):
        row = ev.metrics[ev.metrics.finding == f].iloc[0]
        known = ~np.isnan(cols[f"label_{f}"])
        assert row.metric == "auc" and row.n == known.sum()
        assert row.value == pytest.approx(roc_auc_score(cols[f"label_{f}"][known], cols[f"prob_{f}"][known]),
                                          rel=1e-12)
        assert row.ci_low <= row.value <= row.ci_high


def test_a_classification_run_is_sent_to_evaluate_run(runs):
    run, *_ = runs
    with pytest.raises(EvaluationError, match="evaluate it with evaluate_run"):
        evaluate_task_run(run, bootstrap=100)
