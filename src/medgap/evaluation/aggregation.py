"""One decision per file or per patient (soft voting), and two runs aligned item by item for paired tests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medgap.evaluation.errors import EvaluationError
from medgap.evaluation.run import Run
from medgap.data.predictions import CLASSES_FILE, prob_column

AGGREGATE_LEVELS = ("item", "file", "patient")
"""Units of analysis: an item as predicted (an image or a frame), a file (an image, a video, a multi-frame
DICOM) or a patient (group_id)."""


def aggregate(run: Run, by: str) -> Run:
    """One decision per file (``by="file"``: a video's frames, a multi-frame DICOM) or per patient
    (``by="patient"``, group_id): the mean of its items' class probabilities, predicted class = their argmax
    (soft voting). Items of one unit must share their label. ``by="item"`` returns ``run`` itself.

    The result's ``predictions`` has one row per unit: item_id (the file or patient), group_id, label, pred,
    items (how many items it pools), fold (its first item's) and the prob_<class> columns.
    """
    if by not in AGGREGATE_LEVELS:
        raise EvaluationError(f"aggregate={by!r} (--aggregate): choose one of {', '.join(AGGREGATE_LEVELS)}")
    if by == "item" or by == run.unit:
        return run
    column = {"file": "path", "patient": "group_id"}[by]
    if column not in run.predictions.columns:
        raise EvaluationError(f"{run.predictions_file}: no column {column!r} to aggregate by {by}")
    keys = run.predictions[column].astype(str).to_numpy() if by == "file" else run.groups
    codes, units = pd.factorize(pd.Series(keys))
    n_labels = pd.Series(run.y_true).groupby(codes).nunique()
    if (n_labels > 1).any():
        bad = units[int(n_labels.index[n_labels.to_numpy() > 1][0])]
        raise EvaluationError(f"{run.predictions_file}: {by} {bad!r} has items of several classes; --aggregate {by} "
                              f"needs one class per {by}" + (" (try --aggregate file: one decision per image or "
                                                             "video)" if by == "patient" else ""))
    counts = np.bincount(codes)
    prob = np.zeros((units.size, run.prob.shape[1]))
    np.add.at(prob, codes, run.prob)
    prob /= counts[:, None]
    first = np.unique(codes, return_index=True)[1]  # each unit's first item: its label, patient and fold
    y, groups = run.y_true[first], run.groups[first]
    pred = prob.argmax(1)
    table = pd.DataFrame({"item_id": units.astype(str), "group_id": groups, "label": [run.classes[i] for i in y],
                          "pred": [run.classes[i] for i in pred], "items": counts})
    if "fold" in run.predictions.columns:
        table["fold"] = run.predictions.fold.to_numpy()[first]
    for j, c in enumerate(run.classes):
        table[prob_column(c)] = prob[:, j]
    return dataclasses.replace(run, predictions=table, y_true=y, y_pred=pred, prob=prob, groups=groups, unit=by)


@dataclass(frozen=True)
class AlignedRuns:
    """Two runs' predictions on their shared items, in the first run's class order: ``y`` the truth, ``pred_*``
    and ``prob_*`` each run's, ``groups`` the patients (the first run's)."""

    items: pd.Index
    classes: list[str]
    y: np.ndarray
    pred_a: np.ndarray
    pred_b: np.ndarray
    prob_a: np.ndarray
    prob_b: np.ndarray
    groups: np.ndarray
    notes: tuple[str, ...] = ()


def align_runs(a: Run, b: Run) -> AlignedRuns:
    """The items both runs predicted (same unit), b's classes reordered to a's (the prob_<class> columns are
    matched by name). Raises EvaluationError when the classes differ, no item is shared or a shared item has
    another label."""
    if a.unit != b.unit:
        raise EvaluationError(f"{b.predictions_file}: aggregated per {b.unit}, {a.predictions_file} per {a.unit}; "
                              f"aggregate both runs to the same unit")
    if set(a.classes) != set(b.classes):
        raise EvaluationError(f"{b.run_dir / CLASSES_FILE}: classes {b.classes} differ from {a.classes} of "
                              f"{a.run_dir}; compare runs trained on the same classes")
    ia = pd.Index(a.predictions.item_id)
    ib = pd.Index(b.predictions.item_id)
    shared = ia.intersection(ib, sort=False)
    if shared.empty:
        raise EvaluationError(f"{a.predictions_file} and {b.predictions_file} share no item_id in split "
                              f"{a.split_name!r} (e.g. {ia[0]!r} vs {ib[0]!r}); compare runs on the same data (same "
                              f"--data and --filter in `medgap finetune`)")
    pa, pb = ia.get_indexer(shared), ib.get_indexer(shared)
    order_b = [b.classes.index(c) for c in a.classes]  # b's class index of each of a's classes
    to_a = np.argsort(order_b)  # b's class index -> a's
    yb = to_a[b.y_true[pb]]
    if not np.array_equal(a.y_true[pa], yb):
        bad = shared[a.y_true[pa] != yb]
        raise EvaluationError(f"{b.predictions_file}: {bad.size} shared item(s) have another label than in "
                              f"{a.predictions_file}, e.g. {bad[0]!r}; the runs disagree on the ground truth")
    notes = ()
    if shared.size < max(ia.size, ib.size):
        notes = (f"--against: {shared.size} shared items ({ia.size - shared.size} only in {a.run_dir}, "
                 f"{ib.size - shared.size} only in {b.run_dir}); the comparison uses the shared items",)
    return AlignedRuns(shared, list(a.classes), a.y_true[pa], a.y_pred[pa], to_a[b.y_pred[pb]], a.prob[pa],
                       b.prob[pb][:, order_b], a.groups[pa], notes)
