"""Frames per second of a network metric batched vs one frame at a time (issue 9, item 6), side by side.

    .venv/bin/python benchmarks/network_metric_bench.py [--frames 128] [--size 256] [--batch-sizes 1,8,32]
                                                        [--device cpu] [--threads 1]

The metric is the tests' ``testnet`` (tests/_network_metric.py: a fixed-seed two-layer conv net, run through
the same NetworkMetricFn protocol as any network metric). Three measurements on the same frames:

- ``compute_many``: the metric on converted frames in memory, at each of ``--batch-sizes`` (1: one frame
  per forward pass);
- ``score_collection``: a folder of PNG files written from the frames, scored end to end (decoding, the
  reader thread, the store), at each batch size.

Each timing is the best of ``--repeat`` runs after one warm-up (which also loads the model once). ``--threads``
sets torch's intra-op threads (0: torch's default); on a shared machine more threads than free cores make
every timing slow and noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _network_metric  # noqa: E402,F401  (registers "testnet")
from medgap.io import collect  # noqa: E402
from medgap.quality import create_metric  # noqa: E402
from medgap.scoring import score_collection  # noqa: E402


def _frames(n: int, size: int) -> list[np.ndarray]:
    """Smooth random images (a blurred noise field plus a gradient), 0-255 float64, as to_gray255 gives them."""
    import cv2

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        x = cv2.GaussianBlur(rng.normal(128, 60, (size, size)), (0, 0), 3) + np.linspace(-30, 30, size)
        out.append(np.clip(x, 0, 255).round())
    return out


def _best(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-sizes", default="1,8,32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    metric = create_metric("testnet")
    frames = _frames(args.frames, args.size)
    print(f"testnet on {args.frames} frames of {args.size}x{args.size}, device {args.device}, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    rows = []
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    for bs in sizes:
        t = _best(lambda: metric.compute_many(frames, device=args.device, batch_size=bs), args.repeat)
        rows.append(("compute_many", bs, args.frames / t))
    with tempfile.TemporaryDirectory() as tmp:
        import cv2

        folder = Path(tmp) / "frames" / "g"
        folder.mkdir(parents=True)
        for i, f in enumerate(frames):
            cv2.imwrite(str(folder / f"{i:04d}.png"), f.astype(np.uint8))
        sources = collect([folder.parent])
        for bs in sizes:
            k = iter(range(10**6))

            def run() -> None:
                score_collection(sources, [metric], Path(tmp) / f"s{bs}-{next(k)}.parquet", batch_size=bs,
                                 device=args.device)

            t = _best(run, args.repeat)
            rows.append(("score_collection", bs, args.frames / t))
    print(f"{'path':<18} {'batch_size':>10} {'frames/s':>10}")
    for path, bs, fps in rows:
        print(f"{path:<18} {bs:>10} {fps:>10.1f}")
    for path in ("compute_many", "score_collection"):
        fps = {bs: f for p, bs, f in rows if p == path}
        first = fps[sizes[0]]
        print(f"{path}: " + ", ".join(f"batch {bs} / batch {sizes[0]} = {f / first:.2f}x" for bs, f in fps.items()
                                      if bs != sizes[0]))


if __name__ == "__main__":
    main()
