"""Evaluating ``regress`` and ``multilabel`` runs (``medgap finetune --task ...``): their held-out metrics with
percentile CIs from a patient bootstrap. Classification runs go through :func:`medgap.evaluation.evaluate_run`.

    >>> from medgap.evaluation import evaluate_task_run
    >>> ev = evaluate_task_run("runs/severity")                      # doctest: +SKIP
    >>> ev.metrics                                                    # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medgap.data.predictions import (
    CONFIG_FILE,
    HELD_OUT,
    PREDICTIONS_FILE,
    TARGET_COLUMN,
    label_column,
    prob_column,
    read_predictions,
    run_task,
)
from medgap.evaluation.errors import EvaluationError

TASK_METHODS = (
    "CIs: percentile bootstrap resampling patients (group_id) with replacement, all items of a drawn patient "
    "together (a patient drawn twice counts twice); a CI is conditional on the metric being defined when "
    "boot_valid < n_boot. regress: MAE and RMSE of pred - target, Spearman's rho (average ranks for ties). "
    "multilabel: ROC AUC per finding over the items where the finding is known (Mann-Whitney, ties count half)."
)


@dataclass
class TaskEvaluation:
    """What :func:`evaluate_task_run` computed: ``metrics`` has one row per (finding, metric) with value,
    ci_low, ci_high, boot_valid and n (items it rests on); ``finding`` is the target's name for ``regress``."""

    run_dir: Path
    task: str
    metrics: pd.DataFrame
    items: int
    patients: int
    notes: list[str] = field(default_factory=list)

    @property
    def unit_of_analysis(self) -> str:
        return (f"unit of analysis: item (each prediction as made), {self.items} items; the bootstrap CIs "
                f"resample patients (group_id, {self.patients} patients)")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import rankdata

    pos, neg = y == 1, y == 0
    if not pos.any() or not neg.any():
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum()))


def _statistics(task: str, table: pd.DataFrame, outputs: list[str]) -> dict[tuple[str, str], callable]:
    """(finding, metric) -> function of item indices (a resample, duplicates allowed) -> value."""
    if task == "regress":
        t = table[TARGET_COLUMN].to_numpy(np.float64)
        p = table["pred"].to_numpy(np.float64)
        name = outputs[0] if outputs else TARGET_COLUMN
        return {(name, "mae"): lambda i: float(np.abs(p[i] - t[i]).mean()),
                (name, "rmse"): lambda i: float(np.sqrt(((p[i] - t[i]) ** 2).mean())),
                (name, "spearman"): lambda i: _spearman(p[i], t[i])}
    stats = {}
    for f in outputs:
        y = table[label_column(f)].to_numpy(np.float64)
        s = table[prob_column(f)].to_numpy(np.float64)
        stats[(f, "auc")] = (lambda y, s: lambda i: _auc(y[i][~np.isnan(y[i])], s[i][~np.isnan(y[i])]))(y, s)
    return stats


def evaluate_task_run(run_dir: str | Path, *, split: str = HELD_OUT, bootstrap: int = 2000, seed: int = 0,
                      confidence: float = 0.95) -> TaskEvaluation:
    """The held-out metrics of a ``regress`` run (MAE, RMSE, Spearman) or a ``multilabel`` run (AUC per
    finding), items as predicted, each with a patient-bootstrap percentile CI.

    Raises:
        EvaluationError: no such run, a classification run (use evaluate_run), or a damaged predictions.csv.
    """
    from medgap.stats._checks import check_confidence
    from medgap.stats.bootstrap import group_index, patient_resample_counts, percentile_interval

    run_dir = Path(run_dir)
    pred_file, config_file = run_dir / PREDICTIONS_FILE, run_dir / CONFIG_FILE
    if not pred_file.exists() or not config_file.exists():
        raise EvaluationError(f"{run_dir}: no {PREDICTIONS_FILE} and {CONFIG_FILE}; pass the --out folder of a "
                              f"finished `medgap finetune --task regress|multilabel` run")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EvaluationError(f"{config_file}: not valid JSON ({e}); it records the run's --task") from None
    task = run_task(config if isinstance(config, dict) else None)
    if task not in ("regress", "multilabel"):
        raise EvaluationError(f"{run_dir}: a --task {task} run; evaluate it with evaluate_run (medgap evaluate)")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 100:
        raise EvaluationError(f"bootstrap={bootstrap!r}: use at least 100 resamples (2000 is the default)")
    try:
        check_confidence(confidence)
    except ValueError as e:
        raise EvaluationError(f"confidence: {e}") from None
    try:
        table = read_predictions(pred_file, task)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise EvaluationError(f"{pred_file}: damaged or not a CSV table ({type(e).__name__}); rerun the run's "
                              f"`medgap finetune` command to rewrite it") from None
    if "split" in table.columns:
        table = table[table["split"].astype(str) == split].reset_index(drop=True)
    if table.empty:
        raise EvaluationError(f"{pred_file}: no rows with split == {split!r}")
    outputs = json.loads((run_dir / "classes.json").read_text()) if (run_dir / "classes.json").exists() else []
    if task == "multilabel" and not outputs:
        raise EvaluationError(f"{run_dir / 'classes.json'}: missing; it names the findings")
    needed = [TARGET_COLUMN, "pred"] if task == "regress" else [c for f in outputs
                                                                 for c in (label_column(f), prob_column(f))]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise EvaluationError(f"{pred_file}: no column {', '.join(missing)}; a {task} run's predictions.csv has "
                              f"{', '.join(needed)} (see medgap.data.predictions)")
    groups = table["group_id"].fillna("").astype(str).to_numpy()
    groups = np.where(groups == "", "item:" + table["item_id"].astype(str).to_numpy(), groups)
    stats = _statistics(task, table, outputs)
    names, inverse = group_index(groups)
    members = [np.flatnonzero(inverse == g) for g in range(names.size)]
    counts = patient_resample_counts(names.size, bootstrap, np.random.default_rng(seed))
    draws = np.full((bootstrap, len(stats)), np.nan)
    everyone = np.arange(len(table))
    for b in range(bootstrap):
        idx = np.concatenate([np.repeat(members[g], c) for g, c in enumerate(counts[b]) if c])
        for j, fn in enumerate(stats.values()):
            draws[b, j] = fn(idx)
    low, high, valid = percentile_interval(draws, confidence)
    rows = []
    for j, ((finding, metric), fn) in enumerate(stats.items()):
        n = int(len(table)) if task == "regress" else int(table[label_column(finding)].notna().sum())
        rows.append({"finding": finding, "metric": metric, "value": fn(everyone), "ci_low": low[j],
                     "ci_high": high[j], "boot_valid": int(valid[j]), "n": n})
    notes = [TASK_METHODS]
    per_patient = pd.Series(groups).value_counts()
    if per_patient.max() > 1:
        notes.append(f"{len(table)} items from {per_patient.size} patients (up to {per_patient.max()} per "
                     f"patient): items of a patient are not independent; the CIs resample patients")
    return TaskEvaluation(run_dir, task, pd.DataFrame(rows), len(table), int(per_patient.size), notes)
