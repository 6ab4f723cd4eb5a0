"""Score a collection: read every file (medgap.io), compute metrics on each frame (medgap.quality), and write
one row per item to a resumable store. Library code: reports progress through a callback, prints nothing."""

from __future__ import annotations

import math
import platform
import time
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from medgap.io import ImageReadError, Source, item_id, read_frames, to_gray255, to_rgb255
from medgap.quality.registry import Metric
from medgap.scoring.engine import make_engine
from medgap.scoring.store import ResultStore

Progress = Callable[[int, int, int], None]
"""progress(files_done, files_total, items_done)"""


@dataclass
class ScoreSummary:
    """What a run did. ``items_*``/``files_*`` count this run; ``earlier_failed`` counts failed rows that earlier
    runs left in the output (their files were skipped as done), so a resumed run still reports them."""

    out: Path
    files_total: int
    files_skipped: int
    """Already scored by an earlier run (resumed)."""
    files_scored: int
    items_scored: int
    """Rows with scores and no error."""
    items_failed: int
    """Rows with an error: one per file that could not be read, one per frame whose metric failed."""
    files_failed: int = 0
    """Files that could not be read (or whose worker process died)."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """``(item id, reason)``: this run's first 1000, then those from earlier runs."""
    earlier_failed: int = 0
    rows: int = 0
    """Rows in the finished output (0 when interrupted)."""
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def frames_failed(self) -> int:
        return self.items_failed - self.files_failed

    @property
    def failed_total(self) -> int:
        """Failed rows in the output: this run's and earlier runs'."""
        return self.items_failed + self.earlier_failed

    @property
    def items_per_second(self) -> float:
        return self.items_scored / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class _Task:
    source: Source
    size: int
    mtime_ns: int
    versions: str
    metrics: tuple[Metric, ...]
    video_stride: int
    nifti_axis: int


def _empty_scores(metrics: Sequence[Metric]) -> dict[str, float]:
    return {c: math.nan for m in metrics for c in m.info.columns}


def _base(task: _Task) -> dict:
    src = task.source
    return {
        "path": str(src.path),
        "group": src.group,
        **{k: str(v) for k, v in src.extra.items() if k not in ("path", "group")},
        "file_size": task.size,
        "file_mtime_ns": task.mtime_ns,
        "metric_versions": task.versions,
    }


def _load(task: _Task) -> Iterator[tuple]:
    """Decoded frames of one file as ("frame", frame, gray, rgb), then ("error", reason) if reading fails."""
    wants_rgb = any(m.info.input == "rgb" for m in task.metrics)
    try:
        for fr in read_frames(task.source.path, video_stride=task.video_stride, nifti_axis=task.nifti_axis):
            yield "frame", fr, to_gray255(fr), (to_rgb255(fr) if wants_rgb else None)
    except Exception as e:
        yield "error", e.reason if isinstance(e, ImageReadError) else f"{type(e).__name__}: {e}"


def _failed_row(task: _Task, base: dict, reason: str) -> dict:
    """The one row of a file that could not be read: no frame, no size, NaN scores, the reason."""
    return {"item_id": base["path"], "frame": None, "width": None, "height": None, **base,
            **_empty_scores(task.metrics), "error": reason}


def _row(task: _Task, base: dict, fr, gray, rgb) -> dict:
    row = {"item_id": item_id(base["path"], fr.frame), "frame": fr.frame, "width": fr.width, "height": fr.height}
    row.update(base)
    errors = []
    for m in task.metrics:
        try:
            values = m(rgb if m.info.input == "rgb" else gray)
            if not np.isfinite(values.get(m.info.columns[0], math.nan)):
                errors.append(f"{m.name}: not a finite score")
        except Exception as e:  # a metric's ValueError carries the reason (constant image, too small...)
            values = {c: math.nan for c in m.info.columns}
            errors.append(f"{m.name}: {e}" if isinstance(e, ValueError) else f"{m.name}: {type(e).__name__}: {e}")
        row.update(values)
    row["error"] = "; ".join(errors) or None
    return row


def _rows(task: _Task, loaded: Iterable[tuple]) -> list[dict]:
    base = _base(task)
    rows: list[dict] = []
    for kind, *rest in loaded:
        if kind == "frame":
            rows.append(_row(task, base, *rest))
        else:
            reason = rest[0] if not rows else f"stopped after {len(rows)} frames: {rest[0]}"
            rows.append(_failed_row(task, base, reason))
    return rows


def score_source(task: _Task) -> list[dict]:
    """Rows for one file: one per frame; a file that cannot be read gives one row with its reason."""
    return _rows(task, _load(task))


def _crashed(task: _Task, error: BaseException) -> list[dict]:
    """The row of a file whose worker process died while reading or scoring it."""
    reason = (f"the worker process died on this file ({type(error).__name__}): a crash in a decoder, or out of "
              "memory; the other files were scored")
    return [_failed_row(task, _base(task), reason)]


_END = object()


def _prefetched(tasks: Sequence[_Task], depth: int = 8) -> Iterator[list[dict]]:
    """In-process scoring with decoding one step ahead: a reader thread decodes the next frames (OpenCV,
    pydicom and the numba kernels release the GIL) while this thread scores; at most ``depth`` decoded frames
    wait in memory, so a long video does not pile up."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        for i, task in enumerate(tasks):
            for item in _load(task):
                if not put((i, item)):
                    return
            if not put((i, _END)):
                return

    thread = threading.Thread(target=reader, name="medgap-prefetch", daemon=True)
    thread.start()
    try:
        for i, task in enumerate(tasks):
            def items():
                while True:
                    j, item = q.get()
                    if item is _END:
                        return
                    yield item

            yield _rows(task, items())
    finally:
        stop.set()


def _versions(metrics: Sequence[Metric]) -> str:
    return ",".join(f"{m.name}={m.version}" for m in metrics)


def score_collection(
    sources: Sequence[Source],
    metrics: Sequence[Metric],
    out: str | Path,
    *,
    workers: int = 1,
    video_stride: int = 1,
    nifti_axis: int = 2,
    fmt: str | None = None,
    flush_every: int = 64,
    flush_seconds: float = 5.0,
    progress: Progress | None = None,
    config: dict | None = None,
    prefetch: bool = True,
) -> ScoreSummary:
    """Score every source with every metric into ``out`` (Parquet, or CSV when ``fmt='csv'``/``.csv``).

    Resumable: sources already in ``out`` (same path, size, mtime and metric versions) are skipped; finished
    rows are saved to ``<out>.parts/`` every ``flush_every`` files or ``flush_seconds``, and merged into ``out``
    at the end. On KeyboardInterrupt the finished rows are saved, work in flight is dropped and the summary has
    ``interrupted=True`` (rerun to resume). A file that cannot be read, or whose worker process dies, gives one
    row with the reason in ``error``; a frame whose metric fails gives its reason on its row. With one worker
    and ``prefetch``, a reader thread decodes ahead while the main thread scores (uses a second core for I/O
    and decoding). ``progress(files_done, files_total, items_scored)`` is called after each file.
    """
    if not metrics:
        raise ValueError("no metrics to compute")
    store = ResultStore(out, fmt)
    versions = _versions(metrics)
    done = store.done_keys()
    tasks: list[_Task] = []
    skipped = 0
    seen: set[str] = set()
    for s in sources:
        if str(s.path) in seen:
            continue  # the same file reached twice (e.g. a folder and a manifest)
        seen.add(str(s.path))
        try:
            st = s.path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        if (str(s.path), size, mtime, versions) in done:
            skipped += 1
            continue
        tasks.append(_Task(s, size, mtime, versions, tuple(metrics), video_stride, nifti_axis))
    summary = ScoreSummary(Path(out), len(seen), skipped, 0, 0, 0)
    started = time.perf_counter()
    t_flush = started
    meta = {
        "command": "quality",
        "config": config or {},
        "metrics": {m.name: {"version": m.version, "params": {k: str(v) for k, v in m.params.items()}} for m in metrics},
        "started": datetime.now(timezone.utc).isoformat(),
        "versions": _environment(),
    }
    if progress:
        progress(skipped, summary.files_total, 0)
    engine = make_engine(workers)
    if workers == 1 and prefetch:
        results = _prefetched(tasks)
    else:
        results = engine.imap_unordered(score_source, tasks, on_crash=_crashed)
    finished = False
    try:
        for rows in results:
            store.add(rows)
            summary.files_scored += 1
            for r in rows:
                if r.get("error"):
                    summary.items_failed += 1
                    summary.files_failed += r["width"] is None
                    if len(summary.failures) < 1000:
                        summary.failures.append((r["item_id"], r["error"]))
                else:
                    summary.items_scored += 1
            now = time.perf_counter()
            if summary.files_scored % flush_every == 0 or now - t_flush > flush_seconds:
                store.flush()
                t_flush = now
            if progress:
                progress(skipped + summary.files_scored, summary.files_total, summary.items_scored)
        finished = True
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        store.flush()  # first: what is done is on disk whatever happens next
        close = getattr(results, "close", None)  # stops the reader thread / the engine's generator now
        if close is not None:
            close()
        engine.close(abandon=not finished)  # interrupted: do not wait for items whose results nobody reads
    if not summary.interrupted:
        try:
            merged = store.finalize(keep_failures=1000)
        except KeyboardInterrupt:  # the parts are still there: a rerun merges them
            summary.interrupted = True
        else:
            summary.rows = merged.rows
            summary.earlier_failed = merged.earlier_failed
            summary.failures.extend(merged.earlier_failures[: max(0, 1000 - len(summary.failures))])
    summary.seconds = time.perf_counter() - started
    meta.update(
        finished=datetime.now(timezone.utc).isoformat(),
        interrupted=summary.interrupted,
        files_total=summary.files_total,
        files_skipped=summary.files_skipped,
        files_scored=summary.files_scored,
        items_scored=summary.items_scored,
        items_failed=summary.items_failed,
        files_failed=summary.files_failed,
        earlier_failed=summary.earlier_failed,
        rows=summary.rows,
        seconds=round(summary.seconds, 3),
    )
    store.write_meta(meta)
    return summary


def _environment() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("medgap", "numpy", "scipy", "numba", "pydicom", "opencv-contrib-python-headless", "av", "nibabel"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
