"""Every metric column of a scores table compared across groups: ``compare_metrics``.

The columns and their direction (lower or higher is better) come from the metric registry
(``medgap.quality``); the work per column is ``compare_groups``. Nothing is printed: what a caller should
know (a column skipped and why, the reference chosen for it) is in ``MetricComparison.notes``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from medgap.stats._checks import check_confidence
from medgap.stats.comparison import GroupComparison, compare_groups

DEFAULT_REFERENCE = "natural"
"""The study's reference group (ImageNet-style photographs): used when present and no reference is given."""


class ComparisonError(ValueError):
    """A scores table or an option that cannot be compared: a missing column, an unknown reference group."""


@dataclass(frozen=True)
class MetricComparison(Mapping[str, GroupComparison]):
    """The comparison of each compared column (a read-only mapping column -> ``GroupComparison``).

    ``lower_is_better`` holds each column's direction from the metric registry (None for descriptive
    statistics and columns the registry does not know), ``skipped`` the columns that could not be compared
    with the reason, ``notes`` sentences for the reader (skipped columns, the reference chosen).
    """

    comparisons: dict[str, GroupComparison]
    reference: str
    groups: list[str]
    lower_is_better: dict[str, bool | None] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, column: str) -> GroupComparison:
        return self.comparisons[column]

    def __iter__(self) -> Iterator[str]:
        return iter(self.comparisons)

    def __len__(self) -> int:
        return len(self.comparisons)

    def to_dict(self) -> dict[str, dict]:
        """Column -> ``GroupComparison.to_dict()`` (plain types, full precision) with its ``lower_is_better``."""
        return {c: {**cmp.to_dict(), "lower_is_better": self.lower_is_better.get(c)}
                for c, cmp in self.comparisons.items()}


def metric_columns(scores: pd.DataFrame) -> dict[str, bool | None]:
    """Columns of registered metrics present in ``scores``, with their direction: each quality metric's score
    (``lower_is_better`` from the registry) and every column of a descriptive statistic (direction None:
    neither end is better). In registry order."""
    from medgap.quality import get_metric_info, list_metrics  # the registry loads every metric: only when asked

    out: dict[str, bool | None] = {}
    for name in list_metrics():
        info = get_metric_info(name)
        if info.kind == "statistic":
            out.update({c: None for c in info.columns if c in scores and c not in out})
        elif info.columns[0] in scores and info.columns[0] not in out:
            out[info.columns[0]] = info.lower_is_better
    return out


def _direction(column: str) -> bool | None:
    from medgap.quality import get_metric_info, list_metrics

    for name in list_metrics():
        info = get_metric_info(name)
        if info.kind != "statistic" and info.columns[0] == column:
            return info.lower_is_better
    return None


def check_reference(reference: str, groups: Sequence[str]) -> None:
    """ComparisonError unless ``reference`` is one of ``groups``; the message lists them, with the closest
    names first ("did you mean")."""
    if str(reference) in groups:
        return
    by_lower = {str(g).lower(): str(g) for g in groups}  # "CT" finds "ct"
    close = [by_lower[c] for c in difflib.get_close_matches(str(reference).lower(), list(by_lower), n=3)]
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ComparisonError(f"reference group {str(reference)!r} is not one of the groups "
                          f"({', '.join(map(repr, groups)) or 'none'}){hint}")


def compare_metrics(scores: pd.DataFrame, columns: Sequence[str] | str | None = None,
                    reference: str | None = None, *,
                    group: str = "group", confidence: float = 0.95) -> MetricComparison:
    """Compare the groups of ``scores`` (one row per image or frame) on each of ``columns``.

    Args:
        scores: a tidy table with a ``group`` column and one numeric column per measure (what
            ``medgap quality`` / ``score_collection`` write).
        columns: the columns to compare, or one column name (default: every registered metric's columns in the table, see
            ``metric_columns``).
        reference: the group the effect sizes are against. It must be a group of the table (ComparisonError
            naming the groups otherwise). None: ``"natural"`` when the table has it, else the first group in
            sorted order (said in ``notes``).
        group: the column holding the group labels.
        confidence: level of every confidence interval.

    Returns:
        a ``MetricComparison``: a mapping column -> ``GroupComparison`` for each column that could be
        compared (a column where fewer than 2 groups have a value is skipped and named in ``skipped`` and
        ``notes``; it may be empty when every column was skipped).

    Raises:
        ComparisonError: no ``group`` column, a requested column missing, no metric column in the table, or
            an unknown reference group.
    """
    check_confidence(confidence)  # here, not once per column as a reason to skip it
    if isinstance(columns, str):  # one column named: not its characters
        columns = [columns]
    if group not in scores:
        raise ComparisonError(f"no {group!r} column to compare by; the columns are "
                              f"{', '.join(map(str, scores.columns)) or '(none)'}")
    if columns is None:
        directions = metric_columns(scores)
        if not directions:
            raise ComparisonError("no column of a registered metric in the table; its columns are "
                                  f"{', '.join(map(str, scores.columns))}. Name the columns to compare.")
    else:
        missing = [c for c in columns if c not in scores]
        if missing or not columns:
            raise ComparisonError(f"no column {', '.join(map(repr, missing)) or '(none given)'} in the table; its "
                                  f"columns are {', '.join(map(str, scores.columns))}")
        directions = {c: _direction(str(c)) for c in dict.fromkeys(columns)}
    groups = sorted(set(scores[group].dropna().astype(str)))
    notes: list[str] = []
    if reference is not None:
        check_reference(str(reference), groups)
        chosen = str(reference)
    elif DEFAULT_REFERENCE in groups:
        chosen = DEFAULT_REFERENCE
    else:
        chosen = groups[0] if groups else ""
        if groups:
            notes.append(f"no group {DEFAULT_REFERENCE!r}: effect sizes are against {chosen!r}, the first group "
                         "(choose another with reference=)")
    comparisons: dict[str, GroupComparison] = {}
    skipped: dict[str, str] = {}
    for c in directions:
        try:
            comparisons[c] = compare_groups(scores, c, group, reference=chosen or None, confidence=confidence)
        except ValueError as e:  # fewer than 2 groups with values, no value in the reference, not numeric
            skipped[c] = str(e)
            notes.append(f"skipped {c}: {e}")
    return MetricComparison(comparisons=comparisons, reference=chosen, groups=groups,
                            lower_is_better={c: d for c, d in directions.items() if c in comparisons},
                            skipped=skipped, notes=notes)
