"""Every metric column of a scores table compared across groups: ``compare_metrics``.

The columns and their direction (lower or higher is better) come from the metric registry
(``medgap.quality``); the work per column is ``compare_groups``, on the unit of analysis chosen here
(``medgap.stats.units``: patient by default when the table has a patient column, else file). One metric is
primary (default: the first compared column, normally brisque); the P values of each group against the
reference are Holm-adjusted in two families: the primary metric's comparisons, and those of every secondary
metric together. Nothing is printed: what a caller should know (a column skipped and why, the reference
chosen, the unit's fallbacks, patients in two groups) is in ``MetricComparison.notes``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from medgap._json import jsonable
from medgap._options import option
from medgap.stats._checks import check_confidence
from medgap.stats._errors import ComparisonError
from medgap.stats.comparison import TESTS, GroupComparison, compare_groups, with_holm
from medgap.stats.multiplicity import holm
from medgap.stats.units import SHARED_UNITS, UNITS, resolve_units

DEFAULT_REFERENCE = "natural"
"""The study's reference group (ImageNet-style photographs): used when present and no reference is given."""


UNIT_COLUMN = "_medgap_unit"
"""The column of unit ids ``compare_metrics`` adds to its copy of the table."""


@dataclass
class ComparisonOptions:
    """The options of a comparison beyond the columns and the reference (one declaration for the library and
    the command line: ``medgap compare`` / ``study`` can take these fields as their options)."""

    unit: str | None = option(None, "Unit of analysis: patient, file or frame (default: patient when the table "
                                    "has a patient column, else file; frame counts every frame as independent).",
                              choices=UNITS)
    patient_column: str | None = option(None, "Column of patient ids (default: group_id when present).")
    primary: str | None = option(None, "Primary metric: its comparisons with the reference are one Holm family, "
                                       "every other metric's together another (default: the first compared).")
    test: str = option("welch", "Test of each group against the reference: welch (t on unit means), mixed "
                                "(mixed model), mann-whitney.", choices=TESTS)
    shared_units: str = option("split", "A patient in two groups: split (its rows in each group are a unit of "
                                        "that group, said in a note) or error.", choices=SHARED_UNITS)
    bootstrap: int = option(2000, "Bootstrap resamples of units for the CIs of d and Cliff's delta.")
    seed: int = option(0, "Bootstrap seed (same seed, same CIs).")

    def kwargs(self) -> dict:
        """Keyword arguments of ``compare_metrics``."""
        return dict(unit=self.unit, unit_column=self.patient_column, primary=self.primary, test=self.test,
                    shared_units=self.shared_units, n_boot=self.bootstrap, seed=self.seed)


@dataclass(frozen=True)
class MetricComparison(Mapping[str, GroupComparison]):
    """The comparison of each compared column (a read-only mapping column -> ``GroupComparison``).

    ``lower_is_better`` holds each column's direction from the metric registry (None for descriptive
    statistics and columns the registry does not know), ``skipped`` the columns that could not be compared
    with the reason, ``notes`` sentences for the reader (skipped columns, the reference chosen, the unit's
    fallbacks, patients in two groups). ``unit`` is the unit of analysis and ``unit_column`` the column its
    ids came from (None for frame); ``counts`` has per group the units and frames in the table (``n_units``,
    ``n_frames``; a column's own counts, without its missing values, are in its ``describe``); ``primary`` is
    the primary metric, ``test`` the test against the reference, ``families`` the Holm families (name ->
    metrics, size).
    """

    comparisons: dict[str, GroupComparison]
    reference: str
    groups: list[str]
    lower_is_better: dict[str, bool | None] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unit: str = "frame"
    unit_column: str | None = None
    counts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["group", "n_units", "n_frames"]))
    primary: str | None = None
    test: str = "welch"
    families: dict[str, dict] = field(default_factory=dict)

    def __getitem__(self, column: str) -> GroupComparison:
        return self.comparisons[column]

    def __iter__(self) -> Iterator[str]:
        return iter(self.comparisons)

    def __len__(self) -> int:
        return len(self.comparisons)

    def to_dict(self) -> dict[str, dict]:
        """Column -> ``GroupComparison.to_dict()`` (plain types, full precision, strict JSON: NaN and +/-inf
        are None) with its ``lower_is_better``, ``primary`` (whether it is the primary metric) and the result's
        ``summary()`` (the same document as comparison.json without the file stems)."""
        summary = self.summary()
        return {c: {**cmp.to_dict(keep_infinity=False), "lower_is_better": self.lower_is_better.get(c),
                    "primary": c == self.primary, "summary": summary}
                for c, cmp in self.comparisons.items()}

    def summary(self) -> dict:
        """What holds for every column: unit, unit column, counts per group, primary metric, test, Holm
        families, reference, notes (strict-JSON-ready)."""
        return jsonable({"unit": self.unit, "unit_column": self.unit_column, "reference": self.reference,
                         "groups": self.groups, "counts": self.counts.to_dict("records"), "primary": self.primary,
                         "test": self.test, "families": self.families, "notes": self.notes})

    def vs_reference(self) -> pd.DataFrame:
        """Every column's ``vs_reference`` rows in one table (a ``metric`` column first): the forest plot's data."""
        parts = [cmp.vs_reference.assign(metric=c) for c, cmp in self.comparisons.items()]
        if not parts:
            return pd.DataFrame()
        out = pd.concat(parts, ignore_index=True)
        return out[["metric", *[c for c in out.columns if c != "metric"]]]


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
                    reference: str | None = None, *, unit: str | None = None, unit_column: str | None = None,
                    primary: str | None = None, test: str = "welch", shared_units: str = "split",
                    n_boot: int = 2000, seed: int = 0, group: str = "group",
                    confidence: float = 0.95) -> MetricComparison:
    """Compare the groups of ``scores`` (one row per frame) on each of ``columns``, per unit of analysis.

    Args:
        scores: a tidy table with a ``group`` column and one numeric column per measure (what
            ``medgap quality`` / ``score_collection`` write), with ``path`` and, from a manifest, ``group_id``.
        columns: the columns to compare, or one column name (default: every registered metric's columns in the table, see
            ``metric_columns``).
        reference: the group the effect sizes are against. It must be a group of the table (ComparisonError
            naming the groups otherwise). None: ``"natural"`` when the table has it, else the first group in
            sorted order (said in ``notes``).
        unit: patient, file or frame (``medgap.stats.units``). None: patient when the table has a patient
            column (``group_id`` or ``unit_column``), else file (frame, with a note, without a path column).
        unit_column: the column of patient ids (default ``group_id``).
        primary: the primary metric, one of the compared columns (default: the first).
        test: the test of each group against the reference (welch, mixed, mann-whitney) whose P values are
            Holm-adjusted: over the primary metric's comparisons, and over all secondary metrics' together.
        shared_units: a patient (or file) with rows in two groups: ``split`` (a separate unit in each group,
            said in ``notes``) or ``error`` (ComparisonError naming them).
        n_boot, seed: bootstrap resamples of units and their seed.
        group: the column holding the group labels.
        confidence: level of every confidence interval.

    Returns:
        a ``MetricComparison``: a mapping column -> ``GroupComparison`` for each column that could be
        compared (a column where fewer than 2 groups have a value is skipped and named in ``skipped`` and
        ``notes``; it may be empty when every column was skipped).

    Raises:
        ComparisonError: no ``group`` column, a requested column missing, no metric column in the table, an
            unknown reference group, unit or test, a primary metric that is not compared, or a patient in two
            groups with ``shared_units='error'``.
    """
    check_confidence(confidence)  # here, not once per column as a reason to skip it
    if test not in TESTS:
        raise ComparisonError(f"test {test!r} is not one of {', '.join(TESTS)}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ComparisonError(f"n_boot must be a positive number of resamples (e.g. 2000), got {n_boot!r}")
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
    if primary is not None and primary not in directions:
        raise ComparisonError(f"primary metric {primary!r} is not among the compared columns "
                              f"({', '.join(map(repr, directions))})")
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
    units = resolve_units(scores, unit, unit_column, group=group, shared_units=shared_units)
    notes.extend(units.notes)
    table = scores.assign(**{UNIT_COLUMN: units.ids})
    labelled = table[table[group].notna()]
    counts = (labelled.groupby(labelled[group].astype(str)).agg(n_units=(UNIT_COLUMN, "nunique"),
                                                                 n_frames=(UNIT_COLUMN, "size"))
              .reset_index().rename(columns={group: "group"}))
    comparisons: dict[str, GroupComparison] = {}
    skipped: dict[str, str] = {}
    for c in directions:
        try:
            comparisons[c] = compare_groups(table, c, group, reference=chosen or None, confidence=confidence,
                                            units=None if units.unit == "frame" else UNIT_COLUMN,
                                            unit=units.unit, test=test, n_boot=n_boot, seed=seed)
        except ValueError as e:  # fewer than 2 groups with values, no value in the reference, not numeric
            skipped[c] = str(e)
            notes.append(f"skipped {c}: {e}")
    for c, cmp in comparisons.items():
        if cmp.mixed is not None and (cmp.mixed.error or not cmp.mixed.converged):
            notes.append(f"{c}: " + next(n for n in cmp.notes if n.startswith("the mixed model")))
    if primary is None and comparisons:
        primary = next(iter(comparisons))
    families = _adjust(comparisons, primary, test, chosen) if comparisons else {}
    return MetricComparison(comparisons=comparisons, reference=chosen, groups=groups,
                            lower_is_better={c: d for c, d in directions.items() if c in comparisons},
                            skipped=skipped, notes=notes, unit=units.unit, unit_column=units.column,
                            counts=counts, primary=primary if primary in comparisons else None, test=test,
                            families=families)


def _adjust(comparisons: dict[str, GroupComparison], primary: str | None, test: str,
            reference: str) -> dict[str, dict]:
    """Holm over the primary metric's comparisons with the reference (``compare_groups`` did it) and over
    every secondary metric's together (redone here, replacing ``p_holm`` in ``comparisons`` in place)."""
    families = {}
    if primary in comparisons:
        families["primary"] = {"metrics": [primary], "size": int(comparisons[primary].vs_reference.holm_size.max()
                                                                 if len(comparisons[primary].vs_reference) else 0),
                               "method": "holm", "test": test, "reference": reference}
        name = f"primary: {primary}, {test} vs {reference}"
        comparisons[primary] = replace(comparisons[primary],
                                       vs_reference=with_holm(comparisons[primary].vs_reference, name))
    secondary = [c for c in comparisons if c != primary]
    if secondary:
        p = np.concatenate([comparisons[c].vs_reference.p.to_numpy(np.float64) for c in secondary])
        adjusted = holm(p)
        name = f"secondary: {', '.join(secondary)}, {test} vs {reference}"
        start = 0
        for c in secondary:
            n = len(comparisons[c].vs_reference)
            table = with_holm(comparisons[c].vs_reference, name, adjusted[start:start + n])
            table["holm_size"] = int(np.isfinite(adjusted).sum())
            comparisons[c] = replace(comparisons[c], vs_reference=table)
            start += n
        families["secondary"] = {"metrics": secondary, "size": int(np.isfinite(adjusted).sum()), "method": "holm",
                                 "test": test, "reference": reference}
    return families
