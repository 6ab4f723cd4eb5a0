"""``medgap compare``: group statistics of every metric column of a scores table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from medgap.cli import app
from medgap.cli._common import (
    EXIT_CODES_HELP,
    EXIT_OK,
    UsageError,
    check_writable_folder,
    console,
    inside,
    out_console,
    plain,
    safe_file_stem,
    writing,
)
from medgap.quality import get_metric_info, list_metrics
from medgap.stats import GroupComparison, anova_line, compare_groups, format_p, paper_table


def score_columns(scores: pd.DataFrame) -> list[str]:
    """Columns of registered metrics present in the table: the score of each quality metric, every column of
    descriptive statistics."""
    out = []
    for name in list_metrics():
        info = get_metric_info(name)
        cols = info.columns if info.kind == "statistic" else info.columns[:1]
        out += [c for c in cols if c in scores]
    return out


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


@dataclass
class CompareConfig:
    scores: Path
    metrics: list[str] = field(default_factory=list)
    """Score columns to compare (default: every registered metric's score column in the table)."""
    reference: str | None = "natural"
    """Reference group for the effect sizes (falls back to the first group when absent)."""
    out_dir: Path | None = None
    """Where to write CSV/JSON (default: beside the scores table)."""

    def run(self) -> dict[str, GroupComparison]:
        scores = read_scores(self.scores)
        columns = self.metrics or score_columns(scores)
        missing = [c for c in columns if c not in scores]
        if missing or not columns:
            raise UsageError(f"{self.scores}: no column {missing or 'with a known metric'}; columns are "
                             f"{', '.join(map(str, scores.columns))}")
        out_dir = self.out_dir or self.scores.parent
        check_writable_folder(out_dir)  # before minutes of statistics on a large table
        groups = set(scores.group.dropna().astype(str))
        reference = self.reference if self.reference in groups else None
        result = compare_columns(scores, columns, reference)
        if not result:
            raise UsageError(f"{self.scores}: nothing to compare: every column was skipped (reasons above); "
                             "comparing needs at least 2 groups with values")
        write_comparisons(result, out_dir)
        return result


def compare_columns(scores: pd.DataFrame, columns: list[str], reference: str | None) -> dict[str, GroupComparison]:
    """compare_groups for each column; a column with fewer than 2 groups holding values is skipped, said so."""
    result = {}
    for c in columns:
        try:
            result[c] = compare_groups(scores, c, "group", reference=reference)
        except ValueError as e:
            console.print(f"[yellow]skipped[/] {plain(c)}: {plain(e, newlines=True)}", soft_wrap=True)
    return result


def comparison_file_stems(columns: list[str]) -> dict[str, str]:
    """The file-name stem for each column: the name itself when it is a safe file name, else a sanitised one
    (a column named ``../../x`` must not write outside the output folder)."""
    taken = {"comparison"}
    return {c: safe_file_stem(c, taken) for c in columns}


def write_comparisons(result: dict[str, GroupComparison], out_dir: Path) -> dict[str, str]:
    """``<stem>_groups.csv``, ``_tukey``, ``_games_howell``, ``_effect_sizes`` per column and comparison.json
    (keyed by the real column names, each with its ``file_stem``), all directly inside ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = comparison_file_stems(list(result))
    for col, cmp in result.items():
        stem = stems[col]
        if stem != col:
            console.print(f"column {plain(repr(col))} is written as {plain(stem)}_*.csv (a safe file name)",
                          soft_wrap=True)
        for suffix, table in (("groups", cmp.describe), ("tukey", cmp.tukey), ("games_howell", cmp.games_howell),
                              ("effect_sizes", cmp.effects)):
            path = inside(out_dir, f"{stem}_{suffix}.csv")
            with writing(path):
                table.to_csv(path, index=False)
    path = inside(out_dir, "comparison.json")
    with writing(path):
        path.write_text(json.dumps({c: {**r.to_dict(), "file_stem": stems[c]} for c, r in result.items()},
                                   indent=1, default=float))
    return stems


def print_comparison(cmp: GroupComparison) -> None:
    table = paper_table(cmp)
    t = Table(title=plain(cmp.value))
    for c in table.columns:
        t.add_column(plain(c), justify="left" if c == "group" else "right")
    for row in table.itertuples(index=False):
        t.add_row(*map(plain, row))
    out_console.print(t)
    w, k = cmp.welch, cmp.kruskal
    out_console.print(plain(anova_line(cmp)))
    welch = (f"F({w.df1:.0f}, {w.df2:.1f}) = {w.F:.2f}, {format_p(w.p)}" if np.isfinite(w.F)
             else "n/a (a group has zero variance or one value)")
    out_console.print(plain(f"Welch's ANOVA: {welch}; Kruskal-Wallis: H({k.df}) = {k.H:.2f}, {format_p(k.p)}"))


@app.command(
    "compare",
    epilog=(
        "Examples:\n\n"
        "  medgap compare scores.parquet                     # every metric column, CSV/JSON beside it\n\n"
        "  medgap compare scores.csv --metric brisque --reference natural --out-dir stats/\n\n"
        "Files per column: <column>_groups.csv, _tukey.csv, _games_howell.csv, _effect_sizes.csv and "
        "comparison.json (a column name that is not a safe file name is written under a sanitised one, "
        "printed).\n\n" + EXIT_CODES_HELP
    ),
)
def compare_command(
    scores: Path = typer.Argument(..., help="Scores table written by `medgap quality` (.parquet or .csv)."),
    metric: list[str] = typer.Option([], "--metric", "-m", help="Score column (repeatable; default: all)."),
    reference: str = typer.Option("natural", help="Reference group for Cohen's d (default: natural)."),
    out_dir: Path = typer.Option(None, help="Folder for the CSV/JSON outputs (default: beside SCORES)."),
) -> None:
    """Compare groups: mean (95% CI), one-way and Welch ANOVA, Kruskal-Wallis, Tukey HSD, Games-Howell and
    Cohen's d / Hedges' g against the reference group, printed and written as CSV/JSON."""
    result = CompareConfig(scores, metric, reference, out_dir).run()
    for cmp in result.values():
        print_comparison(cmp)
    console.print(f"CSV and JSON: {plain(out_dir or scores.parent)}", soft_wrap=True)
    raise typer.Exit(EXIT_OK)
