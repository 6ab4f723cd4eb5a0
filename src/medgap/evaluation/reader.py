"""A human reader's reads of the same items, joined to a run for the model-vs-reader tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medgap.evaluation.errors import EvaluationError
from medgap.evaluation.run import Run


def read_reader(path: str | Path, run: Run) -> pd.DataFrame:
    """A reader's reads (CSV with item_id, pred and optionally label) joined to the run's rows: columns item_id,
    label, pred (the model's), pred_reader. Reads of items the run does not have are dropped.

    Raises:
        EvaluationError: a missing or malformed file, unknown classes, an item read twice, no item in common,
            or a label that differs from the run's.
    """
    path = Path(path)
    if not path.exists():
        raise EvaluationError(f"{path}: no such reader file; give a CSV with columns item_id and pred (the reader's "
                              f"class for each item)")
    try:
        reads = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise EvaluationError(f"{path}: not a CSV table ({type(e).__name__}); give a CSV with columns item_id and "
                              f"pred") from None
    missing = [c for c in ("item_id", "pred") if c not in reads.columns]
    if missing:
        raise EvaluationError(f"{path}: no column {', '.join(missing)}; a reader CSV needs item_id and pred "
                              f"(it has {', '.join(reads.columns)})")
    unknown = sorted(set(reads.pred.dropna()) - set(run.classes))
    if unknown or reads.pred.isna().any():
        what = f"unknown classes {unknown}" if unknown else "empty values"
        raise EvaluationError(f"{path}: column 'pred' has {what}; the run's classes are {run.classes}")
    if reads.item_id.duplicated().any():
        raise EvaluationError(f"{path}: item {reads.item_id[reads.item_id.duplicated()].iloc[0]!r} is read more "
                              f"than once; give one read per item (one reader per file)")
    cols = ["item_id", "pred"] + (["label"] if "label" in reads.columns else [])
    both = run.predictions[["item_id", "label", "pred"]].merge(reads[cols], on="item_id", suffixes=("", "_reader"))
    if both.empty:
        raise EvaluationError(f"{path}: no item_id in common with {run.predictions_file} (split "
                              f"{run.split_name!r}); the reader must read the same items, named as in "
                              f"predictions.csv (e.g. {run.predictions.item_id.iloc[0]!r})")
    if "label_reader" in both.columns:
        differ = both.label_reader.notna() & (both.label_reader != both.label)
        if differ.any():
            raise EvaluationError(f"{path}: the label of {int(differ.sum())} item(s) differs from predictions.csv, "
                                  f"e.g. {both.item_id[differ].iloc[0]!r}; drop the label column or fix it")
    return both[["item_id", "label", "pred", "pred_reader"]]
