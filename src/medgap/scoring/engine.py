"""The parallel map behind collection scoring: one small interface, so the cluster engine (Dask distributed:
:mod:`medgap.scoring.dask_engine`) slots in without touching metrics or I/O."""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from multiprocessing.connection import Connection
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Each worker scores one image at a time on one core: nested BLAS/OpenMP/numba threads only oversubscribe.
_SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


OnCrash = Callable[[T, BaseException], R]
"""``on_crash(item, error) -> result``: the result to yield for an item whose worker process died, or whose
task raised (or returned something that could not be sent back from the worker)."""


def is_fatal(error: BaseException) -> bool:
    """Errors that must stop the run (Ctrl-C, interpreter exit, a closed generator) rather than fail one item.

    Everything else, including ``BaseException`` subclasses that native extensions raise (pyo3's
    ``PanicException`` from a Rust decoder), is one item's failure."""
    return isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit))


def run_batch(fn: Callable[[T], R], items: list[T]) -> tuple[float, list[tuple[bool, bytes]]]:
    """``fn`` on each item of a batch, in a worker: (seconds, [(ok, pickled result or error)]).

    Each outcome is pickled here, one by one, so an item whose result or exception cannot be pickled (a lock, a
    Rust panic's class) fails alone, not its batch; one that cannot be unpickled fails alone in the parent
    (:func:`unpickle_outcome`). Used by :class:`ProcessEngine` and the Dask engine."""
    started = time.perf_counter()
    out: list[tuple[bool, bytes]] = []
    for item in items:
        try:
            result = fn(item)
        except BaseException as e:  # noqa: BLE001 - the item's failure (even SystemExit: it ended a task here)
            out.append((False, _pickled_error(e)))
            continue
        try:
            out.append((True, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)))
        except BaseException as e:  # noqa: BLE001 - a result that cannot be sent is the item's failure
            out.append((False, _pickled_error(RuntimeError(
                f"the result could not be sent back from the worker: {type(e).__name__}: {_text(e)}"))))
    return time.perf_counter() - started, out


def unpickle_outcome(ok: bool, payload: bytes) -> tuple[bool, object]:
    """One outcome of :func:`run_batch` rebuilt here: ``(ok, result or exception)``; an outcome that cannot be
    rebuilt (an exception whose constructor wants other arguments) is the item's failure."""
    try:
        return ok, pickle.loads(payload)
    except BaseException as e:  # noqa: BLE001
        if is_fatal(e):
            raise
        return False, e


def _pickled_error(e: BaseException) -> bytes:
    try:
        return pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as p:  # noqa: BLE001 - an exception whose class cannot be pickled: its text
        return pickle.dumps(RuntimeError(f"{type(e).__name__}: {_text(e)} (the exception could not be sent back "
                                         f"from the worker: {_text(p)})"))


def _text(e: BaseException) -> str:
    try:
        return str(e)
    except BaseException:  # noqa: BLE001
        return "(no message)"


class BatchSizer:
    """Items per task: about ``target`` seconds of work each (a task costs the pool or the scheduler about a
    millisecond or more, as much as scoring a small image), one item until the first task says how long an
    item takes, at most ``largest``, and at least two tasks per worker for what is left so the last items
    spread over the workers."""

    def __init__(self, target: float, largest: int, remaining: int | None) -> None:
        self.target, self.largest, self.remaining = target, largest, remaining
        self.per_item = 0.0  # seconds per item in a worker (moving average); 0: not measured yet

    def measured(self, seconds: float, n: int) -> None:
        n = max(1, n)
        self.per_item = seconds / n if self.per_item <= 0 else 0.7 * self.per_item + 0.3 * seconds / n

    def next_size(self, workers: int) -> int:
        if self.per_item <= 0:
            return 1
        size = round(self.target / self.per_item)
        if self.remaining is not None:
            size = min(size, -(-self.remaining // (2 * workers)))
        return max(1, min(self.largest, size))

    def take(self, it: Iterator[T], workers: int) -> list[T]:
        batch = list(islice(it, self.next_size(workers)))
        if self.remaining is not None:
            self.remaining -= len(batch)
        return batch


class WorkerCrashed(RuntimeError):
    """A worker process died (a crash in native code, or killed for memory) while running one item."""


class ClusterUnavailable(ConnectionError):
    """The Dask scheduler cannot be reached, or the connection to it was lost mid-run; the message names the
    address and what to do. An ``OSError``: the command line reports it as a usage problem (exit 2)."""


TARGET_TASK_SECONDS = 0.05
"""Work per task of :class:`ProcessEngine` (a batch of items): enough that the pool's cost per task (about a
millisecond in the parent) does not count, short enough that the last batches spread over the workers."""
MAX_BATCH = 64
"""Most items per task."""

CLUSTER_EXTRA = "pip install 'medgap[cluster]'"
"""How to install what the cluster engine needs (``dask[distributed]``)."""


class Engine(Protocol):
    """Applies ``fn`` to every item and yields results as they finish (any order). ``fn`` and the items must be
    picklable (module-level functions, dataclasses). Use as a context manager, or call ``close()``."""

    workers: int

    def imap_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], on_crash: OnCrash | None = None
    ) -> Iterator[R]: ...

    def close(self, abandon: bool = False) -> None:
        """Release the workers; ``abandon``: drop work in flight now (the caller stopped reading results)."""
        ...

    def __enter__(self) -> Engine: ...

    def __exit__(self, *exc: object) -> None: ...


class SerialEngine:
    """In-process, one item at a time (``--workers 1``)."""

    workers = 1

    def imap_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], on_crash: OnCrash | None = None
    ) -> Iterator[R]:
        # a segfault here is the caller's process: nothing is left to report it; an exception is one item's
        for item in items:
            try:
                result = fn(item)
            except BaseException as e:
                if on_crash is None or is_fatal(e):
                    raise
                result = on_crash(item, e)
            yield result

    def close(self, abandon: bool = False) -> None:
        pass

    def __enter__(self) -> SerialEngine:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(abandon=exc_type is not None)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _set_parent_death_signal() -> bool:
    """Linux: SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG). False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return False


def _watch_parent(parent_alive: Connection) -> None:
    """Exit as soon as the main process is gone: it holds the only write end of this pipe, so a read returns
    EOF when it dies, however it dies (kill -9, the OOM killer, SIGTERM). A thread, since the worker's own
    thread may be deep in a decoder."""
    try:
        parent_alive.recv_bytes()  # nothing is ever sent: this returns only by EOF
    except (EOFError, OSError):
        pass
    os._exit(1)  # no cleanup to do: the parent that would read our results is gone


def _init_worker(parent_alive: Connection | None = None, main_pid: int | None = None) -> None:
    for k, v in _SINGLE_THREAD_ENV.items():  # for libraries a task imports later; BLAS read them at start-up
        os.environ.setdefault(k, v)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it flushes and stops us)
    # Workers must not outlive the main process. Under forkserver a worker's parent is the fork server, not
    # the main process, and the server itself lives on while any worker holds its "alive" pipe: so the
    # parent-death signal alone would never fire when the main process is killed. The pipe watchdog covers
    # that (and spawn, and macOS); the signal adds: a worker dies with its fork server (killed by the OOM
    # killer, say). Under spawn the parent is the main process's thread that submitted work, which may end
    # before the process does, so the signal is set only under a fork server.
    parent = os.getppid()
    if main_pid is not None and parent != main_pid and _set_parent_death_signal() and os.getppid() != parent:
        os._exit(1)  # the fork server died before the signal was armed
    if parent_alive is not None:
        threading.Thread(target=_watch_parent, args=(parent_alive,), name="medgap-parent-watch", daemon=True).start()
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass


def _context() -> multiprocessing.context.BaseContext:
    # forkserver: workers fork from a clean server that has imported medgap once (fast start, no threads of
    # the parent inherited, unlike plain fork); spawn where forkserver does not exist (Windows).
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["medgap.scoring._preload"])  # imports and warm numba kernels, once
        return ctx
    return multiprocessing.get_context("spawn")


def prestart(workers: int) -> None:
    """Start the fork server of :class:`ProcessEngine` now, when ``workers > 1``: it imports medgap and loads
    the metrics' kernels (about 1.5 s) on another core while this process imports the rest and lists the
    files, instead of after. Call it first thing (the command line does); later it changes nothing."""
    if workers > 1 and "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        _context()
        for k, v in _SINGLE_THREAD_ENV.items():  # the server copies the environment when it starts
            os.environ.setdefault(k, v)
        forkserver.ensure_running()


class ProcessEngine:
    """Worker processes (``concurrent.futures``, forkserver or spawn start method) with a bounded amount of work
    in flight, so memory stays flat however many items there are.

    Items go to the workers in batches of about :data:`TARGET_TASK_SECONDS` of work (:class:`BatchSizer`): a
    task costs the parent a millisecond or so (pickling, the pool's queues), which with one task per small
    image made the parent the bottleneck. Each item's outcome comes back on its own (:func:`run_batch`), so an
    item that raises, or whose result cannot be sent back, fails alone.

    A worker that dies (segfault in a decoder, killed for memory) breaks the pool: the pool is restarted, the
    items that were in flight are rerun one at a time to find the one that kills its worker, and that item gets
    ``on_crash(item, error)`` (without ``on_crash``, :class:`WorkerCrashed` is raised); the run goes on.
    """

    def __init__(self, workers: int, in_flight_per_worker: int = 4, batch_seconds: float | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._limit = workers * in_flight_per_worker
        self._batch_seconds = TARGET_TASK_SECONDS if batch_seconds is None else batch_seconds
        # The forkserver (or each spawned worker) copies the environment when it starts, before numpy/numba
        # read these; a value the user has set wins.
        for k, v in _SINGLE_THREAD_ENV.items():
            os.environ.setdefault(k, v)
        ctx = _context()
        # Workers get the read end; this process keeps the only write end, so workers see EOF when it dies.
        self._alive_r, self._alive_w = ctx.Pipe(duplex=False)
        self._ctx = ctx
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=self._ctx, initializer=_init_worker,
            initargs=(self._alive_r, os.getpid()),
        )

    def _restart(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._new_pool()

    def imap_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], on_crash: OnCrash | None = None
    ) -> Iterator[R]:
        it = iter(items)
        sizer = BatchSizer(self._batch_seconds, MAX_BATCH, len(items) if isinstance(items, Sized) else None)
        pending: dict[Future, list[T]] = {}

        def refill() -> None:
            while len(pending) < self._limit:
                batch = sizer.take(it, self.workers)
                if not batch:
                    return
                pending[self._pool.submit(run_batch, fn, batch)] = batch

        refill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                wait(pending)  # a broken pool fails every unfinished future at once
                lost: list[T] = []
                for fut, batch in pending.items():
                    if isinstance(fut.exception(), BrokenProcessPool):
                        lost.extend(batch)
                    else:
                        yield from _outcomes(fut, batch, on_crash, sizer)  # finished before the crash: not rerun
                pending.clear()
                self._restart()
                yield from self._isolate(fn, lost, on_crash)
            else:
                for fut in done:
                    yield from _outcomes(fut, pending.pop(fut), on_crash, sizer)
            refill()

    def _isolate(self, fn: Callable[[T], R], items: list[T], on_crash: OnCrash | None) -> Iterator[R]:
        """Run ``items`` one at a time; the one whose worker dies gets ``on_crash``."""
        for item in items:
            fut = self._pool.submit(run_batch, fn, [item])
            if isinstance(fut.exception(), BrokenProcessPool):
                self._restart()
                if on_crash is None:
                    raise WorkerCrashed(f"a worker process died while running {item!r}") from fut.exception()
                yield on_crash(item, fut.exception())
            else:
                yield from _outcomes(fut, [item], on_crash, None)

    def close(self, abandon: bool = False) -> None:
        """Shut the pool down. ``abandon`` (Ctrl-C, an error): kill the workers instead of letting their current
        items finish, since nobody will read those results, and a worker stuck on a hung file would block."""
        if abandon:
            # Python 3.14 has pool.kill_workers(); before that the processes are only in a private attribute
            kill = getattr(self._pool, "kill_workers", None)
            if kill is not None:
                kill()
            else:
                for proc in list((getattr(self._pool, "_processes", None) or {}).values()):
                    proc.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._alive_w.close()  # workers of this engine (all gone now) would see EOF
        self._alive_r.close()

    def __enter__(self) -> ProcessEngine:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(abandon=exc_type is not None)


def _outcomes(fut: Future, batch: list[T], on_crash: OnCrash | None, sizer: BatchSizer | None) -> Iterator[R]:
    """The results of a finished batch, item by item; an item's exception (raised by the task, or a result
    that could not be pickled in the worker or rebuilt here) is that item's failure when ``on_crash`` is
    given. A task that failed as a whole fails each of its items."""
    error = fut.exception()
    if error is not None:
        for item in batch:
            if on_crash is None:  # (even SystemExit: it ended a task in a worker, not this process)
                raise error
            yield on_crash(item, error)
        return
    seconds, outcomes = fut.result()
    if sizer is not None:
        sizer.measured(seconds, len(outcomes))
    for item, (ok, payload) in zip(batch, outcomes):
        ok, value = unpickle_outcome(ok, payload)
        if ok:
            yield value  # type: ignore[misc]
        elif on_crash is None:
            raise value  # type: ignore[misc]
        else:
            yield on_crash(item, value)  # type: ignore[arg-type]


_END = object()


def make_engine(workers: int = 1, address: str | None = None, local: int | None = None) -> Engine:
    """``workers`` local processes (1: in-process), the Dask cluster behind the scheduler at ``address``
    (``"tcp://host:8786"``), or a Dask ``LocalCluster`` of ``local`` worker processes started here (and closed
    with the engine). At most one of ``workers > 1``, ``address`` and ``local``.

    The Dask engines (:class:`medgap.scoring.dask_engine.DaskEngine`) need ``dask[distributed]``
    (``pip install 'medgap[cluster]'``); an ``ImportError`` says so. A scheduler that cannot be reached raises
    :class:`ClusterUnavailable` naming the address."""
    chosen = [name for name, given in (("workers > 1", workers > 1), ("address", address is not None),
                                       ("local", local is not None)) if given]
    if len(chosen) > 1:
        raise ValueError(f"choose one engine: {' and '.join(chosen)} were both given (workers > 1: processes on "
                         "this machine; address: an existing Dask scheduler; local: a Dask LocalCluster)")
    if address is not None or local is not None:
        if local is not None and local < 1:
            raise ValueError(f"a Dask LocalCluster needs at least 1 worker process, got local={local}")
        try:
            dask_engine = importlib.import_module("medgap.scoring.dask_engine")
        except ImportError as e:
            if (e.name or "").split(".")[0] not in ("dask", "distributed", "tornado", "msgpack", "cloudpickle"):
                raise  # a bug in medgap, not a missing package
            where = f"the Dask scheduler at {address}" if address is not None else "a Dask LocalCluster"
            raise ImportError(f"scoring on {where} needs dask.distributed ({e}): {CLUSTER_EXTRA}",
                              name=e.name) from None
        if address is not None:
            return dask_engine.DaskEngine.connect(address)
        return dask_engine.DaskEngine.local(local)  # type: ignore[arg-type]
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return SerialEngine() if workers == 1 else ProcessEngine(workers)
