"""Score a collection: read every file (medgap.io), compute metrics on each frame (medgap.quality), and write
one row per item to a resumable store. Library code: reports progress through a callback, prints nothing."""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgap._json import jsonable
from medgap.environment import environment
from medgap.io import DEFAULT_MAX_PIXELS, ImageReadError, Source, item_id, read_frames, to_gray255, to_rgb255
from medgap.io.readers import NIFTI_SUFFIXES, VIDEO_SUFFIXES, suffix_of
from medgap.quality.network import check_device, loaded_model, resolve_device
from medgap.quality.registry import Metric
from medgap.scoring.engine import WorkerCrashed, is_fatal, make_engine

if TYPE_CHECKING:
    from medgap.scoring.store import Scored
# The store (pandas, pyarrow) is imported where a run writes, not here: worker processes import this module
# for score_source and never write.

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
        if name == "display":  # how frames become the metrics' input: every file's scores depend on it
            if value is not None and not value.is_default:
                parts.append(f"display={display_key(value)}")
            continue
        if name == "max_pixels" and value == DEFAULT_MAX_PIXELS:
            continue  # the default budget leaves the key (and tables made before it existed) as they were
        if suffix in _OPTION_SUFFIXES.get(name, (suffix,)):
            if name == "nifti_axis" and isinstance(value, int) and -3 <= value <= 2:
                value = value % 3  # -1 and 2 read the same slices
            parts.append(f"{name}={value}")
    return ",".join(parts) or None


def display_key(display) -> str:
    """The non-default choices of a :class:`~medgap.io.Display` as ``window:lung;resize_short:384;...`` (stable
    text for the resume key: another window or scale rescores every file)."""
    from dataclasses import fields

    return ";".join(f"{f.name}:{getattr(display, f.name)}" for f in fields(display)
                    if getattr(display, f.name) != f.default)


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
    read = dict(task.read)
    display = read.pop("display", None)  # medgap.io.Display: window, scale, foreground (None: to_gray255)
    roi = read.pop("roi", None)  # medgap.segment.roi.RoiSource: only the region of interest (None: whole frames)
    gray255, rgb255 = (display.prepare, display.prepare_rgb) if display is not None else (to_gray255, to_rgb255)
    try:
        for fr in read_frames(task.source.path, **read):
            fr = fr if roi is None else roi.apply(task.source.path, fr)
            yield "frame", fr, gray255(fr), (rgb255(fr) if wants_rgb else None)
    except BaseException as e:
        if is_fatal(e):
            raise
        yield "error", _reason(e)


def _failed_row(task: _Task, base: dict, reason: str) -> dict:
    """The one row of a file that could not be read: no frame, no size, NaN scores, the reason."""
    return {"item_id": base["path"], "frame": None, "width": None, "height": None, **base,
            **_empty_scores(task.metrics), "error": reason}


def _outcome(m: Metric, result: Mapping[str, float] | BaseException) -> tuple[dict[str, float], str | None]:
    """A metric's values on one frame and its error for the row (``None`` when it scored)."""
    if isinstance(result, BaseException):  # a metric's ValueError carries the reason (constant image, too small...)
        reason = f"{m.name}: {result}" if type(result) is ValueError else f"{m.name}: {_reason(result)}"
        return {c: math.nan for c in m.info.columns}, reason
    values = dict(result)
    if not np.isfinite(values.get(m.info.columns[0], math.nan)):
        return values, f"{m.name}: not a finite score"
    return values, None


def _add_error(row: dict, error: str | None) -> None:
    if error:
        row["error"] = f"{row['error']}; {error}" if row.get("error") else error


def _row(task: _Task, base: dict, fr, gray, rgb, metrics: Sequence[Metric] | None = None) -> dict:
    """A frame's row with ``metrics`` (default: the task's) computed; other metrics' columns are NaN until the
    network pass fills them (:func:`_fill`)."""
    row = {"item_id": item_id(base["path"], fr.frame), "frame": fr.frame, "width": fr.width, "height": fr.height}
    row.update(base)
    row.update(_empty_scores(task.metrics))
    row["error"] = None
    for m in task.metrics if metrics is None else metrics:
        try:
            result: Any = m.compute(rgb if m.info.input == "rgb" else gray)  # converted by to_gray255/to_rgb255
        except BaseException as e:
            if is_fatal(e):
                raise
            result = e
        values, error = _outcome(m, result)
        row.update(values)
        _add_error(row, error)
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
    is always plain rows, which pickle. A network metric among ``task.metrics`` runs one frame at a time here
    (the engine batches network metrics in the main process instead: :func:`scored_rows`)."""
    try:
        return _rows(task, _load(task))
    except BaseException as e:
        if is_fatal(e):
            raise
        return [_failed_row(task, _base(task), _reason(e))]


def _score_indexed(item: tuple[int, _Task]) -> tuple[int, list[dict]]:
    """:func:`score_source` in a worker, with the task's position (a file with no frame gives no row)."""
    return item[0], score_source(item[1])


def _crashed(task: _Task, error: BaseException) -> list[dict]:
    """The row of a file whose worker process died while reading or scoring it, or whose rows could not be
    sent back from it."""
    if isinstance(error, BrokenProcessPool):
        # the pool's manager thread attaches what broke it when it knows (a result it could not unpickle)
        cause = [ln.strip() for ln in str(error.__cause__ or "").splitlines() if ln.strip().strip("'")]
        detail = f": {cause[-1]}" if cause else ""
        reason = (f"the worker process died on this file, or its result could not be received (BrokenProcessPool"
                  f"{detail}): a crash in a decoder, or out of memory; the other files were scored")
    elif isinstance(error, WorkerCrashed):  # the Dask engine: every worker that ran this file died
        reason = (f"the worker process died on this file each time it ran ({error}): a crash in a decoder, or out "
                  "of memory; the other files were scored")
    else:
        reason = f"scoring failed ({_reason(error)}); the other files were scored"
    return [_failed_row(task, _base(task), reason)]


def _crashed_indexed(item: tuple[int, _Task], error: BaseException) -> tuple[int, list[dict]]:
    return item[0], _crashed(item[1], error)


_END = object()


PREFETCH_BYTES = 256 * 2**20
"""How much decoded data the reader thread of ``--workers 1`` may hold ahead of scoring (frames and their
metric inputs). Decoding time comes in bursts (a run of compressed DICOM files decodes slower than it scores,
a run of small JPEGs faster): with 8 frames ahead the scorer waited on the reader through each slow run; with
this budget (about 90 frames of 512x512) the reader banks time on the fast files (785 shared files, in
process: 7.5 s instead of 8.1, median of 3). A frame larger than the budget still goes through, alone."""


def _nbytes(item) -> int:
    """Bytes of a decoded frame as :func:`_load` gives it (the frame's pixels and the metrics' inputs)."""
    if not (isinstance(item, tuple) and item[0] == "frame"):
        return 0
    return sum(getattr(part, "nbytes", 0) for part in (getattr(item[1], "pixels", None), *item[2:]))


def _read_ahead(tasks: Sequence[_Task], max_bytes: int | None = None,
                poll: float = 0.2) -> Iterator[Iterator[tuple]]:
    """Each task's loaded items (as :func:`_load`), in order, decoded ahead: a reader thread decodes the next
    frames (OpenCV, pydicom and the numba kernels release the GIL) while this thread scores; at most
    ``max_bytes`` of decoded frames wait in memory (at least one frame), so a long video or a folder of large
    images does not pile up. A failure in the reader is its file's error; a reader thread that ends anyway is
    noticed within ``poll`` seconds and replaced for the next files. Consume each file's items before asking
    for the next file. ``max_bytes``: :data:`PREFETCH_BYTES` when not given."""
    max_bytes = PREFETCH_BYTES if max_bytes is None else max_bytes
    q: queue.Queue = queue.Queue()  # bounded by bytes below, not by count
    stop = threading.Event()
    room = threading.Condition()
    held = [0]  # bytes of decoded frames in the queue

    def put(item) -> bool:
        size = _nbytes(item[1])
        with room:
            while held[0] > 0 and held[0] + size > max_bytes:
                if stop.is_set():
                    return False
                room.wait(0.1)
            if stop.is_set():
                return False
            held[0] += size
        q.put((*item, size))
        return True

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

    def take(block: bool) -> tuple:
        j, item, size = q.get(timeout=poll) if block else q.get_nowait()
        if size:
            with room:
                held[0] -= size
                room.notify()
        return j, item

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
                        j, item = take(block=True)
                    except queue.Empty:
                        if thread.is_alive():
                            continue
                        try:  # what it put just before it ended
                            j, item = take(block=False)
                        except queue.Empty:  # never wait on a dead reader: this file fails, a new one goes on
                            thread = start(i + 1)
                            yield "error", "the reader thread ended unexpectedly while decoding this file"
                            return
                    if j < i:  # left unread by a file whose scoring stopped early
                        continue
                    if item is _END:
                        return
                    yield item

            yield items()
    finally:
        stop.set()
        with room:
            room.notify_all()


class _Batcher:
    """Rows of files in order, with the network metrics run on frames collected across files, ``batch_size``
    at a time (at most ``batch_size`` decoded frames wait here). A file's rows come out once all its frames
    have their network scores."""

    def __init__(self, network: Sequence[Metric], device: Any, batch_size: int | None) -> None:
        self.network = tuple(network)
        self.device = device
        self.batch_size = batch_size  # None: each metric's own (NetworkMetricFn.batch_size)
        self.collect = batch_size or max((m.fn.batch_size for m in network), default=1)  # type: ignore[attr-defined]
        self.frames: list[tuple[list, dict, Any, Any]] = []  # (file entry, row, gray, rgb)
        self.files: deque[list] = deque()  # [rows, frames waiting, read to the end]

    def open_file(self) -> list:
        entry = [[], 0, False]
        self.files.append(entry)
        return entry

    def add(self, entry: list, row: dict, gray: Any, rgb: Any) -> Iterator[list[dict]]:
        entry[0].append(row)
        if self.network and row["width"] is not None:
            entry[1] += 1
            self.frames.append((entry, row, gray, rgb))
            if len(self.frames) >= self.collect:
                self.run()
        yield from self.ready()

    def close_file(self, entry: list) -> Iterator[list[dict]]:
        entry[2] = True
        yield from self.ready()

    def run(self) -> None:
        frames, self.frames = self.frames, []
        if not frames:
            return
        for m in self.network:
            images = [rgb if m.info.input == "rgb" else gray for _, _, gray, rgb in frames]
            for (_, row, _, _), result in zip(frames, m.compute_many(images, device=self.device,
                                                                     batch_size=self.batch_size)):
                values, error = _outcome(m, result)
                row.update(values)
                _add_error(row, error)
        for entry, *_ in frames:
            entry[1] -= 1

    def ready(self) -> Iterator[list[dict]]:
        while self.files and self.files[0][2] and self.files[0][1] == 0:
            yield self.files.popleft()[0]

    def finish(self) -> Iterator[list[dict]]:
        self.run()
        yield from self.ready()


def _stream(tasks: Sequence[_Task], loaded: Iterable[Iterable[tuple]], hand: Sequence[Metric],
            network: Sequence[Metric], device: Any, batch_size: int | None) -> Iterator[list[dict]]:
    """Rows per file, in the tasks' order, scored in this process: ``hand`` metrics frame by frame as frames
    arrive, ``network`` metrics in batches across files (:class:`_Batcher`)."""
    batcher = _Batcher(network, device, batch_size)
    for task, items in zip(tasks, loaded):
        entry = batcher.open_file()
        try:
            base = _base(task)
            for kind, *rest in items:
                if kind == "frame":
                    fr, gray, rgb = rest
                    yield from batcher.add(entry, _row(task, base, fr, gray, rgb, hand), gray, rgb)
                else:
                    n = sum(r["width"] is not None for r in entry[0])
                    reason = rest[0] if not n else f"stopped after {n} frames: {rest[0]}"
                    yield from batcher.add(entry, _failed_row(task, base, reason), None, None)
        except BaseException as e:  # as score_source: anything that escapes is this file's failure
            if is_fatal(e):
                raise
            entry[0][:] = [_failed_row(task, _base(task), _reason(e))]
            batcher.frames = [f for f in batcher.frames if f[0] is not entry]
            entry[1] = 0
        yield from batcher.close_file(entry)
    yield from batcher.finish()


def _merge(hand_rows: list[dict], net_rows: list[dict], network: Sequence[Metric]) -> list[dict]:
    """A file's rows from the worker (hand-crafted metrics) with the network metrics' values and errors from the
    main process's own pass over the same file. The worker's rows decide which frames there are."""
    columns = [c for m in network for c in m.info.columns]
    by_id = {r["item_id"]: r for r in net_rows if r["width"] is not None}
    net_failure = next((r["error"] for r in net_rows if r["width"] is None), None)
    for row in hand_rows:
        if row["width"] is None:  # the file (or its end) could not be read: its row stays as it is
            row.update({c: row.get(c, math.nan) for c in columns})
            continue
        net = by_id.get(row["item_id"])
        if net is None:
            row.update({c: math.nan for c in columns})
            _add_error(row, "; ".join(f"{m.name}: frame not read for the network pass ({net_failure or 'no frame'})"
                                      for m in network))
            continue
        row.update({c: net[c] for c in columns})
        _add_error(row, net["error"])
    return hand_rows


def _network_thread(tasks: Sequence[_Task], network: Sequence[Metric], device: Any, batch_size: int | None,
                    prefetch: bool, out: queue.Queue, stop: threading.Event) -> threading.Thread:
    """The network pass of a run whose hand-crafted metrics are in worker processes: this process reads the
    files again (a reader thread ahead of it) and puts ``(index, rows)`` per file, then ``(None, None)``, or
    ``(None, error)`` if it fails as a whole."""
    def run() -> None:
        loaded = _read_ahead(tasks) if prefetch else (_load(t) for t in tasks)
        rows = _stream(tasks, loaded, (), network, device, batch_size)
        try:
            for i, file_rows in enumerate(rows):
                if stop.is_set():
                    return
                out.put((i, file_rows))
            out.put((None, None))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
            out.put((None, e))
        finally:
            rows.close()
            getattr(loaded, "close", lambda: None)()

    t = threading.Thread(target=run, name="medgap-network", daemon=True)
    t.start()
    return t


def scored_rows(tasks: Sequence[_Task], *, workers: int = 1, prefetch: bool = True, device: str | Any | None = None,
                batch_size: int | None = None, poll: float = 0.2, scheduler: str | None = None,
                dask_local: int | None = None) -> Iterator[list[dict]]:
    """The scoring loop behind :func:`score_collection` and :func:`medgap.score`: each file's rows, in any order.

    Hand-crafted metrics run frame by frame (in ``workers`` processes when more than one, on the Dask cluster
    behind the ``scheduler`` address, or on a Dask LocalCluster of ``dask_local`` processes: one of the three,
    :func:`~medgap.scoring.engine.make_engine`; else here with a reader thread decoding ahead when
    ``prefetch``); network metrics run in this process, ``batch_size`` frames
    per forward pass across files, on ``device`` (the model loaded once, before the first file: a device or
    model that cannot be used raises here, before any work). With both kinds and another engine, this process
    reads the files a second time for the network pass and each file's rows are joined.

    ``device``: ``None`` runs network metrics on ``"auto"`` (CUDA when there is one) and hand-crafted metrics
    on the CPU as above. A device given (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``) also moves the
    hand-crafted metrics that have a torch backend (BRISQUE, NIQE: :attr:`~medgap.quality.MetricInfo.
    accepts_device`) to that device, batched as network metrics are (:meth:`~medgap.quality.Metric.on_device`;
    same columns and version, equal scores to rounding). Without a device torch is never imported.

    Close the generator when stopping early (the callers do, after saving what they have): work in flight is
    then abandoned (worker processes killed), as it is when an exception (Ctrl-C) comes up through it."""
    if not tasks:
        return
    metrics = tasks[0].metrics
    if device is not None:  # a device asked for: metrics with a torch backend run there, batched
        metrics = tuple(m.on_device() if m.info.torch_backend is not None else m for m in metrics)
    else:
        device = "auto"
    hand = tuple(m for m in metrics if not m.network)
    network = tuple(m for m in metrics if m.network)
    size = None if batch_size is None else int(batch_size)  # None: each network metric's own
    if size is not None and size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if network:
        dev = resolve_device(device)
        for m in network:
            loaded_model(m.fn, dev)  # type: ignore[arg-type]  # once per process, now: a model that fails, fails the run
    else:
        check_device(device)
        dev = device
    engine = None
    helper: threading.Thread | None = None
    stop = threading.Event()
    finished = False
    loaded: Any = None
    try:
        if (workers == 1 and scheduler is None and dask_local is None) or not hand:
            loaded = _read_ahead(tasks) if prefetch else (_load(t) for t in tasks)
            yield from _stream(tasks, loaded, hand, network, dev, size)
        elif not network:
            engine = make_engine(workers, address=scheduler, local=dask_local)
            yield from (rows for _, rows in engine.imap_unordered(
                _score_indexed, list(enumerate(tasks)), on_crash=_crashed_indexed))
        else:
            hand_tasks = [dataclasses.replace(t, metrics=hand) for t in tasks]  # same versions: the full set's
            net_out: queue.Queue = queue.Queue()
            helper = _network_thread(tasks, network, dev, size, prefetch, net_out, stop)
            engine = make_engine(workers, address=scheduler, local=dask_local)
            hand_done: dict[int, list[dict]] = {}
            net_done: dict[int, list[dict]] = {}
            net_finished = False

            def take(block: bool) -> None:
                nonlocal net_finished
                while True:
                    try:
                        i, got = net_out.get(timeout=poll) if block else net_out.get_nowait()
                    except queue.Empty:
                        if block and helper is not None and not helper.is_alive() and net_out.empty():
                            raise RuntimeError("the network scoring thread ended without finishing") from None
                        if block:
                            continue
                        return
                    if i is None:
                        if isinstance(got, BaseException):
                            raise got
                        net_finished = True
                    else:
                        net_done[i] = got
                    if block:
                        return

            def joined() -> Iterator[list[dict]]:
                for i in [i for i in hand_done if i in net_done]:
                    yield _merge(hand_done.pop(i), net_done.pop(i), network)

            for i, rows in engine.imap_unordered(_score_indexed, list(enumerate(hand_tasks)),
                                                 on_crash=_crashed_indexed):
                hand_done[i] = rows
                take(block=False)
                yield from joined()
            while hand_done:
                if net_finished:  # files the network pass did not reach (cannot happen unless it skipped some)
                    for i in list(hand_done):
                        yield _merge(hand_done.pop(i), [], network)
                    break
                take(block=True)
                yield from joined()
        finished = True
    finally:
        stop.set()
        close = getattr(loaded, "close", None)
        if close is not None:
            close()
        if engine is not None:
            engine.close(abandon=not finished)  # interrupted: do not wait for items whose results nobody reads


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
        from medgap.scoring.store import StoreError

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
    device: str | None = None,
    batch_size: int | None = None,
    display=None,
    roi=None,
    scheduler: str | None = None,
    dask_local: int | None = None,
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

    Network metrics (``metric.network``) run in this process, ``batch_size`` frames per forward pass (default:
    the metric's own, ``NetworkMetricFn.batch_size``, 32 unless it says) batched across files, on ``device``: ``"auto"`` (CUDA when there is one), ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"``; their model is loaded once, before the first file (CUDA asked for without CUDA raises
    :class:`~medgap.quality.network.DeviceError`). Hand-crafted metrics keep their ``workers``. Neither option
    is part of the resume key. See :func:`scored_rows`.

    ``display``: a :class:`~medgap.io.Display` (CT window preset, resize to a short side, foreground crop)
    that turns frames into the metrics' input instead of :func:`~medgap.io.to_gray255`; part of the resume key.
    ``roi``: a :class:`~medgap.segment.roi.RoiSource`: each frame is kept to its region of interest (mask's
    bounding box) before the display applies; a file without a mask gets an error row; part of the resume key.

    ``scheduler`` (a Dask scheduler address, ``tcp://host:8786``) or ``dask_local`` (a Dask LocalCluster of N
    worker processes) score the hand-crafted metrics on a Dask cluster instead of ``workers`` (one of the
    three; needs ``pip install 'medgap[cluster]'``): the same rows; the table is written here, so only this
    process needs ``out``, and the workers need the files at the same paths. Not part of the resume key: a run
    interrupted on one engine resumes on another. An unreachable scheduler raises
    :class:`~medgap.scoring.engine.ClusterUnavailable` naming it.
    """
    if not metrics:
        raise ValueError("no metrics to compute")
    from medgap.scoring.store import ResultStore

    store = ResultStore(out, fmt)
    # every option that changes what read_frames gives: one entry here puts it in the resume key as well
    read = {"video_stride": video_stride, "nifti_axis": nifti_axis, "max_pixels": max_pixels, "display": display}
    if roi is not None:  # absent otherwise: the resume key of a whole-frame table stays as it was
        read["roi"] = roi
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
    batched = [m.on_device() for m in metrics if m.network or (device is not None and m.info.torch_backend)]
    if batched:  # network metrics, and the torch backends of hand-crafted ones when a device is given
        meta["network"] = {"device": str(resolve_device(device or "auto")), "batch_size": {
            m.name: m.fn.batch_size if batch_size is None else batch_size for m in batched}}
    if progress:
        progress(skipped, summary.files_total, 0)
    results = scored_rows(tasks, workers=workers, prefetch=prefetch, device=device, batch_size=batch_size,
                          scheduler=scheduler, dask_local=dask_local)
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
                store.flush(wait=False)  # in a thread: scoring goes on while the part is written
                t_flush = now
            if progress:
                progress(skipped + summary.files_scored, summary.files_total, summary.items_scored)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        store.flush()  # first: what is done is on disk whatever happens next
        results.close()  # then stop the reader thread, the network pass, the workers (abandoned if not finished)
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
