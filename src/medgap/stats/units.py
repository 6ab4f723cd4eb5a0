"""The unit of analysis: which rows of a scores table are one observation for the statistics.

A scores table has one row per frame (a still image is a one-frame file). Frames of one clip, and images of one
patient, are not independent: counting them as observations makes P values and CIs far too small (on the shared
POCUS clips the intra-clip correlation of BRISQUE is about 0.85, a design effect of about 14). So the tests
compare *units*: the mean of a unit's frames is its value.

- ``patient``: the rows of one patient id (a manifest's ``group_id``, or the column named by ``unit_column``);
  a row without a patient id is its own file's unit (said in the notes);
- ``file``: the rows of one ``path`` (every frame of a video or a multi-frame DICOM);
- ``frame``: every row (only on request: the frames of one clip are then counted as independent).

Default: ``patient`` when the table has a patient column, else ``file``; a table without a ``path`` column
falls back to ``frame`` (said in the notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from medgap.stats._errors import ComparisonError

UNITS = ("patient", "file", "frame")
"""The units of analysis ``compare_metrics`` takes."""

PATIENT_COLUMN = "group_id"
"""The manifest's patient column (``../shared/data/MANIFEST.csv``; ``medgap quality --manifest`` keeps it)."""

FILE_COLUMN = "path"
"""The scores table's file column (written by ``medgap quality``)."""

SHARED_UNITS = ("split", "error")
"""What to do with a patient (or file) whose rows fall in two groups: ``split`` counts its rows in each group as
a unit of that group (said in the notes, naming the patients), ``error`` refuses the table (UnitError naming them)."""


class UnitError(ComparisonError):
    """The unit of analysis cannot be used on this table: an unknown unit, a missing patient or file column, or a
    patient in two groups when ``shared_units='error'``."""


@dataclass(frozen=True)
class Units:
    """Each row's unit id (``ids``, aligned with the table's index) and what was chosen.

    ``unit``: patient, file or frame; ``column``: the column the ids come from (None for frame);
    ``shared``: unit -> the groups its rows fall in, for units in more than one group; ``notes``: sentences
    for the reader (fallbacks, patients in two groups)."""

    unit: str
    column: str | None
    ids: pd.Series
    shared: dict[str, list[str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _missing(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def _names(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(map(repr, items[:limit]))
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def resolve_units(scores: pd.DataFrame, unit: str | None = None, unit_column: str | None = None, *,
                  group: str = "group", shared_units: str = "split") -> Units:
    """Each row's unit of analysis (see the module docstring for the rules and the default).

    Args:
        scores: one row per frame, with ``group`` and, for the file and patient units, ``path`` / a patient column.
        unit: patient, file or frame; None for the default (patient when there is a patient column, else file).
        unit_column: the patient column (default ``group_id``); naming it makes ``patient`` the default unit.
        group: the group column (to find patients in two groups).
        shared_units: ``split`` or ``error`` (see ``SHARED_UNITS``).

    Raises:
        UnitError: an unknown unit or shared_units, ``unit='patient'`` without a patient column,
            ``unit='file'`` without a path column, ``unit_column`` not in the table, or a patient in two groups
            with ``shared_units='error'``.
    """
    if unit is not None and unit not in UNITS:
        raise UnitError(f"unit {unit!r} is not one of {', '.join(UNITS)} (the unit of analysis: one patient, one "
                        "file or one frame is one observation)")
    if shared_units not in SHARED_UNITS:
        raise UnitError(f"shared_units {shared_units!r} is not one of {', '.join(SHARED_UNITS)}")
    if unit_column is not None and unit_column not in scores:
        raise UnitError(f"no patient column {unit_column!r} in the table; its columns are "
                        f"{', '.join(map(str, scores.columns))}. Name the column holding patient ids")
    patient_column = unit_column or (PATIENT_COLUMN if PATIENT_COLUMN in scores else None)
    notes: list[str] = []
    if unit is None:
        if patient_column is not None and not _missing(scores[patient_column]).all():
            unit = "patient"
        elif FILE_COLUMN in scores:
            unit = "file"
        else:
            unit = "frame"
            notes.append(f"no {PATIENT_COLUMN!r} or {FILE_COLUMN!r} column: every row is one unit of analysis "
                         "(frame); frames of one clip or patient are then counted as independent")
    if unit == "frame":
        ids = pd.Series([f"row:{i}" for i in range(len(scores))], index=scores.index, dtype=object)
        return Units("frame", None, ids, {}, tuple(notes))
    if unit == "patient":
        if patient_column is None:
            raise UnitError(f"unit 'patient' needs a patient column ({PATIENT_COLUMN!r}, or name one with "
                            f"unit_column=); the columns are {', '.join(map(str, scores.columns))}. "
                            "Use unit='file' to average each file's frames instead")
        missing = _missing(scores[patient_column])
        ids = ("patient:" + scores[patient_column].astype(str)).astype(object)
        if missing.any():
            if FILE_COLUMN in scores:
                ids[missing] = "file:" + scores.loc[missing, FILE_COLUMN].astype(str)
                fallback = "its file is its unit"
            else:
                ids[missing] = [f"row:{i}" for i in range(int(missing.sum()))]
                fallback = "each such row is its own unit"
            by_group = scores.loc[missing, group].astype(str).value_counts().sort_index()
            notes.append(f"{int(missing.sum())} row(s) have no patient id in {patient_column!r} "
                         f"({', '.join(f'{g}: {n}' for g, n in by_group.items())}): {fallback}")
        column = patient_column
    else:
        if FILE_COLUMN not in scores:
            raise UnitError(f"unit 'file' needs a {FILE_COLUMN!r} column; the columns are "
                            f"{', '.join(map(str, scores.columns))}. Use unit='frame' to count every row")
        ids = ("file:" + scores[FILE_COLUMN].astype(str)).astype(object)
        column = FILE_COLUMN
    labelled = scores[group].notna()
    spans = pd.DataFrame({"unit": ids[labelled], "group": scores.loc[labelled, group].astype(str)})
    per_unit = spans.groupby("unit")["group"].unique()
    shared = {u.split(":", 1)[1]: sorted(g) for u, g in per_unit.items() if len(g) > 1}
    if shared:
        listing = [f"{u} ({', '.join(g)})" for u, g in shared.items()]
        if shared_units == "error":
            raise UnitError(f"{len(shared)} {unit}(s) have rows in more than one group, so the groups are not "
                            f"independent: {_names(listing)}. Give each {unit} one group, or pass "
                            "shared_units='split' to count its rows in each group as a separate unit")
        notes.append(f"{len(shared)} {unit}(s) have rows in more than one group: {_names(listing)}; their rows in "
                     "each group count as a separate unit of that group, so those groups are not fully independent")
        ids = (scores[group].astype(str) + "|" + ids).where(labelled, ids)
    return Units(unit, column, ids.astype(object), shared, tuple(notes))
