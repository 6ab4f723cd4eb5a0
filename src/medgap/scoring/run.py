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
    out: Path
    files_total: int
    files_skipped: int  # already scored by an earlier run (resume)
    files_scored: int
    items_scored: int
    items_failed: int
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item id, reason), first 1000
    seconds: float = 0.0
    interrupted: bool = False

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
            rows.append({"item_id": base["path"], "frame": None, "width": None, "height": None, **base,
                         **_empty_scores(task.metrics), "error": reason})
    return rows


def score_source(task: _Task) -> list[dict]:
    """Rows for one file: one per frame; a file that cannot be read gives one row with its reason."""
    return _rows(task, _load(task))


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

    Resumable: sources already in ``out`` (same path, size, mtime and metric versions) are skipped. On
    KeyboardInterrupt the finished rows are flushed and the summary has ``interrupted=True``. With one worker
    and ``prefetch``, a reader thread decodes ahead while the main thread scores (uses a second core for I/O
    and decoding).
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
    results = _prefetched(tasks) if workers == 1 and prefetch else engine.imap_unordered(score_source, tasks)
    try:
        for rows in results:
            store.add(rows)
            summary.files_scored += 1
            for r in rows:
                if r.get("error"):
                    summary.items_failed += 1
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
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        engine.close()
        store.flush()
        summary.seconds = time.perf_counter() - started
    if not summary.interrupted:
        store.finalize()
    meta.update(
        finished=datetime.now(timezone.utc).isoformat(),
        interrupted=summary.interrupted,
        files_total=summary.files_total,
        files_skipped=summary.files_skipped,
        files_scored=summary.files_scored,
        items_scored=summary.items_scored,
        items_failed=summary.items_failed,
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
