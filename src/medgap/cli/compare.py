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
from medgap.cli._common import EXIT_OK, EXIT_USAGE, UsageError, console, out_console
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
    if not path.exists():
        raise UsageError(f"{path}: no such scores table; make one with `medgap quality ... --out {path}`")
    return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)


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
                             f"{', '.join(scores.columns)}")
        groups = set(scores.group.dropna().astype(str))
        reference = self.reference if self.reference in groups else None
        result = compare_columns(scores, columns, reference)
        write_comparisons(result, self.out_dir or self.scores.parent)
        return result


def compare_columns(scores: pd.DataFrame, columns: list[str], reference: str | None) -> dict[str, GroupComparison]:
    """compare_groups for each column; a column with fewer than 2 groups holding values is skipped, said so."""
    result = {}
    for c in columns:
        try:
            result[c] = compare_groups(scores, c, "group", reference=reference)
        except ValueError as e:
            console.print(f"[yellow]skipped[/] {c}: {e}", soft_wrap=True)
    return result


def write_comparisons(result: dict[str, GroupComparison], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for col, cmp in result.items():
        cmp.describe.to_csv(out_dir / f"{col}_groups.csv", index=False)
        cmp.tukey.to_csv(out_dir / f"{col}_tukey.csv", index=False)
        cmp.games_howell.to_csv(out_dir / f"{col}_games_howell.csv", index=False)
        cmp.effects.to_csv(out_dir / f"{col}_effect_sizes.csv", index=False)
    (out_dir / "comparison.json").write_text(json.dumps({c: r.to_dict() for c, r in result.items()}, indent=1,
                                                         default=float))


def print_comparison(cmp: GroupComparison) -> None:
    table = paper_table(cmp)
    t = Table(title=cmp.value)
    for c in table.columns:
        t.add_column(str(c), justify="left" if c == "group" else "right")
    for row in table.itertuples(index=False):
        t.add_row(*map(str, row))
    out_console.print(t)
    w, k = cmp.welch, cmp.kruskal
    out_console.print(anova_line(cmp))
    welch = (f"F({w.df1:.0f}, {w.df2:.1f}) = {w.F:.2f}, {format_p(w.p)}" if np.isfinite(w.F)
             else "n/a (a group has zero variance or one value)")
    out_console.print(f"Welch's ANOVA: {welch}; Kruskal-Wallis: H({k.df}) = {k.H:.2f}, {format_p(k.p)}")


@app.command("compare")
def compare_command(
    scores: Path = typer.Argument(..., help="Scores table written by `medgap quality` (.parquet or .csv)."),
    metric: list[str] = typer.Option([], "--metric", "-m", help="Score column (repeatable; default: all)."),
    reference: str = typer.Option("natural", help="Reference group for Cohen's d (default: natural)."),
    out_dir: Path = typer.Option(None, help="Folder for the CSV/JSON outputs (default: beside SCORES)."),
) -> None:
    """Compare groups: mean (95% CI), one-way and Welch ANOVA, Kruskal-Wallis, Tukey HSD, Games-Howell and
    Cohen's d / Hedges' g against the reference group, printed and written as CSV/JSON."""
    try:
        result = CompareConfig(scores, metric, reference, out_dir).run()
    except (UsageError, ValueError, KeyError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_USAGE) from None
    for cmp in result.values():
        print_comparison(cmp)
    console.print(f"CSV and JSON: {out_dir or scores.parent}", soft_wrap=True)
    raise typer.Exit(EXIT_OK)
