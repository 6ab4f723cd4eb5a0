"""``medgap validate``: how well quality metrics track human ratings (the work is :func:`medgap.validate`; the
files are ``medgap.report.validity``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medgap._options import check_choices, option
from medgap.cli import app
from medgap.cli._common import (
    parse_metric,
    EXIT_CODES_HELP,
    EXIT_FAILURES,
    EXIT_OK,
    UsageError,
    check_writable_folder,
    console,
    out_console,
    plain,
)
from medgap.cli._config import config_command
from medgap.stats.format import format_ci

INTERVALS = ("bca", "percentile")


@dataclass
class ValidateConfig:
    ratings: Path = option(help="CSV with one row per image: its path (relative to the CSV, or to the nearest "
                                "folder above it that holds every listed file, or to --root) and its mean opinion "
                                "score (higher = better).", metavar="CSV")
    metrics: list[str] = option(help="Metric to validate: NAME or NAME:KEY=VALUE for a parameter (niqe:model=my.npz); repeatable.", default_factory=lambda: ["brisque", "niqe",
                                                                                                  "piqe"],
                                flags=("--metric", "-m"), metavar="NAME[:KEY=VALUE]")
    out: Path = option(Path("validity"), "Folder for validity.csv, validity.json, validity_scores.csv and "
                                         "validity.png.", flags=("-o",))
    path_column: str = option("path", "Ratings column holding the image path.")
    mos_column: str = option("mos", "Ratings column holding the mean opinion score.")
    root: Path | None = option(None, "Folder the image paths are relative to (default: found from the CSV's "
                                     "folder upwards).")
    confidence: float = option(0.95, "Confidence level of the bootstrap intervals.")
    resamples: int = option(1000, "Bootstrap resamples of the images (the logistic mapping is refitted in each; "
                                  "0: no intervals).")
    interval: str = option("bca", "Bootstrap interval: bca (bias-corrected and accelerated) or percentile.",
                           choices=INTERVALS)
    seed: int = option(0, "Seed of the bootstrap (same seed and data, same intervals).")
    workers: int = option(1, "Worker processes for scoring.", flags=("-j",))

    def check(self) -> None:
        """UsageError for an option out of range, before any image is scored."""
        check_choices(self, UsageError)
        if not 0 < self.confidence < 1:
            raise UsageError(f"--confidence must be between 0 and 1 (e.g. 0.95), got {self.confidence}")
        if self.resamples < 0:
            raise UsageError(f"--resamples must be 0 (no intervals) or more, got {self.resamples}")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if not self.metrics:
            raise UsageError("give at least one --metric")

    def run(self):
        """Score, compute the validity, write the files; returns the :class:`medgap.validation.Validation`."""
        from medgap.report.validity import write_validity
        from medgap.validation import validate

        self.check()
        check_writable_folder(self.out)  # before minutes of scoring
        columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("score", total=None)

            def progress(done: int, total: int, _items: int) -> None:
                bar.update(task, completed=done, total=total)

            # RatingsError / ValidityError are medgap ValueErrors: "error: ..." and exit 2 in medgap.cli
            result = validate(self.ratings, _metrics(self.metrics), path_column=self.path_column, mos_column=self.mos_column,
                              root=self.root, confidence=self.confidence, n_resamples=self.resamples,
                              method=self.interval, seed=self.seed, workers=self.workers, progress=progress)
        self.files = write_validity(result, self.out)
        return result


def _metrics(specs: list[str]) -> list:
    """``NAME`` or ``NAME:KEY=VALUE,...`` (e.g. ``niqe:model=ct.npz``), as ``medgap quality --metric`` takes."""
    from medgap.quality import create_metric

    out = []
    for spec in specs:
        name, params = parse_metric(spec)
        try:
            out.append(create_metric(name, **params))
        except (TypeError, ValueError) as e:
            raise UsageError(f"--metric {spec}: {e}") from None
    return out


def print_validity(validation) -> None:
    """The table on stdout: one row per metric, each statistic with its CI."""
    res = validation.result
    pct = round(100 * res.confidence)
    t = Table(title=plain(f"Validity against {validation.mos_column} ({pct}% {res.method} bootstrap CIs over "
                          f"images, {res.n_resamples} resamples)"))
    for c in ("metric", "direction", "n", "SROCC", "KROCC", "PLCC", "RMSE", "mapping"):
        t.add_column(c, justify="left" if c in ("metric", "direction", "mapping") else "right")
    for mv in res:
        t.add_row(plain(mv.metric), mv.direction, str(mv.n), *(format_ci(e.value, e.low, e.high, 3) for e in
                  (mv.srocc, mv.krocc, mv.plcc, mv.rmse)), mv.fit.kind)
    out_console.print(t)
    out_console.print("SROCC/KROCC are signed in each metric's direction (positive: orders the images as the raters "
                      "did); PLCC/RMSE are after the fitted monotonic logistic (VQEG), RMSE in MOS units.",
                      soft_wrap=True)


def _run(config: ValidateConfig) -> int:
    result = config.run()
    for note in result.notes + [f"{mv.metric}: {mv.fit.note}" for mv in result.result if mv.fit.note]:
        console.print(f"[yellow]note:[/] {plain(note)}", soft_wrap=True)
    print_validity(result)
    console.print(f"Files: {plain(config.out)} (validity.csv, validity.json, validity_scores.csv, validity.png)",
                  soft_wrap=True)
    unscored = any(result.data[c].isna().any() for c in result.score_columns.values())
    return EXIT_FAILURES if unscored else EXIT_OK  # 1: some rated images have no score (noted; left out)


config_command(
    app, ValidateConfig, _run, name="validate",
    help="Validate quality metrics against human ratings: SROCC, KROCC, and PLCC/RMSE after the VQEG logistic "
         "mapping, with bootstrap CIs over images, and a scatter plot per metric with the fitted curve.",
    epilog=(
        "Examples:\n\n"
        "  medgap validate --ratings clive/mos.csv                       # brisque, niqe, piqe -> validity/\n\n"
        "  medgap validate --ratings ratings.csv --metric brisque --mos-column dmos_inv --out val/ -j 2\n\n"
        + EXIT_CODES_HELP
    ),
)
