"""The files of a run directory and the one schema of its ``predictions.csv``.

Every training command that predicts classes writes ``predictions.csv`` with one row per held-out item:

==========  ======  =====================================================================================
column      needed  meaning
==========  ======  =====================================================================================
item_id     yes     the item: a file, or ``path#frame`` for a frame of a video or multi-frame file
path        no      the file the item comes from (``--aggregate file`` needs it)
frame       no      the frame index within that file
group_id    yes     the patient; empty: the item is its own patient
fold        no      the cross-validation fold that held the item out
split       no      which part of the data the row predicts (``test`` for held-out predictions)
label       yes     the true class (a name listed in ``classes.json``)
pred        yes     the predicted class
prob_<c>    yes     the predicted probability of each class ``c`` of ``classes.json``, summing to 1 per row
==========  ======  =====================================================================================

``classes.json`` lists the class names in order; ``split.csv`` has one row per item and fold with columns
``item_id, group_id, label, fold, role`` (role ``train``, ``val`` or ``test``).

Kept free of heavy imports so that the writer (``medgap.train``) can share these names.
"""

from __future__ import annotations

from collections.abc import Iterable

PREDICTIONS_FILE = "predictions.csv"
CLASSES_FILE = "classes.json"
SPLIT_FILE = "split.csv"
CONFIG_FILE = "config.json"

REQUIRED_COLUMNS = ("item_id", "group_id", "label", "pred")
"""Columns predictions.csv must have (besides one prob_<class> per class)."""
PREDICTIONS_COLUMNS = ("item_id", "path", "frame", "group_id", "fold", "split", "label", "pred")
"""All named columns in the order the writer puts them, followed by the prob_<class> columns in class order."""
PREDICTIONS_DTYPES = {"item_id": str, "path": str, "group_id": str, "label": str, "pred": str}
"""How to read predictions.csv: identifiers and class names stay text (an item called 007 keeps its zeros)."""
PROB_PREFIX = "prob_"

SPLIT_COLUMNS = ("item_id", "group_id", "label", "fold", "role")
SPLIT_ROLES = ("train", "val", "test")
HELD_OUT = "test"
"""The split value (predictions.csv) and role (split.csv) of held-out predictions."""

PROBABILITY_SUM_TOLERANCE = 1e-3
"""softmax outputs written with full float precision sum to 1 within 1e-6; 1e-3 accepts probabilities rounded to
4 decimals and refuses most numbers cut short by a truncated file."""


def prob_column(cls: str) -> str:
    """The predictions.csv column of the probability of class ``cls``."""
    return f"{PROB_PREFIX}{cls}"


def classes_from_columns(columns: Iterable[str]) -> list[str]:
    """The class names of the prob_<class> columns, in column order."""
    return [c[len(PROB_PREFIX):] for c in columns if c.startswith(PROB_PREFIX)]
