"""``medgap study``: score a collection, compare the groups, write the HTML report (the main job)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import typer

from medgap.cli import app
from medgap.cli._common import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, console
from medgap.cli.compare import compare_columns, print_comparison, write_comparisons
from medgap.cli.quality import QualityConfig, _jsonable
from medgap.io import CollectionError
from medgap.quality import UnknownMetricError
from medgap.report import write_report


@dataclass
class StudyConfig:
    quality: QualityConfig = field(default_factory=QualityConfig)
    out: Path = Path("medgap-study")
    reference: str = "natural"

    def run(self) -> tuple[int, Path | None]:
        self.out.mkdir(parents=True, exist_ok=True)
        self.quality.out = self.out / "scores.parquet"
        (self.out / "config.json").write_text(json.dumps(
            {"quality": _jsonable(asdict(self.quality)), "out": str(self.out), "reference": self.reference}, indent=1))
        code, summary = self.quality.run()
        if code == EXIT_INTERRUPTED or summary is None:
            return code, None
        scores = pd.read_parquet(self.quality.out)
        columns = self.quality.score_columns
        groups = set(scores.group.dropna().astype(str))
        reference = self.reference if self.reference in groups else None
        comparisons = compare_columns(scores, columns, reference)
        write_comparisons(comparisons, self.out)
        for cmp in comparisons.values():
            print_comparison(cmp)
        report = write_report(
            self.out / "report.html",
            scores,
            comparisons,
            lower_is_better=self.quality.lower_is_better,
            run_info={"files": summary.files_total},
        )
        console.print(f"Report: {report}", soft_wrap=True)
        return code, report


@app.command(
    "study",
    epilog=(
        "Examples:\n\n"
        "  medgap study                                      # the embedded default -> medgap-study/report.html\n\n"
        "  medgap study --group natural=imagenet/ --group cxr=cxr/ --group pocus=lus/ --out runs/gap\n\n"
        "  medgap study --manifest MANIFEST.csv --group-column modality --workers 2 --out runs/gap\n\n"
        "A rerun with the same --out reuses the scores already computed."
    ),
)
def study_command(
    paths: list[Path] = typer.Argument(None, help="Files or folders; a folder's first-level subfolders are the groups."),
    group: list[str] = typer.Option([], "--group", "-g", help="NAME=PATH (repeatable)."),
    manifest: Path = typer.Option(None, help="CSV manifest with path and group columns."),
    group_column: str = typer.Option("group", help="Manifest column holding the group label."),
    path_column: str = typer.Option("path", help="Manifest column holding the file path."),
    metric: list[str] = typer.Option(["brisque"], "--metric", "-m",
                                     help="Metric (brisque, piqe, niqe, imagestats, colourfulness; NAME:KEY=VALUE "
                                          "for a parameter). Repeatable."),
    reference: str = typer.Option("natural", help="Reference group for the effect sizes."),
    out: Path = typer.Option(Path("medgap-study"), "--out", "-o", help="Run folder (scores, CSV/JSON, report.html)."),
    workers: int = typer.Option(1, "--workers", "-j", help="Worker processes for scoring."),
    video_stride: int = typer.Option(1, help="Score every Nth video frame."),
) -> None:
    """The domain-gap study in one command: quality scores for every image, group statistics (ANOVA, post hoc
    tests, Cohen's d vs the reference group) and a self-contained HTML report."""
    q = QualityConfig(paths=list(paths or []), groups=group, manifest=manifest, group_column=group_column,
                      path_column=path_column, metrics=metric, workers=workers, video_stride=video_stride)
    try:
        code, _ = StudyConfig(q, out, reference).run()
    except (UsageError, UnknownMetricError, CollectionError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(code if code in (EXIT_OK, EXIT_FAILURES, EXIT_INTERRUPTED) else EXIT_USAGE)
