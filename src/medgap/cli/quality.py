"""``medgap quality``: score every image/frame of a collection with no-reference quality metrics."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from medgap.cli import app
from medgap.cli._config import config_command
from medgap.cli._common import (
    EXIT_CODES_HELP,
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    console,
    out_console,
    parse_group,
    check_writable_folder,
    parse_metric,
    plain,
)
from medgap._json import jsonable
from medgap._options import check_choices, option
from medgap.io import DEFAULT_MAX_PIXELS, Display, Source, collect, embedded_default
from medgap.io.collection import SkippedFile, summarise_skipped
from medgap.segment.roi import roi_source

if TYPE_CHECKING:  # imported in run(): with --workers N the fork server starts first and imports in parallel
    import pandas as pd
    from rich.table import Table

    from medgap.scoring import ScoreSummary


@dataclass
class QualityConfig:
    """``medgap quality``: with no paths, groups or manifest, the embedded default collection is scored."""

    paths: list[Path] = option(help="Files or folders; a folder's first-level subfolders are the groups.",
                               default_factory=list, argument=True)
    groups: list[str] = option(help="NAME=PATH: everything under PATH is group NAME (repeatable).",
                               default_factory=list, flags=("--group", "-g"), metavar="NAME=PATH")
    manifest: Path | None = option(None, "CSV manifest: a path column (relative to the CSV) and a group column; "
                                         "other columns are copied to the rows.")
    group_column: str = option("group", "Manifest column holding the group label.")
    path_column: str = option("path", "Manifest column holding the file path.")
    metrics: list[str] = option(help="Metric: brisque, piqe, niqe, imagestats, colourfulness; NAME:KEY=VALUE passes "
                                     "a parameter (niqe:model=my.npz). Repeatable.",
                                default_factory=lambda: ["brisque"], flags=("--metric", "-m"), metavar="NAME[:KEY=VALUE]")
    out: Path | None = option(None, "Output table (.parquet or .csv); rerunning with the same --out resumes it.",
                              flags=("-o",), show_default="scores.parquet")
    format: str | None = option(None, "parquet or csv (default: from the suffix of --out).",
                                choices=("parquet", "csv"))
    workers: int = option(1, "Worker processes (1: in-process, a reader thread decoding ahead).",
                          flags=("-j",), resumable=True)
    scheduler: str | None = option(None, "ADDRESS of an existing Dask scheduler (tcp://HOST:8786): score on its "
                                         "workers (they need medgap and the files at the same paths); the table "
                                         "is written here. Needs pip install 'medgap[cluster]'.",
                                   metavar="ADDRESS", resumable=True)
    dask_local: int | None = option(None, "Score on a Dask LocalCluster of N worker processes on this machine. "
                                          "Needs pip install 'medgap[cluster]'.", metavar="N", resumable=True)
    device: str | None = option(None, "auto (CUDA when there is one), cpu, cuda or cuda:N: where network metrics "
                                      "run, and BRISQUE/NIQE through their batched torch backend (equal scores). "
                                      "Not given: network metrics on auto, hand-crafted metrics on CPU workers "
                                      "(no torch).", resumable=True, show_default="auto for network metrics")
    batch_size: int | None = option(None, "Frames per forward pass of a network metric (default: the metric's "
                                          "own).", show_default="the metric's")
    video_stride: int = option(1, "Score every Nth video frame.")
    nifti_axis: int = option(2, "NIfTI slicing axis (0, 1 or 2).")
    max_pixels: int = option(DEFAULT_MAX_PIXELS, "Largest frame decoded, in pixels (0: no limit); larger files are "
                                                 "refused from their header, before decoding.")
    display: Display = field(default_factory=Display)
    """--window, --resize-short, --foreground (medgap.io.Display): how a frame becomes the metrics' input."""
    roi: Path | None = option(None, "Score only the region of interest: a folder of masks named after the images "
                                    "(all-zero = not annotated) or a segment-train run; each frame is cropped to its "
                                    "mask's bounding box (docs/segmentation.md). Part of the resume key.",
                              metavar="MASK_DIR|RUN")
    roi_mode: str = option("crop", "--roi: crop (the mask's bounding box, the default) or mask (outside the mask "
                                   "set to black, then the box: adds edges along the outline).",
                           choices=("crop", "mask"))
    save_every: float = option(5.0, "Seconds between saves of finished rows: a killed run loses at most this "
                                    "much work.", resumable=True)

    def output(self) -> tuple[Path, str]:
        """The output path and its format, checked against each other."""
        check_choices(self, UsageError)  # --format, with "did you mean"
        if self.out is None:
            fmt = self.format or "parquet"
            return Path(f"scores.{fmt}"), fmt
        by_suffix = {".csv": "csv", ".parquet": "parquet"}.get(self.out.suffix.lower())
        if self.format and by_suffix and by_suffix != self.format:
            raise UsageError(
                f"--out {self.out} names a {by_suffix} file but --format is {self.format}: "
                f"end --out in .{self.format}, or leave out --format"
            )
        if self.out.exists() and not self.out.is_file():  # a folder, or a device: before its suffix is judged
            raise UsageError(f"--out {self.out} exists and is not a regular file; give a file name for the scores table")
        if by_suffix is None and self.format is None:  # was: Parquet written under the name x.xlsx
            raise UsageError(
                f"--out {self.out}: unknown table type {self.out.suffix or '(no suffix)'!r}; end --out in .parquet "
                "or .csv, or give --format parquet|csv to write that format under this name"
            )
        return self.out, self.format or by_suffix

    def sources(self) -> tuple[list[Source], bool]:
        """The collection, and whether it is the embedded default."""
        if not (self.paths or self.groups or self.manifest):
            return embedded_default(), True
        pairs = [parse_group(g) for g in self.groups]
        self.skipped: list[SkippedFile] = []
        found = collect(self.paths, pairs, self.manifest, group_column=self.group_column, path_column=self.path_column,
                        skipped=self.skipped)
        if not found:
            left_out = f"; {summarise_skipped(self.skipped)}" if self.skipped else ""
            raise UsageError("no image files found in the given paths (supported: PNG, JPEG, TIFF, BMP, DICOM, NIfTI, "
                             f"video){left_out}")
        return found, False

    def validate(self) -> None:
        """UsageError for an option out of range (before anything is read or written)."""
        out, _ = self.output()
        if out.exists() and not out.is_file():  # a folder, or a device (/dev/full read "to resume" never ends)
            raise UsageError(f"--out {out} exists and is not a regular file; give a file name for the scores table")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        self._check_engine()
        from medgap.quality.network import check_device  # no torch: a malformed name is refused before scoring

        if self.device is not None:
            check_device(self.device)
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1 frame, got {self.batch_size}")
        if self.video_stride < 1:
            raise UsageError(f"--video-stride must be at least 1 (every Nth frame), got {self.video_stride}")
        if self.nifti_axis not in (0, 1, 2):
            raise UsageError(f"--nifti-axis takes 0, 1 or 2 (the axis NIfTI volumes are sliced along), got "
                             f"{self.nifti_axis}")
        if self.max_pixels < 0:
            raise UsageError(f"--max-pixels takes a number of pixels per frame, or 0 for no limit; got {self.max_pixels}")
        if not self.save_every > 0:
            raise UsageError(f"--save-every must be a positive number of seconds, got {self.save_every}")

    def _check_engine(self) -> None:
        """--scheduler, --dask-local and --workers > 1 exclude each other; the Dask ones need dask.distributed."""
        chosen = [f"--workers {self.workers}" if self.workers > 1 else "",
                  f"--scheduler {self.scheduler}" if self.scheduler is not None else "",
                  f"--dask-local {self.dask_local}" if self.dask_local is not None else ""]
        chosen = [c for c in chosen if c]
        if len(chosen) > 1:
            raise UsageError(f"{' and '.join(chosen)}: choose one way to run the workers (--workers N on this "
                             "machine, --dask-local N for a Dask LocalCluster, --scheduler ADDRESS for a Dask cluster)")
        if self.dask_local is not None and self.dask_local < 1:
            raise UsageError(f"--dask-local must be at least 1 worker process, got {self.dask_local}")
        if self.scheduler is not None and not self.scheduler.strip():
            raise UsageError("--scheduler takes the address of a Dask scheduler, e.g. tcp://10.0.0.5:8786")
        if self.scheduler is not None or self.dask_local is not None:
            import importlib.util

            from medgap.scoring.engine import CLUSTER_EXTRA

            if importlib.util.find_spec("distributed") is None:
                flag = "--scheduler" if self.scheduler is not None else "--dask-local"
                raise UsageError(f"{flag} runs on Dask, and dask.distributed is not installed: {CLUSTER_EXTRA}")

    def run(self) -> tuple[int, ScoreSummary | None]:
        """Score the collection, print the summary and per-group table; returns (exit code, summary)."""
        self.validate()
        from medgap.scoring.engine import prestart  # standard library only

        prestart(self.workers)  # the workers' fork server imports medgap while this process does
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from medgap.quality import create_metric
        from medgap.scoring import score_collection

        out, fmt = self.output()
        check_writable_folder(out.parent)  # a read-only or full output folder fails now, not after scoring
        metrics = []
        for spec in self.metrics:
            name, params = parse_metric(spec)
            try:
                metrics.append(create_metric(name, **params))
            except (TypeError, ValueError) as e:
                raise UsageError(f"--metric {spec}: {e}") from None
        sources, embedded = self.sources()
        if embedded:
            console.print(
                f"No paths given: scoring the embedded default ({len(sources)} files that installed packages ship: "
                "scikit-image photographs and pydicom's CR/CT/MR/US DICOM files)."
            )
        print_skipped(getattr(self, "skipped", []))
        with Progress(
            TextColumn("[bold]scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files · {task.fields[items]} items · {task.fields[rate]} items/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("score", total=len(sources), items=0, rate="-")
            started = time.perf_counter()

            def progress(done: int, total: int, items: int) -> None:
                elapsed = time.perf_counter() - started
                rate = f"{items / elapsed:.1f}" if items and elapsed > 0 else "-"
                bar.update(task, completed=done, total=total, items=items, rate=rate)

            summary = score_collection(
                sources,
                metrics,
                out,
                workers=self.workers,
                scheduler=self.scheduler,
                dask_local=self.dask_local,
                video_stride=self.video_stride,
                nifti_axis=self.nifti_axis,
                max_pixels=self.max_pixels or None,
                fmt=fmt,
                flush_seconds=self.save_every,
                device=self.device,
                display=None if self.display.is_default else self.display,
                roi=roi_source(self.roi, self.roi_mode),
                batch_size=self.batch_size,
                progress=progress,
                config=jsonable(asdict(self)),
            )
        self.created_metrics = metrics  # the study's sensitivity analysis scores with the same metric objects
        # quality metrics are compared on their score; descriptive statistics on every column
        self.score_columns = [c for m in metrics for c in (m.info.columns if m.info.kind == "statistic" else m.info.columns[:1])]
        self.lower_is_better = {c: (m.info.lower_is_better if m.info.kind == "quality" else None)
                                for m in metrics for c in m.info.columns}
        report(summary, self.score_columns, fmt)
        if summary.interrupted:
            console.print(INTERRUPTED)
            return EXIT_INTERRUPTED, summary
        return (EXIT_FAILURES if summary.failed_total else EXIT_OK), summary


INTERRUPTED = "[yellow]Interrupted.[/] Finished files are saved; run the same command again to resume."


def print_skipped(skipped: list[SkippedFile], show: int = 5) -> None:
    """The files a folder scan left out: counted by type, a few listed with their reason (the README's promise)."""
    if not skipped:
        return
    console.print(f"[yellow]{summarise_skipped(skipped)}[/]; not scored:", soft_wrap=True)
    for s in skipped[:show]:
        console.print(f"  [yellow]skipped[/] {plain(s.path)}: {plain(s.reason)}", soft_wrap=True)
    if len(skipped) > show:
        console.print(f"  ... and {len(skipped) - show} more")


def group_table(scores: pd.DataFrame, column: str) -> Table:
    """The descriptive table of one column per group (:func:`medgap.stats.describe_groups`, over frames: the
    scores table's rows; ``medgap compare`` / ``study`` aggregate to patients or files)."""
    from rich.table import Table

    from medgap.quality import get_metric_info
    from medgap.stats import describe_groups
    from medgap.stats.format import decimals_for

    info = get_metric_info(column) if column in _metric_names() else None
    title = f"{column} by group, per frame" + (" (lower is better)" if info and info.lower_is_better else "")
    t = Table(title=plain(title))
    for name in ("group", "frames", "mean", "SD", "median", "IQR"):
        t.add_column(name, justify="left" if name == "group" else "right")
    # one number of decimals per column, 4 significant digits at the column's typical size: BRISQUE 36.04,
    # an edge density 0.05170 (fixed 2 decimals printed that as 0.05, and its SD as 0.00)
    d = decimals_for(float(scores[column].abs().median()), significant=4) if scores[column].notna().any() else 2
    for r in describe_groups(scores, column, "group").itertuples(index=False):
        if r.n == 0:
            t.add_row(plain(r.group), "0", "", "", "", "")
            continue
        t.add_row(plain(r.group), str(r.n), f"{r.mean:.{d}f}", f"{r.sd:.{d}f}" if r.n > 1 else "",
                  f"{r.median:.{d}f}", f"{r.q25:.{d}f} to {r.q75:.{d}f}")
    return t


def _metric_names() -> set[str]:
    from medgap.quality import list_metrics

    return set(list_metrics())


def report(summary: ScoreSummary, score_columns: list[str], fmt: str = "parquet") -> None:
    s = summary
    rate = f"{s.items_per_second:.1f}" if s.seconds > 0 and s.items_scored else "-"
    console.print(
        f"Scored {s.items_scored} items from {s.files_scored} files in {s.seconds:.1f} s ({rate} items/s); "
        f"{s.files_skipped} files already done (resumed)."
    )
    for note in s.notes:  # what a resumed run rescored, relabelled or dropped
        console.print(f"Note: {plain(note)}.", soft_wrap=True)
    if s.failed_total:
        parts = [
            f"{s.files_failed} files could not be read" if s.files_failed else "",
            f"{s.frames_failed} frames could not be scored" if s.frames_failed else "",
            f"{s.earlier_failed} in an earlier run (unchanged files are not retried; touch or fix them to retry)"
            if s.earlier_failed else "",
        ]
        console.print(f"[red]{s.failed_total} items failed[/]: {'; '.join(filter(None, parts))}.")
    for item, reason in s.failures[:10]:
        console.print(f"  [red]failed[/] {plain(item)}: {plain(reason)}", soft_wrap=True)  # paths stay copyable
    if s.failed_total > 10:
        console.print(f"  ... {s.failed_total - 10} more: see the 'error' column of {plain(s.out)}", soft_wrap=True)
    if s.interrupted or not s.out.exists():
        return
    import pandas as pd

    cols = ["group", *score_columns]
    scores = pd.read_csv(s.out, usecols=cols) if fmt == "csv" else pd.read_parquet(s.out, columns=cols)
    for c in score_columns:
        out_console.print(group_table(scores, c))
    console.print(f"Results: {plain(s.out)}  (pandas.read_{fmt})", soft_wrap=True)


def _run(cfg: QualityConfig) -> int:
    try:  # library errors become messages and exit codes in medgap.cli (exit_code_for)
        code, _ = cfg.run()
    except KeyboardInterrupt:  # outside the scoring loop (listing files, merging): the parts are kept
        console.print(INTERRUPTED)
        return EXIT_INTERRUPTED
    return code


config_command(
    app, QualityConfig, _run, name="quality",
    help="Score every image and frame with no-reference quality metrics; one row per item (item id, path, frame, "
         "group, size, scores, error).",
    epilog=(
        "Examples:\n\n"
        "  medgap quality                                   # the embedded default collection\n\n"
        "  medgap quality data/                             # subfolders of data/ are the groups\n\n"
        "  medgap quality --group natural=imagenet/ --group pocus=lus/ --workers 2 --out scores.parquet\n\n"
        "  medgap quality --manifest MANIFEST.csv --group-column modality --out scores.csv\n\n"
        "One row per image or frame: item_id, path, frame, group, width, height, the metric columns, error "
        "(empty when scored), plus the manifest's other columns. Rerun the same command after an interruption "
        "(Ctrl-C, a killed job): finished files are skipped, changed files are rescored.\n\n" + EXIT_CODES_HELP
    ),
)
