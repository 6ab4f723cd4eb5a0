"""The files of a run directory and the one schema of its ``predictions.csv`` (written by :mod:`medgap.train`,
read by :mod:`medgap.evaluation`; here, below both, so that training need not import evaluation).

Every training run writes ``predictions.csv`` with one row per held-out item. The first columns are common to
every task:

==========  ======  =====================================================================================
column      needed  meaning
==========  ======  =====================================================================================
item_id     yes     the item: a file, or ``path#frame`` for a frame of a video or multi-frame file
path        no      the file the item comes from (``--aggregate file`` needs it)
frame       no      the frame index within that file
group_id    yes     the patient; empty: the item is its own patient
fold        no      the cross-validation fold that held the item out
split       no      which part of the data the row predicts (``test`` for held-out predictions)
label       yes     the truth as text (classify: the class; multilabel: the findings present joined by
                    ``+``, ``-`` for none; regress: the score as written in the manifest)
pred        yes     the prediction (classify: the class; multilabel: the findings with probability >= 0.5
                    joined by ``+``, ``-`` for none; regress: the predicted score, a number)
==========  ======  =====================================================================================

followed by the task's own columns (``outputs`` are the names in ``classes.json``):

- ``classify``: ``prob_<c>`` per class ``c``: softmax probabilities, summing to 1 per row.
- ``multilabel``: per finding ``f``: ``label_<f>`` (1, 0, or empty where the manifest does not say) and
  ``prob_<f>`` (the sigmoid probability that ``f`` is present; the rows do not sum to 1).
- ``regress``: ``target`` (the true score, a number); ``pred`` holds the prediction. ``classes.json`` holds the
  one target column's name.

``classes.json`` lists the output names in order (classes, findings, or the target); ``split.csv`` has one row
per item and fold with columns ``item_id, group_id, label, fold, role`` (role ``train``, ``val`` or ``test``);
``config.json`` records the options, among them ``task``.

Kept free of heavy imports (pandas only inside the functions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from medgap._options import RUN_CONFIG

__all__ = [
    "CLASSES_FILE", "CONFIG_FILE", "HELD_OUT", "LABEL_PREFIX", "PREDICTIONS_COLUMNS", "PREDICTIONS_DTYPES",
    "PREDICTIONS_FILE", "PROBABILITY_SUM_TOLERANCE", "PROB_PREFIX", "REQUIRED_COLUMNS", "SPLIT_COLUMNS",
    "SPLIT_FILE", "SPLIT_ROLES", "TARGET_COLUMN", "TASKS", "classes_from_columns", "label_column",
    "prob_column", "read_predictions", "run_task", "task_columns", "write_predictions",
]

PREDICTIONS_FILE = "predictions.csv"
CLASSES_FILE = "classes.json"
SPLIT_FILE = "split.csv"
CONFIG_FILE = RUN_CONFIG  # "config.json", recorded by medgap._options.write_run_config

TASKS = ("classify", "multilabel", "regress")
"""The tasks whose runs write predictions.csv (see :mod:`medgap.train.tasks`)."""

REQUIRED_COLUMNS = ("item_id", "group_id", "label", "pred")
"""Columns predictions.csv must have (besides the task's own columns)."""
PREDICTIONS_COLUMNS = ("item_id", "path", "frame", "group_id", "fold", "split", "label", "pred")
"""All common columns in the order the writer puts them, followed by the task's columns (see task_columns)."""
PREDICTIONS_DTYPES = {"item_id": str, "path": str, "group_id": str, "label": str, "pred": str}
"""How to read predictions.csv: identifiers and class names stay text (an item called 007 keeps its zeros).
A regression run's ``pred`` is a number: read it with :func:`read_predictions`."""
PROB_PREFIX = "prob_"
LABEL_PREFIX = "label_"
TARGET_COLUMN = "target"

SPLIT_COLUMNS = ("item_id", "group_id", "label", "fold", "role")
SPLIT_ROLES = ("train", "val", "test")
HELD_OUT = "test"
"""The split value (predictions.csv) and role (split.csv) of held-out predictions."""

PROBABILITY_SUM_TOLERANCE = 1e-3
"""softmax outputs written with full float precision sum to 1 within 1e-6; 1e-3 accepts probabilities rounded to
4 decimals and refuses most numbers cut short by a truncated file."""


def prob_column(cls: str) -> str:
    """The predictions.csv column of the probability of class (or finding) ``cls``."""
    return f"{PROB_PREFIX}{cls}"


def label_column(finding: str) -> str:
    """The predictions.csv column of a multi-label run's truth for ``finding`` (1, 0 or empty)."""
    return f"{LABEL_PREFIX}{finding}"


def classes_from_columns(columns: Iterable[str]) -> list[str]:
    """The class names of the prob_<class> columns, in column order."""
    return [c[len(PROB_PREFIX):] for c in columns if c.startswith(PROB_PREFIX)]


def task_columns(task: str, outputs: Sequence[str]) -> list[str]:
    """The columns that follow the common ones for ``task`` with output names ``outputs`` (classes.json)."""
    if task == "classify":
        return [prob_column(c) for c in outputs]
    if task == "multilabel":
        return [col for f in outputs for col in (label_column(f), prob_column(f))]
    if task == "regress":
        return [TARGET_COLUMN]
    raise ValueError(f"task {task!r}: predictions.csv has a schema for {', '.join(TASKS)}")


def run_task(config: dict | None) -> str:
    """The task of a run from its config.json (runs recorded before tasks existed are ``classify``)."""
    return str((config or {}).get("task") or "classify")


def write_predictions(df, path: str | Path, task: str, outputs: Sequence[str]) -> None:
    """Write held-out predictions in the schema's column order; a missing column is a ValueError (a bug in the
    writer, never a file the reader would refuse later)."""
    columns = [c for c in PREDICTIONS_COLUMNS if c in df.columns] + task_columns(task, outputs)
    missing = [c for c in (*REQUIRED_COLUMNS, *columns) if c not in df.columns]
    if missing:
        raise ValueError(f"predictions of task {task!r} lack column(s) {', '.join(missing)}")
    df[columns].to_csv(path, index=False)


def read_predictions(path: str | Path, task: str = "classify"):
    """predictions.csv as a DataFrame with the schema's dtypes (a regression run's pred as a float)."""
    import pandas as pd

    dtypes = dict(PREDICTIONS_DTYPES)
    if task == "regress":
        dtypes["pred"] = float
    return pd.read_csv(path, dtype=dtypes)
