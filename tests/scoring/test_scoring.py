"""Collection scoring: failures reported per file, parallel == serial, resume after kill -9 and Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medgap.io import collect
from medgap.quality import create_metric
from medgap.scoring import score_collection


@pytest.fixture()
def photos(shared_data, tmp_path) -> Path:
    """A folder of 80 real ImageNet photos in two groups, plus a corrupt and a truncated file."""
    src = sorted((shared_data / "natural").glob("*.JPEG"))[:80]
    for i, f in enumerate(src):
        d = tmp_path / "photos" / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d / f.name)
    (tmp_path / "photos" / "a" / "broken.png").write_text("not an image")
    (tmp_path / "photos" / "b" / "cut.jpg").write_bytes(src[0].read_bytes()[:2000])
    return tmp_path / "photos"


def _score(folder: Path, out: Path, **kw):
    return score_collection(collect([folder]), [create_metric("brisque")], out, **kw)


def test_bad_files_reported_others_scored(photos, tmp_path):
    s = _score(photos, tmp_path / "s.parquet")
    df = pd.read_parquet(tmp_path / "s.parquet")
    assert s.files_total == 82 and s.items_scored == 80 and s.items_failed == 2 and s.files_failed == 2
    assert s.rows == 82 and s.earlier_failed == 0
    bad = df[df.error.notna()].set_index(df[df.error.notna()].path.map(lambda p: Path(p).name))
    assert "not a decodable image" in bad.loc["broken.png", "error"]
    assert "truncated JPEG" in bad.loc["cut.jpg", "error"]
    assert np.isnan(bad.brisque).all() and df.brisque.notna().sum() == 80
    assert set(df.group) == {"a", "b"} and df.item_id.is_unique
    assert {"item_id", "path", "frame", "group", "width", "height", "brisque", "brisque_flat_fraction", "error"} <= set(df)


def test_a_frame_whose_metric_fails_gets_its_reason_and_the_others_are_scored(tmp_path):
    import cv2
    import tifffile

    rng = np.random.default_rng(0)
    folder = tmp_path / "g"
    folder.mkdir()
    pages = [rng.integers(0, 256, (64, 64), dtype=np.uint8), np.full((64, 64), 7, np.uint8),
             rng.integers(0, 256, (64, 64), dtype=np.uint8)]
    tifffile.imwrite(folder / "stack.tif", np.stack(pages), photometric="minisblack")  # three gray pages
    cv2.imwrite(str(folder / "flat.png"), np.full((32, 32), 200, np.uint8))
    s = _score(folder, tmp_path / "s.parquet")
    df = pd.read_parquet(tmp_path / "s.parquet").set_index("item_id")
    stack = str((folder / "stack.tif").resolve())
    assert df.loc[f"{stack}#frame=1", "error"] == "brisque: constant image (every pixel is 7): BRISQUE is undefined"
    assert df.loc[[f"{stack}#frame=0", f"{stack}#frame=2"], "error"].isna().all()
    assert df.loc[[f"{stack}#frame=0", f"{stack}#frame=2"], "brisque"].notna().all()
    assert "constant image" in df.loc[str((folder / "flat.png").resolve()), "error"]
    assert (s.items_scored, s.items_failed, s.files_failed, s.frames_failed) == (2, 2, 0, 2)


def test_two_workers_give_the_same_rows_as_one(photos, tmp_path):
    _score(photos, tmp_path / "one.parquet", workers=1)
    _score(photos, tmp_path / "two.parquet", workers=2)
    a = pd.read_parquet(tmp_path / "one.parquet").set_index("item_id").sort_index()
    b = pd.read_parquet(tmp_path / "two.parquet").set_index("item_id").sort_index()
    pd.testing.assert_frame_equal(a, b)


def test_csv_output_opens_in_pandas(photos, tmp_path):
    _score(photos, tmp_path / "s.csv")
    df = pd.read_csv(tmp_path / "s.csv")
    assert len(df) == 82 and df.brisque.notna().sum() == 80
    assert not (tmp_path / "s.csv.parts").exists() and (tmp_path / "s.csv.meta.json").exists()


def test_rerun_skips_done_files_and_rescored_changed_ones(photos, tmp_path):
    out = tmp_path / "s.parquet"
    first = _score(photos, out)
    again = _score(photos, out)
    assert again.files_skipped == first.files_total and again.files_scored == 0
    # the two bad files were not retried (unchanged), but the summary still reports them
    assert (again.items_failed, again.earlier_failed, again.failed_total) == (0, 2, 2)
    assert {Path(item).name for item, _ in again.failures} == {"broken.png", "cut.jpg"}
    changed = sorted((photos / "a").glob("*.JPEG"))[0]
    os.utime(changed, ns=(time.time_ns(), time.time_ns()))  # new mtime -> rescored, old row replaced
    third = _score(photos, out)
    assert third.files_scored == 1
    df = pd.read_parquet(out)
    assert len(df) == 82 and df.item_id.is_unique


_RUNNER = textwrap.dedent(
    """
    import sys
    from medgap.io import collect
    from medgap.quality import create_metric
    from medgap.scoring import score_collection
    s = score_collection(collect([sys.argv[1]]), [create_metric("brisque")], sys.argv[2], flush_every=4,
                         flush_seconds=0.2)
    print("interrupted" if s.interrupted else "done", s.files_scored)
    """
)


def _start(folder: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _RUNNER, str(folder), str(out)], stdout=subprocess.PIPE, text=True)


def _wait_for_parts(out: Path, proc: subprocess.Popen, n: int = 2) -> None:
    parts = out.with_name(out.name + ".parts")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= n:
            return
        time.sleep(0.01)
    pytest.fail("the run finished or stalled before flushing parts; cannot test interruption")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_run_resumes_without_loss_or_duplicates(photos, tmp_path, sig):
    out = tmp_path / "s.parquet"
    proc = _start(photos, out)
    _wait_for_parts(out, proc)
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert stdout.startswith("interrupted")
    assert not out.exists()  # not finalised; parts hold the finished files
    resumed = _score(photos, out)
    assert resumed.files_skipped > 0 and resumed.files_skipped + resumed.files_scored == 82
    df = pd.read_parquet(out)
    assert len(df) == 82 and df.item_id.is_unique
    clean = tmp_path / "clean.parquet"
    _score(photos, clean)
    ref = pd.read_parquet(clean).set_index("item_id").sort_index()
    got = df.set_index("item_id").sort_index()
    pd.testing.assert_series_equal(got.brisque, ref.brisque)
