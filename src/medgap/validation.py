"""Validity of quality metrics against human ratings: read a ratings table (image path, mean opinion score),
score the images (:func:`medgap.score`), and compute each metric's SROCC, KROCC, PLCC and RMSE after the VQEG
logistic mapping, with bootstrap CIs over images (:mod:`medgap.stats.validity`).

This module sits above ``scoring`` and ``stats`` (it uses both, as ``evaluation`` does); the statistics stay
pure in ``stats/validity.py``, the figure and files are ``medgap.report.validity``, and ``medgap validate`` only
parses, calls this and prints::

    import medgap
    v = medgap.validate("clive/mos.csv", metrics=["brisque", "niqe", "piqe"])
    v.to_frame()          # one row per metric: srocc, srocc_low, srocc_high, krocc, ..., plcc, ..., rmse, ...
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd

from medgap.quality.registry import Metric
from medgap.stats.validity import ValidityError, ValidityResult, metric_validity

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_METRICS = ("brisque", "niqe", "piqe")


class RatingsError(ValueError):
    """A ratings table that cannot be used (missing column, paths not found, MOS not numeric, duplicates);
    the message names the file or column and the fix."""


def _examples(values: Iterable[object], k: int = 3, *, quote: bool = True) -> str:
    values = list(values)
    shown = ", ".join(repr(str(v)) if quote else str(v) for v in values[:k])
    return shown + (f" and {len(values) - k} more" if len(values) > k else "")


def _where(source: str | None) -> str:
    return source or "the ratings table"


def _resolve_root(paths: Sequence[str], base: Path, root: Path | None, source: str | None) -> Path:
    """The folder that relative paths are read from: ``root`` when given; else the CSV's folder, or the
    nearest folder above it in which every listed file exists (a table kept next to the images of a larger
    data folder, e.g. ``data/iqa/clive/mos.csv`` listing ``iqa/clive/1000.JPG``)."""
    relative = [p for p in paths if not Path(p).is_absolute()]
    absent = [p for p in paths if Path(p).is_absolute() and not Path(p).is_file()]
    if absent:
        raise RatingsError(f"{_where(source)}: {len(absent)} of {len(paths)} image files not found: "
                           f"{_examples(absent)}; correct the paths (absolute ones are used as they are)")
    candidates = [root] if root is not None else [base, *base.parents]
    best, best_missing = candidates[0], None
    for folder in candidates:
        missing = [p for p in relative if not (folder / p).is_file()]
        if not missing:
            return folder
        if best_missing is None or len(missing) < len(best_missing):
            best, best_missing = folder, missing
    missing = [p for p in paths if not (Path(p) if Path(p).is_absolute() else best / p).is_file()]
    hint = ("" if root is not None else
            f"; relative paths are read from the table's folder ({base}) or the nearest folder above it that holds "
            "them all: give root=FOLDER (--root) if they are relative to another folder")
    raise RatingsError(f"{_where(source)}: {len(missing)} of {len(paths)} image files not found (under {best}): "
                       f"{_examples(missing)}{hint}")


def read_ratings(
    ratings: PathLike | pd.DataFrame,
    *,
    path_column: str = "path",
    mos_column: str = "mos",
    root: PathLike | None = None,
) -> tuple[pd.DataFrame, Path | None]:
    """The ratings as a table with ``file`` (the image's absolute path), the given path column, ``mos`` and any
    other columns, and the folder relative paths were read from. A DataFrame's relative paths are read from
    ``root`` (default: the working directory). RatingsError for a missing column, a path found twice, files
    not found (how many, a few of them), or a MOS that is missing or not a number (which rows)."""
    source: str | None = None
    if isinstance(ratings, pd.DataFrame):
        table = ratings.copy()
        base = Path(root) if root is not None else Path.cwd()
    else:
        path = Path(ratings)
        source = str(path)
        if not path.is_file():
            raise RatingsError(f"{path}: no such ratings table; give a CSV with a {path_column!r} column (image "
                               f"paths, relative to the CSV) and a {mos_column!r} column (mean opinion scores)")
        try:
            table = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError, OSError) as e:  # pandas' ParserError/EmptyDataError are ValueErrors
            raise RatingsError(f"{path}: not a readable CSV ({type(e).__name__}: {e})") from None
        base = path.resolve().parent
    for column, option in ((path_column, "path_column (--path-column)"), (mos_column, "mos_column (--mos-column)")):
        if column not in table.columns:
            raise RatingsError(f"{_where(source)}: no column {column!r}; its columns are "
                               f"{', '.join(map(str, table.columns)) or '(none)'}. Name the right one with {option}")
    if table.empty:
        raise RatingsError(f"{_where(source)}: no rows; validity needs rated images")
    paths = table[path_column]
    if paths.isna().any():
        rows = (np.flatnonzero(paths.isna().to_numpy()) + 2).tolist()  # +2: the header is line 1
        raise RatingsError(f"{_where(source)}: column {path_column!r} is empty on line(s) {_examples(rows, quote=False)}; "
                           "every row needs an image path")
    paths = paths.astype(str)
    dup = paths[paths.duplicated()].unique().tolist()
    if dup:
        raise RatingsError(f"{_where(source)}: {len(dup)} image path(s) listed more than once in {path_column!r}: "
                           f"{_examples(dup)}; give one row (one mean opinion score) per image")
    mos = pd.to_numeric(table[mos_column], errors="coerce")
    bad = mos.isna() | ~np.isfinite(mos.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        lines = (np.flatnonzero(bad.to_numpy()) + 2).tolist()
        values = table.loc[bad, mos_column].tolist()
        raise RatingsError(f"{_where(source)}: column {mos_column!r} must hold numbers (mean opinion scores); "
                           f"{int(bad.sum())} row(s) do not, on line(s) {_examples(lines, quote=False)} (values "
                           f"{_examples(values)}). Fix or remove those rows, or name the right column with "
                           "mos_column (--mos-column)")
    folder = _resolve_root(paths.tolist(), base, Path(root) if root is not None else None, source)
    table[mos_column] = mos.astype(np.float64)
    table.insert(0, "file", [str(Path(p) if Path(p).is_absolute() else (folder / p).resolve()) for p in paths])
    return table, folder


@dataclass(frozen=True)
class Validation:
    """What :func:`validate` found: ``result`` (per metric, :class:`~medgap.stats.validity.ValidityResult`),
    ``data`` (one row per rated image: ``file``, the ratings' columns, each metric's score and ``error``),
    where the ratings came from, and notes (images a metric could not score)."""

    result: ValidityResult
    data: pd.DataFrame
    ratings: str | None
    root: Path | None
    mos_column: str
    score_columns: dict[str, str]
    """metric name -> its score column in ``data``."""
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per metric (see :meth:`ValidityResult.to_frame`)."""
        return self.result.to_frame()

    def to_dict(self) -> dict[str, object]:
        from medgap._json import jsonable

        out = self.result.to_dict()
        out.update(ratings=self.ratings, root=self.root, mos_column=self.mos_column, n_rated=len(self.data),
                   notes=self.notes)
        return jsonable(out)  # type: ignore[return-value]


def validate(
    ratings: PathLike | pd.DataFrame,
    metrics: str | Metric | Iterable[str | Metric] = DEFAULT_METRICS,
    *,
    path_column: str = "path",
    mos_column: str = "mos",
    root: PathLike | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    method: str = "bca",
    seed: int = 0,
    workers: int = 1,
    progress: bool | Callable[[int, int, int], None] = False,
) -> Validation:
    """How well each metric tracks the human ratings of a set of images.

    ``ratings``: a CSV (or DataFrame) with one row per image: ``path_column`` (the file, relative to the CSV's
    folder or the nearest folder above it that holds them all, or to ``root``) and ``mos_column`` (mean
    opinion score, higher = better quality); other columns (``mos_std``) are kept in ``data``. The images are
    scored with :func:`medgap.score` (``workers``, ``progress`` as there); a video's frames are averaged per file.
    For each metric: SROCC and KROCC (signed so that positive = agrees with the raters in the metric's declared
    direction), PLCC and RMSE after the VQEG 5-parameter logistic mapping, each with a bootstrap CI over images
    (``confidence``, ``n_resamples``, ``method`` ``"bca"`` or ``"percentile"``, ``seed``). See
    :mod:`medgap.stats.validity`. Images a metric could not score are left out of that metric (counted in
    ``notes``).

    Raises RatingsError (a bad table: the message names the file, column and fix) and
    :class:`~medgap.stats.validity.ValidityError` (too few scored images, a constant metric).
    """
    from medgap.scoring.memory import as_metrics, score

    ms = as_metrics(metrics)
    table, folder = read_ratings(ratings, path_column=path_column, mos_column=mos_column, root=root)
    source = None if isinstance(ratings, pd.DataFrame) else str(ratings)
    scores = score(table["file"].tolist(), ms, workers=workers, progress=progress)
    columns = {m.name: m.info.columns[0] for m in ms}
    per_file = scores.groupby("path", sort=False)[list(dict.fromkeys(columns.values()))].mean()
    errors = scores.groupby("path", sort=False)["error"].agg(lambda e: "; ".join(sorted(set(e.dropna().astype(str)))))
    data = table.join(per_file, on="file").join(errors.rename("error"), on="file")
    data["error"] = data["error"].replace("", np.nan)
    notes: list[str] = []
    out = {}
    mos = data[mos_column].to_numpy(np.float64)
    for m in ms:
        x = data[columns[m.name]].to_numpy(np.float64)
        ok = np.isfinite(x)
        if not ok.all():
            failed = data.loc[~ok, path_column].tolist()
            notes.append(f"{m.name}: {len(failed)} of {len(data)} rated image(s) have no score and are left out "
                         f"({_examples(failed)}; reasons in the error column)")
        try:
            out[m.name] = metric_validity(x[ok], mos[ok], metric=m.name, lower_is_better=m.info.lower_is_better,
                                          confidence=confidence, n_resamples=n_resamples, method=method, seed=seed)
        except ValidityError as e:
            raise ValidityError(f"{source or 'ratings'}: {e}") from None
    result = ValidityResult(out, confidence, n_resamples, method, seed, notes=notes)
    return Validation(result, data, source, folder, mos_column, columns, notes)


__all__ = ["DEFAULT_METRICS", "RatingsError", "Validation", "read_ratings", "validate"]
