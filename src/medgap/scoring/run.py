"""Score a collection: read every file (medgap.io), compute metrics on each frame (medgap.quality), and write
one row per item to a resumable store. Library code: reports progress through a callback, prints nothing."""

from __future__ import annotations

import math
import time
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from medgap._json import jsonable
from medgap.environment import environment
from medgap.io import DEFAULT_MAX_PIXELS, ImageReadError, Source, item_id, read_frames, to_gray255, to_rgb255
from medgap.io.readers import NIFTI_SUFFIXES, VIDEO_SUFFIXES, suffix_of
from medgap.quality.registry import Metric
from medgap.scoring.engine import is_fatal, make_engine
from medgap.scoring.store import ResultStore, Scored, StoreError

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
    notes: list[str] = field(default_factory=list)
    """What resuming did besides skipping: files rescored and why, files relabelled, rows of files no longer in
    the collection dropped (one sentence each, for the user)."""

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
    read: Mapping[str, Any]
    """Keyword arguments of :func:`medgap.io.read_frames` (video_stride, nifti_axis, ...)."""

    @property
    def read_key(self) -> str | None:
        return read_key(self.source.path, self.read)


# The files whose frames a read option changes; an option not listed here changes every file's.
_OPTION_SUFFIXES: dict[str, frozenset[str]] = {"video_stride": VIDEO_SUFFIXES, "nifti_axis": NIFTI_SUFFIXES}


def read_key(path: str | Path, read: Mapping[str, Any]) -> str | None:
    """The read options that change this file's frames, as ``name=value,...`` (``None`` when none does): part
    of the resume key, so a changed ``--video-stride`` rescores the videos and nothing else."""
    suffix = suffix_of(path)
    parts = []
    for name, value in sorted(read.items()):
        if name == "max_pixels" and value == DEFAULT_MAX_PIXELS:
            continue  # the default budget leaves the key (and tables made before it existed) as they were
        if suffix in _OPTION_SUFFIXES.get(name, (suffix,)):
            if name == "nifti_axis" and isinstance(value, int) and -3 <= value <= 2:
                value = value % 3  # -1 and 2 read the same slices
            parts.append(f"{name}={value}")
    return ",".join(parts) or None


def _empty_scores(metrics: Sequence[Metric]) -> dict[str, float]:
    return {c: math.nan for m in metrics for c in m.info.columns}


def _base(task: _Task) -> dict:
    src = task.source
    base = {
        "path": str(src.path),
        "group": src.group,
        **{k: str(v) for k, v in src.extra.items() if k not in ("path", "group")},
        "file_size": task.size,
        "file_mtime_ns": task.mtime_ns,
        "metric_versions": task.versions,
    }
    read = task.read_key
    if read is not None:  # a table of plain images has no read_options column (and reads as before)
        base["read_options"] = read
    return base


def _reason(error: BaseException) -> str:
    """A failure as one line of text for the ``error`` column (never raises, whatever the exception)."""
    if isinstance(error, ImageReadError):
        return error.reason
    try:
        text = str(error)
    except BaseException:  # noqa: BLE001 - an exception whose __str__ fails is still a reason
        text = "(no message)"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _load(task: _Task) -> Iterator[tuple]:
    """Decoded frames of one file as ("frame", frame, gray, rgb), then ("error", reason) if reading fails.

    Any failure counts, ``BaseException`` subclasses included (a Rust decoder's panic is one), except those
    that must stop the run (:func:`~medgap.scoring.engine.is_fatal`)."""
    wants_rgb = any(m.info.input == "rgb" for m in task.metrics)
    try:
        for fr in read_frames(task.source.path, **task.read):
            yield "frame", fr, to_gray255(fr), (to_rgb255(fr) if wants_rgb else None)
    except BaseException as e:
        if is_fatal(e):
            raise
        yield "error", _reason(e)


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
            values = m.compute(rgb if m.info.input == "rgb" else gray)  # frames converted by to_gray255/to_rgb255
            if not np.isfinite(values.get(m.info.columns[0], math.nan)):
                errors.append(f"{m.name}: not a finite score")
        except BaseException as e:  # a metric's ValueError carries the reason (constant image, too small...)
            if is_fatal(e):
                raise
            values = {c: math.nan for c in m.info.columns}
            errors.append(f"{m.name}: {e}" if type(e) is ValueError else f"{m.name}: {_reason(e)}")
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
    """Rows for one file: one per frame; a file that cannot be read gives one row with its reason.

    Never raises (except :func:`~medgap.scoring.engine.is_fatal` errors): what a worker process sends back
    is always plain rows, which pickle."""
    try:
        return _rows(task, _load(task))
    except BaseException as e:
        if is_fatal(e):
            raise
        return [_failed_row(task, _base(task), _reason(e))]


def _crashed(task: _Task, error: BaseException) -> list[dict]:
    """The row of a file whose worker process died while reading or scoring it, or whose rows could not be
    sent back from it."""
    if isinstance(error, BrokenProcessPool):
        # the pool's manager thread attaches what broke it when it knows (a result it could not unpickle)
        cause = [ln.strip() for ln in str(error.__cause__ or "").splitlines() if ln.strip().strip("'")]
        detail = f": {cause[-1]}" if cause else ""
        reason = (f"the worker process died on this file, or its result could not be received (BrokenProcessPool"
                  f"{detail}): a crash in a decoder, or out of memory; the other files were scored")
    else:
        reason = f"scoring failed ({_reason(error)}); the other files were scored"
    return [_failed_row(task, _base(task), reason)]


_END = object()


def _prefetched(tasks: Sequence[_Task], depth: int = 8, poll: float = 0.2) -> Iterator[list[dict]]:
    """In-process scoring with decoding one step ahead: a reader thread decodes the next frames (OpenCV,
    pydicom and the numba kernels release the GIL) while this thread scores; at most ``depth`` decoded frames
    wait in memory, so a long video does not pile up. A failure in the reader is its file's error row; a
    reader thread that ends anyway is noticed within ``poll`` seconds and replaced for the next files."""
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

    def reader(first: int) -> None:
        for i in range(first, len(tasks)):
            try:
                for item in _load(tasks[i]):
                    if not put((i, item)):
                        return
            except (KeyboardInterrupt, SystemExit):
                raise  # ends this thread; the main thread sees it dead and carries on
            except BaseException as e:  # _load reports decoder failures itself; this is anything that escaped
                if stop.is_set() or not put((i, ("error", _reason(e)))):
                    return
            if not put((i, _END)):
                return

    def start(first: int) -> threading.Thread:
        t = threading.Thread(target=reader, args=(first,), name="medgap-prefetch", daemon=True)
        t.start()
        return t

    thread = start(0)
    try:
        for i, task in enumerate(tasks):
            def items():
                nonlocal thread
                while True:
                    try:
                        j, item = q.get(timeout=poll)
                    except queue.Empty:
                        if thread.is_alive():
                            continue
                        try:  # what it put just before it ended
                            j, item = q.get_nowait()
                        except queue.Empty:  # never wait on a dead reader: this file fails, a new one goes on
                            thread = start(i + 1)
                            yield "error", "the reader thread ended unexpectedly while decoding this file"
                            return
                    if item is _END:
                        return
                    yield item

            yield _rows(task, items())
    finally:
        stop.set()


def _versions(metrics: Sequence[Metric]) -> str:
    return ",".join(sorted(f"{m.name}={m.version}" for m in metrics))


def _parse_versions(versions: str) -> dict[str, str]:
    """``"brisque=1,niqe=1+ab12cd34"`` -> ``{"brisque": "1", "niqe": "1+ab12cd34"}``."""
    return dict(v.partition("=")[::2] for v in versions.split(",") if v)


def _labels(source: Source) -> dict[str, str | None]:
    return {"group": source.group, **{k: str(v) for k, v in source.extra.items() if k not in ("path", "group")}}


def _changes(counts: dict[tuple[str, str], int], what: str, limit: int = 3) -> str:
    n = sum(counts.values())
    shown = [f"{old} -> {new}" for (old, new), _ in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]]
    more = "; ..." if len(counts) > limit else ""
    return f"{n} {'file' if n == 1 else 'files'} rescored: {what} changed ({'; '.join(shown)}{more})"


def _plan(
    sources: Sequence[Source], index: dict[str, Scored], metrics: Sequence[Metric], read: Mapping[str, Any], out: Path
) -> tuple[list[_Task], int, dict[str, dict[str, str | None]], list[str]]:
    """Which sources to score (a file whose newest rows were made from the same file, metric versions and read
    options is skipped), the current labels by path, and notes on what was rescored and why.

    A different metric set is refused: rescoring would drop the old metrics' columns, keeping them would leave
    the new metrics' columns empty for the skipped files."""
    versions = _versions(metrics)
    wanted = _parse_versions(versions)
    old_sets = {frozenset(_parse_versions(e.metric_versions)) for e in index.values()} - {frozenset(wanted)}
    if old_sets:
        old = " / ".join(", ".join(sorted(names)) for names in sorted(old_sets, key=sorted))
        raise StoreError(
            f"{out} holds scores of the metrics {old}, and this run computes {', '.join(sorted(wanted))}: "
            "resuming would drop columns or leave them half empty. Choose another --out for this metric set, "
            f"or move {out} away (with {out.name}.parts, if there) to start afresh"
        )
    tasks: list[_Task] = []
    labels: dict[str, dict[str, str | None]] = {}
    skipped = 0
    changed_files = 0
    changed_versions: dict[tuple[str, str], int] = {}
    changed_read: dict[tuple[str, str], int] = {}
    for s in sources:
        key = str(s.path)
        if key in labels:
            continue  # the same file reached twice (e.g. a folder and a manifest)
        labels[key] = _labels(s)
        try:
            st = s.path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        task = _Task(s, size, mtime, versions, tuple(metrics), read)
        done = index.get(key)
        if done is not None:
            if (done.file_size, done.file_mtime_ns) != (size, mtime):
                changed_files += 1
            elif _parse_versions(done.metric_versions) != wanted:
                pair = (done.metric_versions, versions)
                changed_versions[pair] = changed_versions.get(pair, 0) + 1
            elif done.read_options != task.read_key:
                pair = (done.read_options or "not recorded by an older medgap", task.read_key or "none")
                changed_read[pair] = changed_read.get(pair, 0) + 1
            else:
                skipped += 1
                continue
        tasks.append(task)
    notes = []
    if changed_files:
        notes.append(f"{changed_files} {'file' if changed_files == 1 else 'files'} changed on disk since scored: "
                     "rescored")
    if changed_versions:
        notes.append(_changes(changed_versions, "metric versions or parameters"))
    if changed_read:
        notes.append(_changes(changed_read, "read options"))
    return tasks, skipped, labels, notes


def score_collection(
    sources: Sequence[Source],
    metrics: Sequence[Metric],
    out: str | Path,
    *,
    workers: int = 1,
    video_stride: int = 1,
    nifti_axis: int = 2,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    fmt: str | None = None,
    flush_every: int = 64,
    flush_seconds: float = 5.0,
    progress: Progress | None = None,
    config: dict | None = None,
    prefetch: bool = True,
) -> ScoreSummary:
    """Score every source with every metric into ``out`` (Parquet, or CSV when ``fmt='csv'``/``.csv``).

    Resumable: a source whose rows in ``out`` were made from the same file (size, mtime), metric versions
    (which include the parameters) and read options (``video_stride`` for videos, ``nifti_axis`` for NIfTI, ``max_pixels``
    when not the default) is skipped; any other is rescored. Group and manifest columns are not part of that key: changed labels are
    rewritten without decoding again. Rows of files no longer among ``sources`` are dropped, so the finished
    output holds the rows a fresh run would give. A different metric set is refused (:class:`StoreError`,
    naming both): choose another ``out``. ``ScoreSummary.notes`` says what was rescored, relabelled or
    dropped. Finished rows are saved to ``<out>.parts/`` every ``flush_every`` files or ``flush_seconds``, and
    merged into ``out`` at the end. On KeyboardInterrupt the finished rows are saved, work in flight is dropped
    and the summary has ``interrupted=True`` (rerun to resume). A file that cannot be read (whatever its
    decoder raises, ``BaseException`` subclasses such as a Rust panic included), or whose worker process dies,
    gives one row with the reason in ``error``; a frame whose metric fails gives its reason on its row. With
    one worker and ``prefetch``, a reader thread decodes ahead while the main thread scores (uses a second core
    for I/O and decoding); a reader thread that ends is never waited for. ``progress(files_done, files_total, items_scored)`` is called after each file.
    """
    if not metrics:
        raise ValueError("no metrics to compute")
    store = ResultStore(out, fmt)
    # every option that changes what read_frames gives: one entry here puts it in the resume key as well
    read = {"video_stride": video_stride, "nifti_axis": nifti_axis, "max_pixels": max_pixels}
    tasks, skipped, labels, notes = _plan(sources, store.index(), metrics, read, Path(out))
    summary = ScoreSummary(Path(out), len(labels), skipped, 0, 0, 0, notes=notes)
    started = time.perf_counter()
    t_flush = started
    meta = {
        "command": "quality",
        "config": config or {},
        "metrics": {m.name: {"version": m.version, "params": {k: str(v) for k, v in m.params.items()}} for m in metrics},
        "started": datetime.now(timezone.utc).isoformat(),
        "versions": environment(),  # python, platform, packages, git commit, OpenCV, GPU: medgap.environment
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
            merged = store.finalize(
                keep_failures=1000, labels=labels, value_columns=[c for m in metrics for c in m.info.columns]
            )
        except KeyboardInterrupt:  # the parts are still there: a rerun merges them
            summary.interrupted = True
        else:
            summary.rows = merged.rows
            summary.earlier_failed = merged.earlier_failed
            summary.failures.extend(merged.earlier_failures[: max(0, 1000 - len(summary.failures))])
            if merged.relabelled_files:
                n = merged.relabelled_files
                summary.notes.append(f"{n} {'file' if n == 1 else 'files'} relabelled (group or manifest columns "
                                     "changed; scores kept)")
            if merged.dropped_files:
                summary.notes.append(
                    f"{merged.dropped_rows} {'row' if merged.dropped_rows == 1 else 'rows'} of "
                    f"{merged.dropped_files} {'file' if merged.dropped_files == 1 else 'files'} no longer in the "
                    "collection dropped"
                )
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
        read_options=read,
        notes=summary.notes,
    )
    store.write_meta(jsonable(meta))
    return summary
