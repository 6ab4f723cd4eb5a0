"""``medgap study``: score a collection, compare the groups, write the HTML report (the main job)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import typer

from medgap._json import jsonable
from medgap.io import DEFAULT_MAX_PIXELS
from medgap.cli import app
from medgap.cli._common import EXIT_CODES_HELP, EXIT_INTERRUPTED, UsageError, console, plain, writing
from medgap.cli.compare import print_result
from medgap.cli.quality import QualityConfig
from medgap.report import write_report
from medgap.report.comparison import write_comparisons
from medgap.stats import ComparisonError, check_reference, compare_metrics


@dataclass
class StudyConfig:
    quality: QualityConfig = field(default_factory=QualityConfig)
    out: Path = Path("medgap-study")
    reference: str | None = None
    """Reference group for the effect sizes (default: natural when the collection has it, else the first group,
    said so); a name that is not a group of the collection is refused before scoring."""

    def run(self) -> tuple[int, Path | None]:
        self.quality.out = self.out / "scores.parquet"
        self.quality.validate()  # before the run folder and config.json are written
        if self.reference is not None:  # the groups are known from the sources: refuse before scoring
            sources, _ = self.quality.sources()
            try:
                check_reference(self.reference, sorted({s.group for s in sources}))
            except ComparisonError as e:
                raise UsageError(f"--reference {self.reference}: {e}") from None
        self.out.mkdir(parents=True, exist_ok=True)
        with writing(self.out / "config.json"):
            (self.out / "config.json").write_text(json.dumps(
                {"quality": jsonable(asdict(self.quality)), "out": str(self.out), "reference": self.reference},
                indent=1))
        code, summary = self.quality.run()
        if code == EXIT_INTERRUPTED or summary is None:
            return code, None
        scores = pd.read_parquet(self.quality.out)
        comparisons = compare_metrics(scores, self.quality.score_columns, self.reference)
        for note in comparisons.notes:
            console.print(f"[yellow]note:[/] {plain(note, newlines=True)}", soft_wrap=True)
        write_comparisons(comparisons, self.out, overwrite=True)  # the run folder's own comparison, redone
        print_result(comparisons)
        with writing(self.out / "report.html"):
            report = write_report(
                self.out / "report.html",
                scores,
                dict(comparisons),
                lower_is_better=self.quality.lower_is_better,
                run_info={"files": summary.files_total},
            )
        console.print(f"Report: {plain(report)}", soft_wrap=True)
        return code, report


@app.command(
    "study",
    epilog=(
        "Examples:\n\n"
        "  medgap study                                      # the embedded default -> medgap-study/report.html\n\n"
        "  medgap study --group natural=imagenet/ --group cxr=cxr/ --group pocus=lus/ --out runs/gap\n\n"
        "  medgap study --manifest MANIFEST.csv --group-column modality --workers 2 --out runs/gap\n\n"
        "A rerun with the same --out reuses the scores already computed.\n\n" + EXIT_CODES_HELP
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
    reference: str = typer.Option(None, help="Reference group for the effect sizes (default: natural when the "
                                             "collection has it, else the first group); must be a group of it."),
    out: Path = typer.Option(Path("medgap-study"), "--out", "-o", help="Run folder (scores, CSV/JSON, report.html)."),
    workers: int = typer.Option(1, "--workers", "-j", help="Worker processes for scoring (1 or more)."),
    video_stride: int = typer.Option(1, help="Score every Nth video frame."),
    nifti_axis: int = typer.Option(2, help="NIfTI slicing axis (0, 1 or 2)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, help="Largest frame decoded, in pixels (0: no limit); "
                                                             "larger files are refused before decoding."),
    save_every: float = typer.Option(5.0, help="Seconds between saves of finished rows: a killed run loses at most "
                                               "this much work."),
) -> None:
    """The domain-gap study in one command: quality scores for every image, group statistics (ANOVA, post hoc
    tests, Cohen's d vs the reference group) and a self-contained HTML report."""
    q = QualityConfig(paths=list(paths or []), groups=group, manifest=manifest, group_column=group_column,
                      path_column=path_column, metrics=metric, workers=workers, video_stride=video_stride,
                      nifti_axis=nifti_axis, save_every=save_every, max_pixels=max_pixels)
    code, _ = StudyConfig(q, out, reference).run()  # errors become messages and exit codes in medgap.cli
    raise typer.Exit(code)
