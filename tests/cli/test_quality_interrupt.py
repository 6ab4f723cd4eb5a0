"""`medgap quality` killed (kill -9) or interrupted (Ctrl-C) mid-run, then rerun: every item exactly once, with the
scores of an uninterrupted run."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from medgap.cli import app

N_PHOTOS = 48
runner = CliRunner()


def _copy_photos(shared_data: Path, dest: Path) -> Path:
    """Real ImageNet photos in two groups plus one corrupt file (so the finished run exits 1)."""
    for i, f in enumerate(sorted((shared_data / "natural").glob("*.JPEG"))[:N_PHOTOS]):
        d = dest / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d / f.name)
    (dest / "a" / "broken.png").write_text("not an image")
    return dest


@pytest.fixture(scope="module")
def reference(shared_data, tmp_path_factory) -> pd.Series:
    """BRISQUE of each file name from one uninterrupted run."""
    folder = _copy_photos(shared_data, tmp_path_factory.mktemp("clean") / "photos")
    out = folder.parent / "clean.parquet"
    r = runner.invoke(app, ["quality", str(folder), "--out", str(out)])
    assert r.exit_code == 1, r.output  # broken.png
    df = pd.read_parquet(out)
    return df.set_index(df.path.map(lambda p: Path(p).name)).brisque.sort_index()


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from medgap.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_a_part(out: Path, proc: subprocess.Popen) -> None:
    parts = out.with_name(out.name + ".parts")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if parts.is_dir() and any(parts.glob("part-*.parquet")):
            return
        time.sleep(0.01)
    pytest.fail(f"the run ended or stalled before saving a part (exit {proc.poll()}); cannot test an interruption")


@pytest.mark.parametrize(
    "sig, workers", [(signal.SIGKILL, "1"), (signal.SIGINT, "2")], ids=["kill-9-serial", "ctrl-c-2-workers"]
)
def test_rerun_after_an_interruption_completes_without_loss_or_duplicates(
    shared_data, tmp_path, reference, sig, workers
):
    folder = _copy_photos(shared_data, tmp_path / "photos")
    out = tmp_path / "scores.parquet"
    args = ["quality", str(folder), "--out", str(out), "--workers", workers]
    proc = _cli(*args, "--save-every", "0.05")
    _wait_for_a_part(out, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, stderr
        assert "run the same command again to resume" in " ".join(stderr.split())
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and out.with_name(out.name + ".parts").is_dir()  # saved in parts, not merged

    r = runner.invoke(app, args)  # the same command again
    assert r.exit_code == 1, r.output  # broken.png, whichever run met it
    text = " ".join(r.output.split())
    assert "broken.png" in text and " 0 files already done" not in text and "files already done (resumed)" in text
    assert not out.with_name(out.name + ".parts").exists()
    df = pd.read_parquet(out)
    assert len(df) == N_PHOTOS + 1 and df.item_id.is_unique
    got = df.set_index(df.path.map(lambda p: Path(p).name)).brisque.sort_index()
    pd.testing.assert_series_equal(got, reference)
