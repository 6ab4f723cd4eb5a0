"""Reading a run directory: its config, split and the checked held-out predictions of one split."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medgap.evaluation.errors import EvaluationError
from medgap.data.predictions import (
    CLASSES_FILE,
    CONFIG_FILE,
    HELD_OUT,
    PREDICTIONS_DTYPES,
    PREDICTIONS_FILE,
    PROBABILITY_SUM_TOLERANCE,
    REQUIRED_COLUMNS,
    SPLIT_FILE,
    TASKS,
    classes_from_columns,
    prob_column,
    run_task,
    task_columns,
)

_RERUN = ("rerun the `medgap finetune` command of this run to rewrite it (finished folds are reused, nothing is "
          "retrained)")
_CSV_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError)


@dataclass(frozen=True)
class Run:
    """One split of a run directory's predictions, checked, with the run's config and split.

    ``predictions`` follows the schema of :mod:`medgap.data.predictions` (one row per unit); ``y_true``,
    ``y_pred``, ``prob`` (n, k) and ``groups`` (the patient of each row; an item without one is its own
    patient, ``item:<item_id>``) are the same rows as arrays in the order of ``classes``. ``unit`` is what a
    row is: ``item`` as read, ``file`` or ``patient`` after :func:`medgap.evaluation.aggregate`.
    """

    run_dir: Path
    classes: list[str]
    predictions: pd.DataFrame
    y_true: np.ndarray
    y_pred: np.ndarray
    prob: np.ndarray
    groups: np.ndarray
    split_name: str = HELD_OUT
    """The value of predictions.csv's split column these rows have."""
    unit: str = "item"
    config: dict | None = None
    """config.json of the run (None when absent)."""
    split: pd.DataFrame | None = None
    """split.csv of the run (None when absent): item_id, group_id, label, fold, role."""
    notes: tuple[str, ...] = field(default=())
    """What the reader assumed (classes from the prob_ columns, items without a patient, ...)."""

    @property
    def predictions_file(self) -> Path:
        return self.run_dir / PREDICTIONS_FILE


def read_run(run_dir: str | Path, split: str = HELD_OUT) -> Run:
    """The rows of ``split`` (default the held-out ``test`` rows) of RUN_DIR/predictions.csv, checked against
    classes.json and split.csv; with the run's config.json and split.csv when present.

    Raises:
        EvaluationError: a missing, damaged, truncated or inconsistent file; the message names it and the fix.
    """
    run_dir = Path(run_dir)
    pred_file = run_dir / PREDICTIONS_FILE
    if not run_dir.is_dir():
        raise EvaluationError(f"{run_dir}: no such run directory; pass the --out folder of `medgap finetune`")
    if not pred_file.exists():
        raise EvaluationError(f"{pred_file}: missing; make it with `medgap finetune --out {run_dir} ...` (or give "
                              f"the run directory that holds predictions.csv)")
    _check_task(run_dir)
    try:
        df = pd.read_csv(pred_file, dtype=PREDICTIONS_DTYPES)
    except _CSV_ERRORS as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EvaluationError(f"{pred_file}: damaged or not a CSV table ({first}); {_RERUN}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise EvaluationError(f"{pred_file}: no column {', '.join(missing)}; it needs {', '.join(REQUIRED_COLUMNS)}, "
                              f"split and prob_<class> (it has {', '.join(df.columns)})")
    notes: list[str] = []
    classes = _read_classes(run_dir, list(df.columns), notes)
    if "split" in df.columns:
        available = sorted(df["split"].dropna().astype(str).unique())
        df = df[df["split"].astype(str) == split]
        if df.empty:
            raise EvaluationError(f"{pred_file}: no rows with split == {split!r}; it has {available}. "
                                  f"Choose one with --split")
    df = df.reset_index(drop=True)
    for col in ("label", "pred"):
        unknown = sorted(set(df[col].dropna()) - set(classes))
        if unknown or df[col].isna().any():
            what = f"unknown classes {unknown}" if unknown else f"{int(df[col].isna().sum())} empty value(s)"
            raise EvaluationError(f"{pred_file}: column {col!r} has {what}; {run_dir / CLASSES_FILE} lists "
                                  f"{classes}. Fix classes.json or the predictions.")
    prob_cols = [prob_column(c) for c in classes]
    absent = [c for c in prob_cols if c not in df.columns]
    if absent:
        raise EvaluationError(f"{pred_file}: no column {', '.join(absent)}; there must be one prob_<class> column "
                              f"per class in {run_dir / CLASSES_FILE} ({classes})")
    prob = check_probabilities(df, prob_cols, pred_file)
    dup = df.item_id[df.item_id.duplicated()]
    if not dup.empty:
        raise EvaluationError(f"{pred_file}: item {dup.iloc[0]!r} appears more than once in split {split!r} "
                              f"({dup.nunique()} such items); each item must be held out once. Evaluate one repeat "
                              f"of the cross-validation at a time.")
    split_table = _read_split(run_dir)
    if split == HELD_OUT and split_table is not None:
        check_against_split(df, split_table, pred_file, run_dir / SPLIT_FILE)
    groups = df.group_id.fillna("").to_numpy(str)
    no_group = groups == ""
    if no_group.any():  # an item without a patient id is its own patient
        groups = np.where(no_group, "item:" + df.item_id.to_numpy(str), groups)
        notes.append(f"{pred_file}: {int(no_group.sum())} item(s) without group_id, each taken as its own patient")
    index = {c: i for i, c in enumerate(classes)}
    return Run(run_dir, classes, df, df.label.map(index).to_numpy(np.int64), df.pred.map(index).to_numpy(np.int64),
               prob, groups, split_name=split, config=_read_config(run_dir, notes), split=split_table,
               notes=tuple(notes))


def _check_task(run_dir: Path) -> None:
    """Only classification runs are evaluated so far: another task's predictions.csv has other columns."""
    path = run_dir / CONFIG_FILE
    try:
        config = json.loads(path.read_text()) if path.exists() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # _read_config notes it; the predictions decide
    task = run_task(config if isinstance(config, dict) else None)
    if task != "classify":
        columns = ", ".join(task_columns(task, ["<name>"])) if task in TASKS else "its own columns"
        known = task in ("regress", "multilabel")
        raise EvaluationError(f"{run_dir}: a --task {task} run ({path}); medgap evaluate (evaluate_run) evaluates "
                              f"classification runs. "
                              + (f"Evaluate it with medgap.evaluation.evaluate_task_run({str(run_dir)!r}); its "
                                 if known else "Its ")
                              + f"held-out predictions are in {run_dir / PREDICTIONS_FILE} (columns {columns}, see "
                              f"medgap.data.predictions) and their summary in {run_dir / 'metrics.json'}")


def _read_classes(run_dir: Path, columns: list[str], notes: list[str]) -> list[str]:
    path = run_dir / CLASSES_FILE
    prob_classes = classes_from_columns(columns)
    if not path.exists():
        if not prob_classes:
            raise EvaluationError(f"{path}: missing, and predictions.csv has no prob_<class> columns to take the "
                                  f"classes from; write the ordered class names there, e.g. [\"covid\", \"regular\"]")
        notes.append(f"{path} missing; classes taken from the prob_ columns: {prob_classes}")
        return prob_classes
    try:
        classes = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EvaluationError(f"{path}: not valid JSON ({e}); it should list the class names in order") from None
    if not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(classes):
        raise EvaluationError(f"{path}: expected a list of at least 2 distinct class names, got {classes!r}")
    return [str(c) for c in classes]


def _read_config(run_dir: Path, notes: list[str]) -> dict | None:
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return None
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:  # not needed to evaluate: say so and go on
        notes.append(f"{path}: not valid JSON ({type(e).__name__}); the run's configuration is not recorded here")
        return None
    return config if isinstance(config, dict) else None


def _read_split(run_dir: Path) -> pd.DataFrame | None:
    path = run_dir / SPLIT_FILE
    if not path.exists():
        return None
    try:
        split = pd.read_csv(path, dtype={"item_id": str, "group_id": str, "label": str})
    except (*_CSV_ERRORS, ValueError) as e:
        raise EvaluationError(f"{path}: damaged or not a CSV table ({type(e).__name__}); {_RERUN}") from None
    if not {"item_id", "role"} <= set(split.columns):
        raise EvaluationError(f"{path}: no item_id and role columns; it is not a `medgap finetune` split; {_RERUN}")
    return split


def check_probabilities(df: pd.DataFrame, prob_cols: list[str], pred_file: Path) -> np.ndarray:
    """The prob_<class> columns as floats: every value a number in [0, 1], every row summing to 1 (a row cut short
    by a truncated file fails here too)."""
    values = df[prob_cols].apply(pd.to_numeric, errors="coerce")
    raw = df[prob_cols].astype(str)
    bad = values.isna() & df[prob_cols].notna()
    if bad.to_numpy().any():
        i, j = np.argwhere(bad.to_numpy())[0]
        raise EvaluationError(f"{pred_file}: {int(bad.to_numpy().sum())} value(s) in prob_ columns are not numbers, "
                              f"e.g. {raw.iat[i, j]!r} in {prob_cols[j]} for item {df.item_id[i]!r}; {_RERUN}")
    prob = values.to_numpy(np.float64)
    if not np.isfinite(prob).all():
        rows = np.flatnonzero(~np.isfinite(prob).all(axis=1))
        raise EvaluationError(f"{pred_file}: {rows.size} row(s) with a missing probability, e.g. item "
                              f"{df.item_id[rows[0]]!r}; {_RERUN}")
    outside = (prob < 0) | (prob > 1)
    if outside.any():
        i, j = np.argwhere(outside)[0]
        raise EvaluationError(f"{pred_file}: probability {prob[i, j]!r} outside [0, 1] in {prob_cols[j]} for item "
                              f"{df.item_id[i]!r}; predictions.csv must hold softmax probabilities; {_RERUN}")
    off = np.abs(prob.sum(axis=1) - 1) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise EvaluationError(f"{pred_file}: the probabilities of {int(off.sum())} row(s) do not sum to 1, e.g. item "
                              f"{df.item_id[i]!r} ({prob[i].sum():.4g}); the file is damaged or cut short, or the "
                              f"prob_ columns are not one per class; {_RERUN}")
    return prob


def check_against_split(df: pd.DataFrame, split: pd.DataFrame, pred_file: Path, split_file: Path) -> None:
    """The held-out items of predictions.csv must be exactly split.csv's test items: a file cut at a line boundary
    parses cleanly and only this finds it."""
    expected = set(split.item_id[split.role == HELD_OUT].dropna())
    have = set(df.item_id.dropna())
    missing, extra = sorted(expected - have), sorted(have - expected)
    if missing:
        raise EvaluationError(f"{pred_file}: {len(have)} held-out items, but {split_file} holds out {len(expected)} "
                              f"({len(missing)} missing, e.g. {missing[0]!r}); the file is cut short or from another "
                              f"run; {_RERUN}")
    if extra:
        raise EvaluationError(f"{pred_file}: {len(extra)} item(s) that {split_file} never held out, e.g. "
                              f"{extra[0]!r}; predictions.csv and split.csv come from different runs; {_RERUN}")
