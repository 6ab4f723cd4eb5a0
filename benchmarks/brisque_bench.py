"""BRISQUE throughput, measured side by side in one run on the real images of ../shared/data.

    .venv/bin/python benchmarks/brisque_bench.py [--data ../shared/data] [--quick]

Prints images/s for: decoding only; medgap BRISQUE on ready arrays (512x512 gray, ImageNet-sized,
2000x2000), single thread; end to end (files in, scores out); `score_collection` with 1 and 2 workers;
and each peer that runs offline (OpenCV contrib's C++ QualityBRISQUE, PyPI `brisque`, PyPI `pybrisque`;
see benchmarks/_peers.py for installing the latter two), with the ratios. Targets (issue 2): >= 200/s at
512x512, >= 2x OpenCV, >= 10/s at 2000x2000, end to end >= 80% of scoring only, 2 workers close to 2x.
"""

from __future__ import annotations

import argparse
import json
import os

for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_k, "1")  # single thread for the in-process measurements

import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from medgap.io import collect, read_frames, to_gray255  # noqa: E402
from medgap.quality import create_metric  # noqa: E402
from medgap.quality.brisque import brisque  # noqa: E402
from medgap.scoring import score_collection  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
cv2.setNumThreads(1)


def best_rate(fn, items, repeat: int) -> float:
    """Best images/s over ``repeat`` passes of fn over items."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for x in items:
            fn(x)
        best = min(best, time.perf_counter() - t)
    return len(items) / best


def peer_rate(peer: str, arrays: list[np.ndarray], repeat: int, ref: Path) -> tuple[float | None, str]:
    if peer != "opencv" and not (REPO / ".peers" / peer).is_dir():
        return None, f"not installed (see benchmarks/_peers.py: pip install --no-deps --target .peers/{peer} ...)"
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "a.npz"
        np.savez(npz, **{f"{i:05d}": a for i, a in enumerate(arrays)})
        env = dict(os.environ, PYTHONPATH="")
        r = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "_peers.py"), peer, str(npz), str(repeat), str(ref)],
            capture_output=True, text=True, env=env,
        )
    if r.returncode != 0:
        return None, "failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return len(arrays) / out["seconds"], ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--reference", type=Path, default=REPO.parent / "shared" / "reference")
    ap.add_argument("--quick", action="store_true", help="fewer images and repeats (about a minute)")
    args = ap.parse_args()
    man = pd.read_csv(args.data / "MANIFEST.csv")
    n = 60 if args.quick else 200
    repeat = 2 if args.quick else 3
    mr_files = [args.data / p for p in man.path[man.modality == "mr"]][:n]
    nat_files = [args.data / p for p in man.path[man.modality == "natural"]][:n]

    def decode(p):
        return to_gray255(next(read_frames(p)))

    mr = [decode(p) for p in mr_files]
    nat = [decode(p) for p in nat_files]
    assert all(a.shape == (512, 512) for a in mr), "the MR set is 512x512 gray"
    big = [cv2.resize(a, (2000, 2000), interpolation=cv2.INTER_CUBIC) for a in mr[: (5 if args.quick else 12)]]
    brisque(mr[0])  # JIT warm-up (cached on disk after the first run)

    rows: list[tuple[str, float | None, str]] = []
    r_dec_mr = best_rate(decode, mr_files, repeat)
    r_dec_nat = best_rate(decode, nat_files, repeat)
    r_512 = best_rate(brisque, mr, repeat)
    r_nat = best_rate(brisque, nat, repeat)
    r_2k = best_rate(brisque, big, repeat)
    r_e2e_mr = best_rate(lambda p: brisque(decode(p)), mr_files, repeat)
    r_e2e_nat = best_rate(lambda p: brisque(decode(p)), nat_files, repeat)
    rows += [
        ("decode only: 512x512 gray MR JPEG", r_dec_mr, ""),
        ("decode only: ImageNet colour JPEG", r_dec_nat, ""),
        ("medgap BRISQUE, arrays: 512x512 gray", r_512, ""),
        ("medgap BRISQUE, arrays: ImageNet-sized", r_nat, f"mean size {np.mean([a.size for a in nat]) ** 0.5:.0f}^2"),
        ("medgap BRISQUE, arrays: 2000x2000", r_2k, ""),
        ("medgap end to end: MR files", r_e2e_mr, f"{r_e2e_mr / r_512:.0%} of scoring only"),
        ("medgap end to end: ImageNet files", r_e2e_nat, f"{r_e2e_nat / r_nat:.0%} of scoring only"),
    ]
    # files in, scores out through score_collection (in-process: decoding overlaps scoring in a reader thread)
    for label, group, files, ref_rate in (("MR", "mr", mr_files, r_512), ("ImageNet", "natural", nat_files, r_nat)):
        srcs = collect(groups=[(group, args.data / group)])[: len(files)]
        best = 0.0
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                s = score_collection(srcs, [create_metric("brisque")], Path(tmp) / "s.parquet", workers=1)
                best = max(best, s.items_scored / (time.perf_counter() - t))
        rows.append((f"score_collection end to end, 1 worker: {label}", best, f"{best / ref_rate:.0%} of scoring only"))
        if group == "natural":
            r_e2e_pipeline = best / ref_rate
    # score_collection, 1 vs 2 worker processes, on the MR + natural files (output to a temp dir each time)
    sources = collect(groups=[(m, args.data / m) for m in ("mr", "natural", "cxr", "ct")])
    metric = [create_metric("brisque")]
    rates = {}
    for workers, prefetch in ((1, False), (1, True), (2, False)):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            s = score_collection(sources, metric, Path(tmp) / "s.parquet", workers=workers, prefetch=prefetch)
            rates[workers, prefetch] = s.items_scored / (time.perf_counter() - t)
    one = rates[1, False]
    rows += [
        (f"score_collection, 1 process, no prefetch ({len(sources)} files)", one, "incl. Parquet output"),
        ("score_collection, 1 process + reader thread", rates[1, True], f"{rates[1, True] / one:.2f}x"),
        ("score_collection, 2 worker processes", rates[2, False], f"{rates[2, False] / one:.2f}x of 1 process"),
    ]
    peers = {}
    for peer in ("opencv", "brisque", "pybrisque"):
        subset = mr if peer == "opencv" else mr[: (10 if args.quick else 30)]
        rate, why = peer_rate(peer, subset, repeat if peer == "opencv" else 1, args.reference)
        peers[peer] = rate
        label = {"opencv": "OpenCV contrib QualityBRISQUE (C++)", "brisque": "PyPI brisque 0.2.0",
                 "pybrisque": "PyPI pybrisque 1.0"}[peer]
        rows.append((f"peer {label}: 512x512 gray", rate, why or f"medgap is {r_512 / rate:.1f}x"))

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}"
          f"; numpy {np.__version__}; opencv {cv2.__version__}")
    print(f"{'measurement':52s} {'images/s':>10s}  note")
    for name, rate, note in rows:
        print(f"{name:52s} {('%.1f' % rate) if rate else '-':>10s}  {note}")
    print()
    print("targets: 512x512 >= 200/s: {}; >= 2x OpenCV: {}; 2000x2000 >= 10/s: {}; end to end >= 80%: {}; "
          "2 workers: {:.2f}x".format(
              "yes" if r_512 >= 200 else "NO",
              ("yes" if peers["opencv"] and r_512 >= 2 * peers["opencv"] else "NO") + (
                  f" ({r_512 / peers['opencv']:.2f}x)" if peers["opencv"] else ""),
              "yes" if r_2k >= 10 else "NO",
              ("yes" if r_e2e_mr >= 0.8 * r_512 else "NO") + f" (MR {r_e2e_mr / r_512:.0%}, ImageNet pipeline "
              f"{r_e2e_pipeline:.0%})",
              rates[2, False] / rates[1, False]))


if __name__ == "__main__":
    main()
