"""The Dask engine on a real LocalCluster of worker processes: the rows of the serial engine, through the library
and ``medgap quality --scheduler`` / ``--dask-local``; resuming an interrupted run; a worker killed mid-run; a
file that kills every worker that runs it; a scheduler that is not there."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import medgap  # noqa: E402
from medgap.cli import app  # noqa: E402
from medgap.io import collect  # noqa: E402
from medgap.quality import create_metric  # noqa: E402
from medgap.quality.registry import Metric, MetricInfo  # noqa: E402
from medgap.scoring import WorkerCrashed, make_engine, score_collection  # noqa: E402
from medgap.scoring import dask_engine  # noqa: E402
from medgap.scoring.dask_engine import DaskEngine  # noqa: E402

METRICS = ("brisque", "niqe")
N_PHOTOS = 10
runner = CliRunner()


@pytest.fixture(scope="module")
def photos(shared_data, tmp_path_factory) -> Path:
    """Ten real ImageNet photos in two groups, plus a file that is not an image."""
    dest = tmp_path_factory.mktemp("dask") / "photos"
    for i, f in enumerate(sorted((shared_data / "natural").glob("*.JPEG"))[:N_PHOTOS]):
        (dest / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest / "ab"[i % 2] / f.name)
    (dest / "a" / "broken.png").write_text("not an image")
    return dest


def _table(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out).set_index("item_id").sort_index()


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory) -> pd.DataFrame:
    """The serial engine's table (one process, no Dask)."""
    out = tmp_path_factory.mktemp("serial") / "serial.parquet"
    s = score_collection(collect([photos]), [create_metric(m) for m in METRICS], out, workers=1)
    assert (s.files_scored, s.files_failed) == (N_PHOTOS + 1, 1)
    return _table(out)


def _assert_same_rows(got: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert list(got.index) == list(reference.index)  # the same items, each once
    for c in ("brisque", "brisque_flat_fraction", "niqe", "niqe_nan_block_fraction"):
        np.testing.assert_allclose(got[c].to_numpy(float), reference[c].to_numpy(float), rtol=1e-9, equal_nan=True)
    pd.testing.assert_series_equal(got["error"], reference["error"])  # broken.png's reason, nothing else
    assert got["error"].notna().sum() == 1
    pd.testing.assert_series_equal(got["group"], reference["group"])


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two worker processes, as a user would start a scheduler: the tests reach it by address.
    ``allowed-failures`` 0 (as DaskEngine.local): Dask's first KilledWorker comes at the first death, so a file
    that kills its worker costs two deaths (the engine reruns it alone once), not eight."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     silence_logs=logging.ERROR)
    yield c
    c.close()


def _times_ten(x: int) -> int:
    return x * 10


def _exit_on_30(x: int) -> int:
    if x == 30:
        os._exit(1)  # what a segfault in a decoder or the OOM killer does to a worker
    return x * 10


def _unsendable(x: int):
    """Item 23's result cannot be pickled in the worker; item 25 raises an exception whose class cannot be
    pickled (like pyo3's PanicException); item 27 raises one that cannot be rebuilt here (two arguments)."""
    if x == 23:
        return threading.Lock()
    if x == 25:
        class LocalPanic(BaseException):
            pass

        raise LocalPanic("index out of bounds")
    if x == 27:
        raise NeedsTwo("a", "b")
    return x * 10


class NeedsTwo(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(a)


def test_engine_yields_every_result_once_and_a_killing_item_fails_alone(cluster):
    pulled = []

    def items(n):
        for i in range(n):
            pulled.append(i)
            yield i

    with DaskEngine.connect(cluster.scheduler_address, in_flight_per_worker=2) as engine:
        results = engine.imap_unordered(_times_ten, items(40))
        first = next(results)
        assert len(pulled) <= 2 * 2 + 1  # bounded: 2 per worker in flight, one more to replace the finished
        assert sorted([first, *results]) == [10 * i for i in range(40)]
        # item 30 comes in a batch (the first tasks hold one item, then batches): the batch is rerun item by item
        got = list(engine.imap_unordered(_exit_on_30, range(40), on_crash=lambda item, e: ("crashed", item, e)))
        assert sorted(r for r in got if isinstance(r, int)) == [10 * i for i in range(40) if i != 30]
        [(_, item, error)] = [r for r in got if isinstance(r, tuple)]
        assert item == 30 and isinstance(error, WorkerCrashed) and "also when it ran alone" in str(error)
        with pytest.raises(WorkerCrashed, match="30"):
            list(engine.imap_unordered(_exit_on_30, range(31)))


def test_an_item_whose_result_or_error_cannot_come_back_fails_alone_not_its_batch(cluster):
    with DaskEngine.connect(cluster.scheduler_address) as engine:
        got = list(engine.imap_unordered(_unsendable, range(40), on_crash=lambda item, e: ("failed", item, e)))
    assert sorted(r for r in got if isinstance(r, int)) == [10 * i for i in range(40) if i not in (23, 25, 27)]
    failed = {r[1]: r[2] for r in got if isinstance(r, tuple)}
    assert sorted(failed) == [23, 25, 27]
    assert "cannot pickle '_thread.lock'" in str(failed[23]) and "LocalPanic: index out of bounds" in str(failed[25])


def test_make_engine_choices():
    with pytest.raises(ValueError, match="choose one engine"):
        make_engine(2, local=2)
    with pytest.raises(ValueError, match="choose one engine"):
        make_engine(1, address="tcp://127.0.0.1:8786", local=2)
    with pytest.raises(ValueError, match="at least 1"):
        make_engine(1, local=0)


def test_abandoning_a_local_cluster_does_not_wait_for_work_in_flight():
    engine = make_engine(1, local=1)
    assert isinstance(engine, DaskEngine)
    pids = set(engine.client.run(os.getpid).values())
    results = engine.imap_unordered(time.sleep, [0, 60])
    assert next(results) is None  # the first item; the second sleeps on the only worker
    time.sleep(1)
    assert [f.status for f in engine._pending] == ["pending"]  # running, not done
    t = time.perf_counter()
    results.close()
    engine.close(abandon=True)  # the worker sleeps a minute; nobody will read its result
    assert time.perf_counter() - t < 20
    for _ in range(50):  # the worker process is gone with its cluster
        if not any(_alive(p) for p in pids):
            break
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_scheduler_gives_the_serial_rows(photos, reference, cluster, tmp_path):
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["quality", str(photos), "--out", str(out), *(a for m in METRICS for a in ("-m", m)),
                            "--scheduler", cluster.scheduler_address])
    assert r.exit_code == 1, r.output  # broken.png
    _assert_same_rows(_table(out), reference)
    # the notebook path, on the same cluster
    df = medgap.score(photos, list(METRICS), scheduler=cluster.scheduler_address).set_index("item_id").sort_index()
    _assert_same_rows(df, reference)


def test_dask_local_resumes_an_interrupted_run_with_nothing_scored_twice(photos, reference, tmp_path):
    out = tmp_path / "s.parquet"
    stop_after = 3

    def interrupt(done: int, total: int, items: int) -> None:
        if done >= stop_after:
            raise KeyboardInterrupt

    first = score_collection(collect([photos]), [create_metric(m) for m in METRICS], out, dask_local=2,
                             progress=interrupt, flush_every=1)
    assert first.interrupted and first.files_scored == stop_after and not out.exists()
    r = runner.invoke(app, ["quality", str(photos), "--out", str(out), *(a for m in METRICS for a in ("-m", m)),
                            "--dask-local", "2"])
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    scored = re.search(r"from (\d+) files in .* (\d+) files already done \(resumed\)", text)
    assert scored, text
    assert (int(scored[1]), int(scored[2])) == (N_PHOTOS + 1 - stop_after, stop_after)  # the rest, once
    _assert_same_rows(_table(out), reference)


def test_a_worker_killed_mid_run_costs_only_its_tasks(photos, reference, cluster, tmp_path):
    """SIGKILL one worker after the first file: the scheduler reruns the tasks it held on the other worker (and
    on its replacement): every file gets its scores, none an error."""
    out = tmp_path / "s.parquet"
    killed: list[int] = []
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        before = set(client.run(os.getpid).values())

        def kill_one(done: int, total: int, items: int) -> None:
            if done == 1 and not killed:
                killed.append(sorted(before)[0])
                os.kill(killed[0], signal.SIGKILL)

        s = score_collection(collect([photos]), [create_metric(m) for m in METRICS], out,
                             scheduler=cluster.scheduler_address, progress=kill_one)
        assert killed and not _alive(killed[0])
        assert (s.files_scored, s.files_failed, s.items_failed) == (N_PHOTOS + 1, 1, 1)
        _assert_same_rows(_table(out), reference)
    finally:
        client.close()


def _poison(gray: np.ndarray) -> dict[str, float]:
    if gray.shape == (40, 40):  # poison.png
        os._exit(1)
    return {"mean_gray": float(gray.mean())}


def _poison_factory():
    return _poison


POISON = Metric(MetricInfo(name="poison", factory=_poison_factory, version="1", columns=("mean_gray",),
                           lower_is_better=False, range=None, description="mean gray level; kills its process "
                           "on a 40x40 image", reference="test"), _poison)


def test_a_file_that_kills_every_worker_running_it_gets_an_error_row(cluster, tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs" / "g"
    folder.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(folder / f"fine{i}.png"), rng.integers(0, 256, (64, 64), dtype=np.uint8))
    cv2.imwrite(str(folder / "poison.png"), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    out = tmp_path / "s.parquet"
    s = score_collection(collect([tmp_path / "imgs"]), [POISON], out, scheduler=cluster.scheduler_address)
    df = pd.read_parquet(out).set_index(pd.read_parquet(out).path.map(lambda p: Path(p).name))
    assert (s.files_scored, s.files_failed, s.items_scored) == (7, 1, 6)
    assert "the worker process died on this file each time it ran (Dask workers died running it, also when it ran alone" in df.loc["poison.png", "error"]
    fine = df.drop(index="poison.png")
    assert fine.error.isna().all()
    expected = {f"fine{i}.png": float(cv2.imread(str(folder / f"fine{i}.png"), cv2.IMREAD_GRAYSCALE).mean())
                for i in range(6)}
    assert fine.mean_gray.to_dict() == pytest.approx(expected, rel=1e-12)


def test_an_unreachable_scheduler_exits_2_quickly_naming_it(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", 2.0)
    out = tmp_path / "s.parquet"
    t = time.perf_counter()
    r = runner.invoke(app, ["quality", str(photos), "--out", str(out), "--scheduler", "tcp://127.0.0.1:1"])
    assert r.exit_code == 2, r.output
    assert time.perf_counter() - t < 15
    text = " ".join(r.output.split())
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1 within 2 s" in text
    assert not out.exists()


def test_engine_options_exclude_each_other(photos, tmp_path):
    r = runner.invoke(app, ["quality", str(photos), "--out", str(tmp_path / "s.parquet"), "--dask-local", "2",
                            "--workers", "2"])
    assert r.exit_code == 2 and "choose one way to run the workers" in " ".join(r.output.split())
    r = runner.invoke(app, ["quality", str(photos), "--out", str(tmp_path / "s.parquet"), "--dask-local", "0"])
    assert r.exit_code == 2 and "--dask-local must be at least 1" in " ".join(r.output.split())
