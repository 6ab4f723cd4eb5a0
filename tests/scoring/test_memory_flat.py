"""Memory stays flat in the number of files with --workers 2 (issue 15): the main process holds paths, labels and
the rows of the files not yet flushed, never decoded frames or every file's rows. Not timed: the benchmark
(benchmarks/scoring_bench.py) holds the speed targets; this holds the growth."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest


def _peak_mib(folder, out, workers: int) -> float:
    code = textwrap.dedent(f"""
        import resource
        from medgap.io import collect
        from medgap.quality import create_metric
        from medgap.scoring import score_collection

        if __name__ == "__main__":
            s = score_collection(collect([{str(folder)!r}]), [create_metric("brisque")], {str(out)!r}, workers={workers})
            assert s.items_scored == s.files_total, s.failures[:3]
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """)
    script = out.with_suffix(".py")
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return float(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("workers", [1, 2])
def test_main_process_memory_is_flat_in_the_number_of_files(tmp_path, workers):
    """200 vs 2,000 files (links to 8 PNGs of 96x128): a main process that kept each file's decoded frame
    (96 KiB as float64; with one worker the frames pass through it) until the end would grow by 170 MiB or
    more; it may grow by the per-file bookkeeping (a few KiB a file)."""
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(8):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 256, (96, 128), dtype=np.uint8))
    peaks = []
    for n in (200, 2000):
        folder = tmp_path / f"links{n}"
        folder.mkdir()
        for i in range(n):
            (folder / f"{i:05d}.png").symlink_to(images / f"{i % 8}.png")
        peaks.append(_peak_mib(folder, tmp_path / f"s{n}.parquet", workers))
    assert peaks[1] - peaks[0] < 40, peaks  # MiB
