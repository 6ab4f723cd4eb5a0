"""The parallel map: bounded in-flight work, a worker that dies, abandoning work on Ctrl-C, the cluster hook."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from medgap.scoring import ProcessEngine, SerialEngine, WorkerCrashed, make_engine

# Module-level functions: worker processes import this module to unpickle them.


def _times_ten(x: int) -> int:
    return x * 10


def _die_on_five(x: int) -> int:
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)  # what a segfault in a decoder or the OOM killer does to a worker
    return x * 10


def _sleep_on_one(x: int) -> int:
    if x == 1:
        time.sleep(120)
    return x


def _thread_env(_: int) -> tuple[str | None, ...]:
    return tuple(os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"))


def test_items_are_pulled_lazily_with_a_bounded_number_in_flight():
    pulled = []

    def items():
        for i in range(40):
            pulled.append(i)
            yield i

    with ProcessEngine(1, in_flight_per_worker=2) as engine:
        results = engine.imap_unordered(_times_ten, items())
        first = next(results)
        assert len(pulled) <= 3  # 2 in flight, 1 submitted to replace the finished one
        rest = list(results)
    assert sorted([first, *rest]) == [10 * i for i in range(40)]


def test_workers_run_single_threaded_blas_and_numba():
    with ProcessEngine(2) as engine:
        envs = set(engine.imap_unordered(_thread_env, range(4)))
    # a value the user exported wins; otherwise 1
    expected = tuple(os.environ.get(k, "1") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"))
    assert envs == {expected}


def test_a_dying_worker_costs_only_its_item():
    with ProcessEngine(2) as engine:
        got = list(engine.imap_unordered(_die_on_five, range(12), on_crash=lambda item, e: ("crashed", item)))
    assert sorted(r for r in got if isinstance(r, int)) == [10 * i for i in range(12) if i != 5]
    assert [r for r in got if not isinstance(r, int)] == [("crashed", 5)]
    with ProcessEngine(2) as engine, pytest.raises(WorkerCrashed, match="5"):
        list(engine.imap_unordered(_die_on_five, range(8)))


def test_abandoning_does_not_wait_for_work_in_flight():
    engine = ProcessEngine(2)
    results = engine.imap_unordered(_sleep_on_one, [0, 1])
    assert next(results) == 0
    t = time.perf_counter()
    engine.close(abandon=True)  # item 1 sleeps two minutes; its result will never be read
    assert time.perf_counter() - t < 30


def test_make_engine():
    assert isinstance(make_engine(1), SerialEngine)
    with pytest.raises(ValueError, match="workers"):
        make_engine(0)
    with pytest.raises(ValueError, match="choose one engine"):
        make_engine(2, address="tcp://scheduler:8786")


def test_the_cluster_engine_without_dask_names_the_extra(monkeypatch):
    """Whether or not dask is installed here: its import is made to fail as it does where it is not."""
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "medgap.scoring.dask_engine", raising=False)
    with pytest.raises(ImportError, match=r"Dask scheduler at tcp://scheduler:8786 .*pip install 'medgap\[cluster\]'"):
        make_engine(address="tcp://scheduler:8786")
    with pytest.raises(ImportError, match=r"LocalCluster .*pip install 'medgap\[cluster\]'"):
        make_engine(local=2)


def _unsendable(x: int):
    """Item 3's result cannot be pickled in the worker; item 5 raises an exception whose class cannot be pickled
    (like pyo3's PanicException, whose module cannot be imported); item 7 raises one that pickles but cannot
    be rebuilt in the parent (its constructor wants two arguments)."""
    if x == 3:
        return threading.Lock()
    if x == 5:
        class LocalPanic(BaseException):
            pass

        raise LocalPanic("index out of bounds")
    if x == 7:
        raise NeedsTwo("a", "b")
    return x * 10


class NeedsTwo(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(a)


@pytest.mark.parametrize("engine", [SerialEngine, lambda: ProcessEngine(2)], ids=["serial", "processes"])
def test_a_result_or_error_that_cannot_come_back_fails_its_item_only(engine):
    with engine() as e:
        got = list(e.imap_unordered(_unsendable, range(10), on_crash=lambda item, err: ("failed", item)))
    assert sorted(r for r in got if isinstance(r, int)) == [10 * i for i in range(10) if i not in (3, 5, 7)]
    failed = sorted(r[1] for r in got if isinstance(r, tuple))
    # in-process, the lock is a fine result: only the raising items fail
    assert failed == ([5, 7] if engine is SerialEngine else [3, 5, 7])
