"""Games-Howell / Tukey with many groups, and `medgap compare` end to end (issue 8).

    .venv/bin/python benchmarks/posthoc_bench.py [--groups 150] [--rows 3] [--metrics 3]

Writes a scores table of GROUPS groups x ROWS rows (one subfolder per patient gives this shape) with METRICS
score columns (brisque, piqe, niqe), then times: the vectorised studentized range table for k = GROUPS (once
per process), `games_howell` and `tukey_hsd` on one column, `python -m medgap compare` in a subprocess
(import, every statistic of every column, CSV/JSON written, tables printed), and scipy's per-value
`studentized_range.ppf` / `.sf` on a few pairs, extrapolated to every pair (what medgap did before).
Target: compare on 150 groups x 3 rows in under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=150)
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--metrics", type=int, default=3, choices=[1, 2, 3])
    args = ap.parse_args()
    k, n = args.groups, args.rows
    rng = np.random.default_rng(8)
    table = pd.DataFrame({"item_id": [f"p{i:03d}/{j}.png" for i in range(k) for j in range(n)],
                          "group": np.repeat([f"p{i:03d}" for i in range(k)], n)})
    for col in ["brisque", "piqe", "niqe"][: args.metrics]:
        table[col] = rng.normal(np.repeat(rng.normal(30, 8, k), n), rng.uniform(1, 10, k * n))
    pairs = k * (k - 1) // 2
    print(f"{k} groups x {n} rows, {args.metrics} score column(s), {pairs} pairs per test")

    from medgap.stats import games_howell, tukey_hsd
    from medgap.stats._studentized_range import _range_tail

    t0 = time.perf_counter()
    _range_tail(k)
    print(f"range-tail table for k={k}: {time.perf_counter() - t0:.2f} s (once per process)")
    t0 = time.perf_counter()
    gh = games_howell(table, "brisque", "group")
    print(f"games_howell: {time.perf_counter() - t0:.2f} s ({gh.df.nunique()} distinct df)")
    t0 = time.perf_counter()
    tukey_hsd(table, "brisque", "group")
    print(f"tukey_hsd: {time.perf_counter() - t0:.2f} s")

    sample = gh.iloc[:3]
    t0 = time.perf_counter()
    stats.studentized_range.ppf(0.95, k, sample.df.to_numpy())
    per_ppf = (time.perf_counter() - t0) / len(sample)
    t0 = time.perf_counter()
    stats.studentized_range.sf(np.sqrt(2) * np.abs(sample.t.to_numpy()), k, sample.df.to_numpy())
    per_sf = (time.perf_counter() - t0) / len(sample)
    print(f"scipy per pair: ppf {per_ppf * 1e3:.0f} ms, sf {per_sf * 1e3:.1f} ms -> "
          f"{pairs * (per_ppf + per_sf) / 60:.1f} min for Games-Howell on one column before issue 8")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scores.csv"
        table.to_csv(path, index=False)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "medgap", "compare", str(path), "--out-dir", str(Path(tmp) / "o")],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
        written = sorted(p.name for p in (Path(tmp) / "o").iterdir()) if (Path(tmp) / "o").exists() else []
    print(f"medgap compare (subprocess, everything): {wall:.1f} s, exit {r.returncode}, {len(written)} files")
    if r.returncode:
        print(r.stderr[-2000:])


if __name__ == "__main__":
    main()
