"""Failures that are not ``Exception``s never hang or crash a run: a damaged RLE DICOM (the Rust decoder panics
with a ``BaseException``), a metric raising a ``BaseException`` subclass, a reader thread that ends mid-file."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medgap.io import collect
from medgap.quality import create_metric
from medgap.quality.registry import Metric, MetricInfo
from medgap.scoring import run, score_collection


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: the alarm interrupts a main thread blocked on a queue or a lock."""

    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s: the run hangs")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def damaged_rle(dest: Path) -> Path:
    """pydicom's MR_small_RLE.dcm with 20 bytes flipped in its last two-thirds: pylibjpeg-rle panics (Rust)."""
    from pydicom.data import get_testdata_file

    data = bytearray(Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes())
    start = len(data) // 3
    for k in range(20):
        data[start + (k * 7919) % (len(data) - start)] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


@pytest.fixture()
def dicoms_with_a_damaged_rle(tmp_path) -> Path:
    from pydicom.data import get_testdata_file

    folder = tmp_path / "dicom" / "mr"
    folder.mkdir(parents=True)
    for name in ("MR_small_RLE.dcm", "MR_small.dcm", "CT_small.dcm", "MR_small_bigendian.dcm"):
        shutil.copy(get_testdata_file(name), folder / name)
    damaged_rle(folder / "damaged_rle.dcm")
    return tmp_path / "dicom"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_damaged_rle_dicom_fails_alone_and_the_others_are_scored(dicoms_with_a_damaged_rle, tmp_path, workers):
    out = tmp_path / "s.parquet"
    sources = collect([dicoms_with_a_damaged_rle])
    with deadline(120):
        s = score_collection(sources, [create_metric("brisque")], out, workers=workers)
    df = pd.read_parquet(out).set_index(pd.read_parquet(out).path.map(lambda p: Path(p).name))
    assert (s.files_total, s.files_failed, s.items_scored) == (5, 1, 4)
    assert df.loc["damaged_rle.dcm", "error"]  # its reason, whatever the decoder said
    assert df.drop(index="damaged_rle.dcm").error.isna().all() and df.brisque.notna().sum() == 4
    with deadline(120):  # a rerun neither hangs nor crashes: the damaged file's row is kept, nothing rescored
        again = score_collection(sources, [create_metric("brisque")], out, workers=workers)
    assert (again.files_skipped, again.earlier_failed, again.rows) == (5, 1, 5)


class DecoderPanic(BaseException):
    """Like pyo3's PanicException: a ``BaseException``, not an ``Exception``."""


def _panics_on_small_images(gray: np.ndarray) -> dict[str, float]:
    if min(gray.shape) < 100:
        raise DecoderPanic("index out of bounds: the len is 8192 but the index is 8193")
    return {"probe": float(gray.mean())}


def _panicking_factory():
    return _panics_on_small_images


PROBE = Metric(
    MetricInfo(name="probe", factory=_panicking_factory, version="1", columns=("probe",), lower_is_better=False,
               range=None, description="mean gray level; panics on images under 100 px", reference="test"),
    _panics_on_small_images,
)


@pytest.fixture()
def small_and_large(tmp_path) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs" / "g"
    folder.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(folder / f"large{i}.png"), rng.integers(0, 256, (128, 128), dtype=np.uint8))
    cv2.imwrite(str(folder / "small.png"), rng.integers(0, 256, (32, 32), dtype=np.uint8))
    return tmp_path / "imgs"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_metric_raising_a_base_exception_fails_its_frame_only(small_and_large, tmp_path, workers):
    out = tmp_path / "s.parquet"
    with deadline(120):
        s = score_collection(collect([small_and_large]), [PROBE], out, workers=workers)
    df = pd.read_parquet(out).set_index(pd.read_parquet(out).path.map(lambda p: Path(p).name))
    assert (s.items_scored, s.items_failed) == (3, 1)
    assert df.loc["small.png", "error"] == "probe: DecoderPanic: index out of bounds: the len is 8192 but the index is 8193"
    assert df.drop(index="small.png").probe.notna().all()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_reader_thread_that_ends_mid_file_is_not_waited_for(tmp_path, monkeypatch):
    """The reader thread dies (an exception raised in it, delivered by the interpreter as it would deliver any
    asynchronous one) while the main thread waits for its frames: that file gets an error, the others are
    scored by a new reader."""
    import tifffile

    rng = np.random.default_rng(0)
    folder = tmp_path / "stacks" / "g"
    folder.mkdir(parents=True)
    # the reader may hold about 8 of these frames (pixels + gray float64): it is still reading when killed
    monkeypatch.setattr(run, "PREFETCH_BYTES", 8 * 128 * 128 * 9)
    for i in range(4):  # 20 pages each: more than the reader may decode ahead
        tifffile.imwrite(folder / f"s{i}.tif", rng.integers(0, 256, (20, 128, 128), dtype=np.uint8),
                         photometric="minisblack")
    killed = []

    def kill_the_reader(done: int, total: int, items: int) -> None:
        if done == 1 and not killed:
            reader = next(t for t in threading.enumerate() if t.name == "medgap-prefetch")
            n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(reader.ident), ctypes.py_object(SystemExit))
            assert n == 1
            killed.append(reader)

    out = tmp_path / "s.parquet"
    with deadline(60):
        s = score_collection(collect([folder.parent]), [PROBE], out, workers=1, progress=kill_the_reader)
    killed[0].join(5)
    assert killed and not killed[0].is_alive()
    df = pd.read_parquet(out)
    failed = df[df.error.notna()]
    assert len(failed) == 1 and "the reader thread ended unexpectedly" in failed.error.iloc[0]
    assert s.files_scored == 4 and s.files_failed == 1
    # the three other files are whole; the one the reader died on keeps the frames it delivered
    whole = df[df.path != failed.path.iloc[0]]
    assert len(whole) == 60 and whole.probe.notna().all()


def test_the_reader_holds_at_most_its_byte_budget_ahead(tmp_path, monkeypatch):
    """--workers 1 decodes ahead by bytes, not frames: with a budget of one frame the reader waits after the
    next one; with a large budget it reads every file while the first is not yet scored. Either way every
    frame comes out, whole and in order."""
    import time

    import cv2

    from medgap.io import Source

    rng = np.random.default_rng(1)
    paths = []
    for i in range(10):
        paths.append(tmp_path / f"i{i}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 256, (64, 64), dtype=np.uint8))
    tasks = [run._Task(Source(p, "g"), -1, -1, "probe=1", (PROBE,), {}) for p in paths]
    decoded: list[str] = []
    real_load = run._load

    def counting_load(task):
        for item in real_load(task):
            decoded.append(task.source.path.name)
            yield item

    monkeypatch.setattr(run, "_load", counting_load)
    frame_bytes = 64 * 64 * (1 + 8)  # uint8 pixels + the float64 gray input
    for budget, ahead in ((frame_bytes, 2), (100 * frame_bytes, 10)):
        decoded.clear()
        files = run._read_ahead(tasks, max_bytes=budget)
        first = next(files)  # the first file's frames, not consumed yet
        end = time.monotonic() + 10
        while len(decoded) < ahead and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.2)  # time to run further than allowed, if it could
        # one frame in the queue, and the next one decoded and waiting for room (a small budget)
        assert len(decoded) == ahead
        got = [list(first)] + [list(f) for f in files]
        assert [len(g) for g in got] == [1] * 10
        for g, p in zip(got, paths):
            kind, fr, gray, _ = g[0]
            assert kind == "frame" and np.array_equal(gray, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))
