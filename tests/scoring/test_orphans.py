"""Killing the main process of a run with worker processes (kill -9, the OOM killer, plain ``kill``) leaves no
fork server and no worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc (Linux)")

_METRIC = textwrap.dedent(
    """
    import time
    from medgap.quality.registry import Metric, MetricInfo

    def slow(gray):
        time.sleep(0.1)
        return {"slow": float(gray.mean())}

    def factory():
        return slow

    SLOW = Metric(MetricInfo("slow", factory, "1", ("slow",), False, None, "sleeps 0.1 s", "test"), slow)
    """
)

_RUNNER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from slowmetric import SLOW
    from medgap.io import collect
    from medgap.scoring import score_collection
    score_collection(collect([sys.argv[2]]), [SLOW], sys.argv[3], workers=2, flush_seconds=0.05)
    """
)


def _state(pid: int) -> str | None:
    """The process's state letter (Z: exited, not yet reaped), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    found, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


@pytest.fixture()
def images(tmp_path) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs" / "g"
    folder.mkdir(parents=True)
    for i in range(200):  # 0.1 s each on two workers: ten seconds of work, killed after about one
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 256, (32, 32), dtype=np.uint8))
    (tmp_path / "slowmetric.py").write_text(_METRIC)
    return tmp_path / "imgs"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "kill"])
def test_no_process_of_a_killed_run_survives_it(images, tmp_path, sig):
    out = tmp_path / "s.parquet"
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(tmp_path), str(images), str(out)],
                            start_new_session=True, stderr=subprocess.DEVNULL)
    spawned: set[int] = set()
    try:
        parts = out.with_name(out.name + ".parts")
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            spawned |= _descendants(proc.pid)
            if parts.is_dir() and any(parts.glob("part-*.parquet")) and len(spawned) >= 4:
                break  # resource tracker, fork server and two workers, scoring
            time.sleep(0.05)
        else:
            pytest.fail(f"the run ended or stalled before scoring (exit {proc.poll()}); cannot test killing it")
        spawned |= _descendants(proc.pid)
        proc.send_signal(sig)
        proc.wait(10)
        deadline = time.time() + 10
        alive = spawned
        while alive and time.time() < deadline:
            alive = {p for p in alive if _state(p) not in (None, "Z")}
            time.sleep(0.1)
        assert not alive, f"{len(alive)} of the run's {len(spawned)} processes outlived it by 10 s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in spawned:  # whatever the test found, it ends: never leave orphans behind
            if _state(pid) not in (None, "Z"):
                os.kill(pid, signal.SIGKILL)
