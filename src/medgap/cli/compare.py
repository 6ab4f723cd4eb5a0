"""``medgap compare``: group statistics of every metric column of a scores table (the work is
``medgap.stats.compare_metrics``; the files are ``medgap.report.comparison``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table

from medgap._options import check_choices, option
from medgap.cli import app
from medgap.cli._config import config_command
from medgap.cli._common import (
    EXIT_CODES_HELP,
    EXIT_OK,
    UsageError,
    check_writable_folder,
    console,
    out_console,
    plain,
)
from medgap.report.comparison import ComparisonExistsError, write_comparisons
from medgap.stats import (
    ComparisonError,
    ComparisonOptions,
    GroupComparison,
    MetricComparison,
    anova_line,
    check_reference,
    compare_metrics,
    format_p,
    mixed_model_line,
    paper_table,
    reference_tests_line,
    unit_line,
)

FORMATS = ("text", "markdown", "json")


def read_scores(path: Path) -> pd.DataFrame:
    """A scores table (.csv, else parquet) with a ``group`` column; UsageError naming the file otherwise."""
    if not path.exists():
        raise UsageError(f"{path}: no such scores table; make one with `medgap quality ... --out {path}`")
    try:
        scores = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise UsageError(f"{path}: not a readable scores table ({type(e).__name__}: {e}); give the .parquet or "
                         ".csv that `medgap quality` wrote") from None
    if "group" not in scores:
        raise UsageError(f"{path}: no 'group' column to compare by; its columns are "
                         f"{', '.join(map(str, scores.columns)) or '(none)'}. Rename the grouping column to "
                         "'group', or score with `medgap quality --group NAME=PATH` / `--manifest`")
    return scores


def default_out_dir(scores: Path) -> Path:
    """``<folder of SCORES>/<stem of SCORES>-comparison``: a folder of its own per scores table, so comparing
    two tables of one folder never mixes their files."""
    return scores.parent / f"{scores.stem}-comparison"


@dataclass
class CompareConfig:
    scores: Path = option(help="Scores table written by `medgap quality` (.parquet or .csv).", argument=True)
    metrics: list[str] = option(help="Score column (repeatable; default: every registered metric's columns in the "
                                     "table).", default_factory=list, flags=("--metric", "-m"), metavar="COLUMN")
    reference: str | None = option(None, "Reference group for Cohen's d (default: natural when the table has it, "
                                         "else the first group, said so); must be a group of the table.")
    out_dir: Path | None = option(None, "Folder for the CSV/JSON outputs (default: <SCORES stem>-comparison/ "
                                        "beside SCORES).")
    overwrite: bool = option(False, "Replace a different comparison already in the output folder (refused "
                                    "otherwise).")
    format: str = option("text", "Tables on stdout as text, markdown or json.", choices=FORMATS)
    comparison: ComparisonOptions = field(default_factory=ComparisonOptions)
    """The unit of analysis, primary metric, test and bootstrap (their options are flattened into the command's)."""

    def run(self) -> MetricComparison:
        check_choices(self, UsageError)
        scores = read_scores(self.scores)
        missing = [c for c in self.metrics if c not in scores]
        if missing:
            raise UsageError(f"{self.scores}: no column {', '.join(map(repr, missing))}; its columns are "
                             f"{', '.join(map(str, scores.columns))}")
        if self.reference is not None:  # before the output folder is made
            try:
                check_reference(self.reference, sorted(set(scores.group.dropna().astype(str))))
            except ComparisonError as e:
                raise UsageError(f"--reference {self.reference}: {e}") from None
        out_dir = self.output_dir()
        check_writable_folder(out_dir)  # before minutes of statistics on a large table
        try:
            result = compare_metrics(scores, self.metrics or None, self.reference, **self.comparison.kwargs())
        except ComparisonError as e:
            raise UsageError(f"{self.scores}: {e}") from None
        for note in result.notes:
            console.print(f"[yellow]note:[/] {plain(note, newlines=True)}", soft_wrap=True)
        if not result:
            raise UsageError(f"{self.scores}: nothing to compare: every column was skipped (reasons above); "
                             "comparing needs at least 2 groups with values")
        try:
            stems = write_comparisons(result, out_dir, overwrite=self.overwrite)
        except ComparisonExistsError as e:
            raise UsageError(f"{e}. Pass --overwrite to replace it, or --out-dir for another folder") from None
        for col, stem in stems.items():
            if stem != col:
                console.print(f"column {plain(repr(col))} is written as {plain(stem)}_*.csv (a safe file name)",
                              soft_wrap=True)
        return result

    def output_dir(self) -> Path:
        return self.out_dir or default_out_dir(self.scores)


def _stat_lines(cmp: GroupComparison) -> list[str]:
    w, k = cmp.welch, cmp.kruskal
    welch = (f"F({w.df1:.0f}, {w.df2:.1f}) = {w.F:.2f}, {format_p(w.p)}" if np.isfinite(w.F)
             else "n/a (a group has zero variance or one value)")
    lines = [unit_line(cmp), anova_line(cmp),
             f"Welch's ANOVA: {welch}; Kruskal-Wallis: H({k.df}) = {k.H:.2f}, {format_p(k.p)}",
             mixed_model_line(cmp), reference_tests_line(cmp)]
    return [line for line in lines if line]


def _title(column: str, lower_is_better: bool | None) -> str:
    return column + {True: " (lower is better)", False: " (higher is better)"}.get(lower_is_better, "")


def print_comparison(cmp: GroupComparison, lower_is_better: bool | None = None) -> None:
    """One column's paper-style table and test lines as rich text on stdout (never wrapped off a terminal)."""
    table = paper_table(cmp)
    t = Table(title=plain(_title(cmp.value, lower_is_better)))
    for c in table.columns:
        t.add_column(plain(c), justify="left" if c == "group" else "right")
    for row in table.itertuples(index=False):
        t.add_row(*map(plain, row))
    out_console.print(t)
    for line in _stat_lines(cmp):
        out_console.print(plain(line), soft_wrap=True)


def _markdown_cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(result: MetricComparison) -> str:
    """The tables as Markdown (a heading, a pipe table and the test lines per column)."""
    parts = []
    for col, cmp in result.items():
        table = paper_table(cmp)
        right = ["---" if c == "group" else "---:" for c in table.columns]
        rows = [list(table.columns), right, *[list(r) for r in table.itertuples(index=False)]]
        body = "\n".join("| " + " | ".join(map(_markdown_cell, r)) + " |" for r in rows)
        lines = "\n\n".join(_stat_lines(cmp))
        parts.append(f"## {_markdown_cell(_title(col, result.lower_is_better.get(col)))}\n\n{body}\n\n{lines}\n")
    return "\n".join(parts)


def print_result(result: MetricComparison, fmt: str = "text") -> None:
    """Print every compared column on stdout as ``fmt`` (text, markdown or json: the JSON is the same
    document as comparison.json, one object keyed by column)."""
    if fmt == "json":
        print(json.dumps(result.to_dict(), indent=1, default=float))
    elif fmt == "markdown":
        print(markdown(result), end="")
    else:
        for col, cmp in result.items():
            print_comparison(cmp, result.lower_is_better.get(col))


def _run(config: CompareConfig) -> int:
    result = config.run()
    print_result(result, config.format)
    console.print(f"CSV and JSON: {plain(config.output_dir())}", soft_wrap=True)
    return EXIT_OK


config_command(
    app, CompareConfig, _run, name="compare",
    help="Compare groups: mean (95% CI), one-way and Welch ANOVA, Kruskal-Wallis, Tukey HSD, Games-Howell and "
         "Cohen's d / Hedges' g against the reference group, printed and written as CSV/JSON.",
    epilog=(
        "Examples:\n\n"
        "  medgap compare scores.parquet                     # every metric column -> scores-comparison/\n\n"
        "  medgap compare scores.csv --metric brisque --reference natural --out-dir stats/\n\n"
        "  medgap compare scores.parquet --format json > stats.json\n\n"
        "Files per column: <column>_groups.csv, _tukey.csv, _games_howell.csv, _effect_sizes.csv and "
        "comparison.json (a column name that is not a safe file name is written under a sanitised one, "
        "printed), in --out-dir, by default a folder <SCORES stem>-comparison/ beside SCORES. A folder holding "
        "a different comparison is refused unless --overwrite (the same comparison again is rewritten). "
        "Tables print on stdout, notes and paths on stderr; off a terminal no line is wrapped.\n\n"
        + EXIT_CODES_HELP
    ),
)
