"""The parallel map behind collection scoring: one small interface, so a cluster engine (Dask distributed,
given a scheduler address) can slot in without touching metrics or I/O."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
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


class Engine(Protocol):
    """Applies ``fn`` to every item and yields results as they finish (any order)."""

    workers: int

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


class SerialEngine:
    """In-process, one item at a time (``--workers 1``)."""

    workers = 1

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return map(fn, items)

    def close(self) -> None:
        pass

    def __enter__(self) -> SerialEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it flushes and stops us)
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
        ctx.set_forkserver_preload(["medgap.scoring.run"])
        return ctx
    return multiprocessing.get_context("spawn")


class ProcessEngine:
    """Worker processes (``concurrent.futures``, forkserver or spawn start method) with a bounded number of tasks in flight,
    so memory stays flat however many items there are."""

    def __init__(self, workers: int, in_flight_per_worker: int = 4) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._limit = workers * in_flight_per_worker
        for k, v in _SINGLE_THREAD_ENV.items():  # inherited by the spawned workers
            os.environ.setdefault(k, v)
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_init_worker)

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        it = iter(items)
        pending: set[Future] = set()
        for item in it:
            pending.add(self._pool.submit(fn, item))
            if len(pending) >= self._limit:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(it, _END)
                if nxt is not _END:
                    pending.add(self._pool.submit(fn, nxt))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ProcessEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_END = object()


def make_engine(workers: int = 1, address: str | None = None) -> Engine:
    """``workers`` local processes (1: in-process). ``address``: a Dask distributed scheduler (not yet wired)."""
    if address is not None:
        raise NotImplementedError(
            "cluster scoring through a Dask scheduler address is planned but not implemented yet; "
            "use --workers N on one machine, or split the collection with --manifest per machine"
        )
    return SerialEngine() if workers == 1 else ProcessEngine(workers)
