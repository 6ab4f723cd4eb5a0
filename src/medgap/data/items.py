"""Which files (and frames) are labelled examples, their class and their patient group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medgap.io import CollectionError, scan_folder
from medgap.io.readers import VIDEO_SUFFIXES, suffix_of


@dataclass(frozen=True)
class LabelledItem:
    path: Path
    label: str
    group_id: str
    """Patient (or clip) identifier: splits never put one group on both sides."""
    values: tuple[str, ...] = ()
    """Several label columns (a multi-label manifest): each column's text, '' where the row leaves it empty;
    ``label`` then names the findings present (see :func:`items_from_manifest`)."""


def items_from_folder(root: str | Path) -> list[LabelledItem]:
    """``root/<class>/...`` (recursive). Without patient ids, each file is its own group (a video's frames
    share their file's group); pass a manifest to group by patient."""
    root = Path(root)
    if not root.is_dir():
        raise CollectionError(f"{root}: no such folder (expected root/<class>/<images>)")
    items = []
    for f in scan_folder(root):
        rel = f.relative_to(root)
        if len(rel.parts) < 2:
            continue  # files directly in root have no class
        items.append(LabelledItem(f, rel.parts[0], str(rel)))
    if not items:
        raise CollectionError(f"{root}: no images in class subfolders (expected root/<class>/<images>)")
    return items


def items_from_manifest(csv: str | Path, *, path_column: str = "path", label_column: str | Sequence[str] = "label",
                        group_column: str | None = "group_id", filter_column: str | None = None,
                        filter_values: tuple[str, ...] = (), each_file_is_a_patient: bool = False,
                        ) -> list[LabelledItem]:
    """Rows of a CSV (paths relative to it); rows with an empty label are skipped.

    ``label_column`` may name several columns (a multi-label manifest, one 0/1 column per finding): each item
    then keeps their texts in ``values`` ('' where empty: not known) and ``label`` names the findings marked 1,
    joined by ``+`` (``-`` for none); only rows where every one of them is empty are skipped.

    ``group_column`` holds the patient id. A manifest without that column, or with it empty in every row used,
    is a :class:`CollectionError` naming its columns: splitting one patient's files across folds inflates
    every held-out score, so one patient per file is never a silent fallback. Pass ``each_file_is_a_patient``
    (or ``group_column=None``) when every file does come from a different patient. A row with an empty id
    among rows with ids is its own patient (its file)."""
    csv = Path(csv)
    if not csv.exists():
        raise CollectionError(f"{csv}: no such manifest")
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    label_columns = [label_column] if isinstance(label_column, str) else list(label_column)
    needed = [c for c in (path_column, *label_columns) if c not in df.columns]
    if needed:
        raise CollectionError(f"{csv}: no column {', '.join(needed)}; columns are {', '.join(df.columns)}")
    if filter_column or filter_values:
        if not (filter_column and filter_values):
            raise CollectionError(f"{csv}: a filter needs a column and values, COLUMN=V1,V2 (e.g. modality=pocus); "
                                  f"got column {filter_column!r}, values {list(filter_values)}")
        if filter_column not in df.columns:
            raise CollectionError(f"{csv}: no column {filter_column!r} to filter on; columns are "
                                  f"{', '.join(df.columns)}")
        available = sorted(set(df[filter_column]))
        df = df[df[filter_column].isin(filter_values)]
        if df.empty:
            raise CollectionError(f"{csv}: no row has {filter_column} in {list(filter_values)}; its values are "
                                  f"{', '.join(available[:20])}{' ...' if len(available) > 20 else ''}")
    df = df[(df[label_columns] != "").any(axis=1)]
    per_file = each_file_is_a_patient or group_column is None
    if not per_file:
        _check_patient_column(csv, df, group_column)
    items = []
    for r in df.itertuples(index=False):
        rec = dict(zip(df.columns, r))
        p = Path(rec[path_column])
        p = p if p.is_absolute() else (csv.parent / p)
        group = "" if per_file else rec[group_column]
        if isinstance(label_column, str):
            items.append(LabelledItem(p.resolve(), rec[label_column], group or str(p)))
        else:
            values = tuple(rec[c].strip() for c in label_columns)
            items.append(LabelledItem(p.resolve(), findings_label(label_columns, values), group or str(p), values))
    return items


_PATIENT_FIX = ("name the column that holds the patient id with --group-column NAME (group_column=...), or, if "
                "every file comes from a different patient, say so with --each-file-is-a-patient "
                "(each_file_is_a_patient=True)")


def _check_patient_column(csv: Path, df: pd.DataFrame, group_column: str) -> None:
    """Refuse a manifest that would give one patient per file without being told so (see items_from_manifest)."""
    if group_column not in df.columns:
        raise CollectionError(f"{csv}: no patient column {group_column!r}; its columns are {', '.join(df.columns)}. "
                              f"Folds are split by patient: {_PATIENT_FIX}")
    if len(df) and (df[group_column] == "").all():
        raise CollectionError(f"{csv}: column {group_column!r} is empty in every row used ({len(df)}), so each file "
                              f"would be its own patient. Folds are split by patient: {_PATIENT_FIX}")


def findings_label(findings: Sequence[str], values: Sequence[str]) -> str:
    """A multi-label item's ``label``: the findings whose value is 1, joined by ``+``; ``-`` for none."""
    present = [f for f, v in zip(findings, values) if v not in ("", "0", "0.0")]
    return "+".join(present) or "-"


def load_items(data: str | Path, **manifest_kw) -> list[LabelledItem]:
    """A folder tree or a CSV manifest. A filter (``filter_column``/``filter_values``) needs a manifest."""
    data = Path(data)
    if data.suffix.lower() == ".csv":
        return items_from_manifest(data, **manifest_kw)
    if manifest_kw.get("filter_column") or manifest_kw.get("filter_values"):
        raise CollectionError(f"{data}: a filter selects manifest rows, and this is a folder; pass a CSV manifest "
                              f"with --data, or leave out the filter (remove the class folders you do not want)")
    return items_from_folder(data)


def is_video(path: Path) -> bool:
    return suffix_of(path) in VIDEO_SUFFIXES
