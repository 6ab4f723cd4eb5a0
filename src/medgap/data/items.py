"""Which files (and frames) are labelled examples, their class and their patient group."""

from __future__ import annotations

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


def items_from_manifest(csv: str | Path, *, path_column: str = "path", label_column: str = "label",
                        group_column: str | None = "group_id", filter_column: str | None = None,
                        filter_values: tuple[str, ...] = ()) -> list[LabelledItem]:
    """Rows of a CSV (paths relative to it); rows with an empty label are skipped. A missing or empty group id
    falls back to the file itself."""
    csv = Path(csv)
    if not csv.exists():
        raise CollectionError(f"{csv}: no such manifest")
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    needed = [c for c in (path_column, label_column) if c not in df.columns]
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
    items = []
    for r in df.itertuples(index=False):
        rec = dict(zip(df.columns, r))
        if not rec[label_column]:
            continue
        p = Path(rec[path_column])
        p = p if p.is_absolute() else (csv.parent / p)
        group = rec.get(group_column, "") if group_column else ""
        items.append(LabelledItem(p.resolve(), rec[label_column], group or str(p)))
    return items


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
