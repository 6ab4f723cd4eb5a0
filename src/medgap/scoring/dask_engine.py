"""The cluster engine: :class:`~medgap.scoring.engine.Engine` on a Dask distributed cluster, an existing one
(a scheduler address: dask-jobqueue on SLURM, dask-kubernetes, ``dask scheduler`` by hand) or a ``LocalCluster``
of worker processes started here. Needs ``dask[distributed]`` (``pip install 'medgap[cluster]'``).

Items go in batches that take about :data:`TARGET_TASK_SECONDS` on a worker (a task costs the scheduler, the
client and the worker a few milliseconds, as much as scoring a small image), a bounded number in flight so
memory stays flat however many items there are; results in completion order. The workers import
medgap themselves: each machine needs medgap installed and the files at the paths the items name."""

from __future__ import annotations

import logging
import os
import signal
import time
from concurrent.futures import CancelledError
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any, TypeVar

from distributed import Client, Future, KilledWorker, LocalCluster, as_completed

from medgap.scoring.engine import (
    _SINGLE_THREAD_ENV,
    BatchSizer,
    ClusterUnavailable,
    OnCrash,
    WorkerCrashed,
    run_batch,
    unpickle_outcome,
)

T = TypeVar("T")
R = TypeVar("R")

TARGET_TASK_SECONDS = 0.25
"""Work per Dask task: items are sent in batches that take about this long on a worker (measured as the run
goes), since each task costs the scheduler, the client and the worker a few milliseconds; the first task of
a run holds one item."""
MAX_BATCH = 64

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a scheduler address to answer (Dask's own default, 30 s, is long for a typo)."""


def _in_worker(fn: Callable[[T], R], items: list[T]) -> tuple[float, list[tuple[bool, bytes]]]:
    """``fn`` on each item of a batch on a Dask worker: :func:`~medgap.scoring.engine.run_batch` (each item's
    outcome pickled alone, so it fails alone). The worker is set up once as
    :class:`~medgap.scoring.engine.ProcessEngine` sets up its own: one task at a time per thread, so OpenCV and
    BLAS threads only oversubscribe. (A worker plugin would do the same but stay registered on a shared
    scheduler after this run.)"""
    global _worker_ready
    if not _worker_ready:
        for k, v in _SINGLE_THREAD_ENV.items():  # for libraries a task imports later; Dask's nanny sets BLAS's
            os.environ.setdefault(k, v)
        try:
            import cv2

            cv2.setNumThreads(1)
        except ImportError:  # pragma: no cover - cv2 is a dependency
            pass
        _worker_ready = True
    return run_batch(fn, items)


_worker_ready = False


def dask_setup(worker: object) -> None:
    """Run by each worker process of a :meth:`DaskEngine.local` cluster as it starts (a Dask preload): Ctrl-C
    in the terminal reaches the whole process group, and it is the main process's to handle (it saves the
    finished rows and closes the cluster); a worker that took it too would print its own traceback."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread of the worker process: leave it as it is
        pass


def _short(item: object, limit: int = 200) -> str:
    text = repr(item)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DaskEngine:
    """Items as tasks on a Dask cluster (``distributed.Client.submit``, ``distributed.as_completed``): batches
    of items sized to take about :data:`TARGET_TASK_SECONDS` each (one item in the first tasks, until one says
    how long an item takes; at most :data:`MAX_BATCH`; smaller at the end so the last items spread over the
    workers), at most ``in_flight_per_worker`` tasks per worker thread at a time; results in completion order.
    An item that raises, or whose result cannot be sent back, fails alone, not its batch.

    A worker that dies (segfault in a decoder, killed for memory, its node preempted) costs only its items, as
    with :class:`~medgap.scoring.engine.ProcessEngine`: the scheduler reruns its tasks elsewhere, and a task it
    gives up on (``KilledWorker``: its worker died ``distributed.scheduler.allowed-failures + 1`` times while
    the task was assigned to it, queued there or running) has each of its items rerun once more here, alone on
    the cluster once the tasks in flight are done, since Dask blames every task assigned to a dead worker. The item whose lone rerun
    kills its worker again gets ``on_crash(item, error)`` with a :class:`~medgap.scoring.engine.WorkerCrashed`
    (without ``on_crash``, that error is raised); the run goes on. A task that raises, or whose result cannot be
    sent back, is that item's failure the same way. Losing the scheduler raises
    :class:`~medgap.scoring.engine.ClusterUnavailable`.

    How many deaths that costs is the scheduler's setting: 2 x (allowed-failures + 1) for an item that kills
    every worker running it; :meth:`local` uses 0 (two deaths, as ProcessEngine), Dask's default is 3."""

    def __init__(self, client: Client, *, cluster: LocalCluster | None = None, own_client: bool = False,
                 in_flight_per_worker: int = 4) -> None:
        """Use ``client``'s cluster; ``own_client``: close the client with the engine; ``cluster``: a cluster
        started for this engine, closed with it."""
        if in_flight_per_worker < 1:
            raise ValueError(f"in_flight_per_worker must be >= 1, got {in_flight_per_worker}")
        self.client = client
        self._cluster = cluster
        self._own_client = own_client or cluster is not None
        self._per_worker = in_flight_per_worker
        self._pending: dict[Future, Any] = {}
        self._address = getattr(client.scheduler, "address", None) or "(unknown address)"
        self._threads_at = -1.0
        self._threads = 1

    @classmethod
    def connect(cls, address: str, timeout: float | None = None, **kwargs: Any) -> DaskEngine:
        """The cluster behind the Dask scheduler at ``address`` (``tcp://host:8786``); :class:`ClusterUnavailable`
        naming the address when it does not answer within ``timeout`` seconds (default :data:`CONNECT_TIMEOUT`)."""
        timeout = CONNECT_TIMEOUT if timeout is None else timeout
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ClusterUnavailable(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({e}); start the scheduler "
                "(dask scheduler, or a SLURMCluster / KubeCluster) and give the address it prints, tcp://HOST:8786"
            ) from None
        except ValueError as e:  # a malformed address ("host::port", an unknown protocol)
            raise ValueError(f"{address!r} is not a Dask scheduler address ({e}); give tcp://HOST:PORT, e.g. "
                             "tcp://10.0.0.5:8786") from None
        return cls(client, own_client=True, **kwargs)

    @classmethod
    def local(cls, n_workers: int, *, allowed_failures: int = 0, **kwargs: Any) -> DaskEngine:
        """A ``LocalCluster`` of ``n_workers`` processes with one thread each, started now and closed with the
        engine. ``allowed_failures``: the scheduler's ``allowed-failures`` (Dask's default is 3; with 0 an item
        that kills its worker is rerun alone once, as ProcessEngine does, and fails if it kills it again)."""
        if n_workers < 1:
            raise ValueError(f"a LocalCluster needs at least 1 worker process, got {n_workers}")
        import dask

        for k, v in _SINGLE_THREAD_ENV.items():  # the workers are spawned with this environment
            os.environ.setdefault(k, v)
        with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR,
                                   preload=[__name__])  # dask_setup below, in each worker process
        try:
            client = Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
        return cls(client, cluster=cluster, **kwargs)

    @property
    def workers(self) -> int:
        """Worker threads on the cluster now (at least 1: a cluster still waiting for its jobs counts as one)."""
        now = time.monotonic()
        if now - self._threads_at > 2.0:  # an RPC to the scheduler: asked at most every 2 s (clusters scale)
            try:
                self._threads = max(1, sum(self.client.nthreads().values()))
            except (OSError, TimeoutError):
                pass  # keep the last count; a lost scheduler shows up in the results
            self._threads_at = now
        return self._threads

    def imap_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], on_crash: OnCrash | None = None
    ) -> Iterator[R]:
        it = iter(items)
        sizer = BatchSizer(TARGET_TASK_SECONDS, MAX_BATCH, len(items) if isinstance(items, Sized) else None)
        pending = self._pending  # future -> its batch of items
        done = as_completed(loop=self.client.loop, with_results=True, raise_errors=False)
        suspects: deque[T] = deque()  # items of a batch that Dask failed with KilledWorker: rerun, each alone
        isolated: set[Future] = set()
        def submit(batch: list[T]) -> Future:
            fut = self.client.submit(_in_worker, fn, batch, pure=False)  # a new key: a rerun starts unsuspected
            pending[fut] = batch
            done.add(fut)
            return fut

        def refill() -> None:
            if suspects:  # as ProcessEngine: once the tasks in flight are done, each suspect runs alone
                if not pending:
                    isolated.add(submit([suspects.popleft()]))
                return
            limit = self.workers * self._per_worker
            while len(pending) < limit:
                batch = sizer.take(it, self.workers)
                if not batch:
                    return
                submit(batch)

        try:
            refill()
            while pending:
                fut, result = next(done)
                batch = pending.pop(fut)
                alone = fut in isolated
                isolated.discard(fut)
                if fut.status == "finished":
                    seconds, outcomes = result
                    sizer.measured(seconds, len(outcomes))
                    for item, (ok, payload) in zip(batch, outcomes):
                        yield self._outcome(item, ok, payload, on_crash)
                else:
                    error = self._task_error(fut, result, batch)
                    if isinstance(error, KilledWorker) and not alone:
                        # Dask counts a death against every task assigned to the dead worker, the queued ones
                        # too, so the item that killed it may have taken innocent ones with it: rerun each alone
                        suspects.extend(batch)
                    else:
                        for item in batch:
                            yield self._failed(item, error, on_crash)
                refill()
        finally:
            if pending:  # stopped early (closed, Ctrl-C, an error): nobody will read these
                self._cancel()

    def _task_error(self, fut: Future, result: Any, batch: list) -> BaseException:
        """The error of a task that did not finish (``as_completed`` gives ``(type, error, traceback)``)."""
        error = result[1] if isinstance(result, tuple) and len(result) == 3 else result
        if fut.status == "cancelled" or isinstance(error, CancelledError):  # not by us: the scheduler is gone
            raise ClusterUnavailable(
                f"lost the connection to the Dask scheduler at {self._address} while scoring (the task of "
                f"{_short(batch[0])} was cancelled); files finished so far are saved: rerun to resume")
        return error if isinstance(error, BaseException) else RuntimeError(f"the Dask task failed: {error!r}")

    def _outcome(self, item: T, ok: bool, payload: bytes, on_crash: OnCrash | None) -> R:
        ok, value = unpickle_outcome(ok, payload)
        return value if ok else self._failed(item, value, on_crash)  # type: ignore[return-value,arg-type]

    def _failed(self, item: T, error: BaseException, on_crash: OnCrash | None) -> R:
        if isinstance(error, KilledWorker):
            last = getattr(error.last_worker, "address", error.last_worker)
            crashed = WorkerCrashed(f"Dask workers died running it, also when it ran alone; the last at {last}")
            if on_crash is None:
                raise WorkerCrashed(f"{crashed} (item {_short(item)})") from error
            return on_crash(item, crashed)
        if on_crash is None:  # (even SystemExit: it ended a task on a worker, not this process)
            raise error
        return on_crash(item, error)

    def _cancel(self) -> None:
        futures = list(self._pending)
        self._pending.clear()
        if futures and self.client.status == "running":
            try:
                self.client.cancel(futures)
            except (OSError, TimeoutError):  # the scheduler is gone: nothing left to cancel
                pass

    def close(self, abandon: bool = False) -> None:
        """Cancel what is still pending (``abandon``; after a finished run nothing is), close the client if this
        engine opened it and the LocalCluster if it started one (its worker processes end)."""
        if abandon:
            self._cancel()
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(abandon=exc_type is not None)
