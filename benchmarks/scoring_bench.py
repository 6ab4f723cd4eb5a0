"""Collection scoring end to end, in one run on the same files: the figures of issue 15.

    .venv/bin/python benchmarks/scoring_bench.py [--data ../shared/data] [--rounds 3] [--rss-files 10000]
                                                 [--quick] [--json OUT.json]

On the 785 images of ../shared/data (natural, cxr, ct, mr, pocus: PNG, JPEG and DICOM of many sizes) it prints:

1. ``medgap quality`` as a subprocess (start-up, collection, decoding, BRISQUE, Parquet, the closing table)
   with ``--workers 1`` and ``--workers 2``, against a plain loop over OpenCV contrib's C++ BRISQUE (a
   subprocess too: cv2.imread / pydicom decode + ``QualityBRISQUE.compute``, one thread): wall and CPU
   seconds (the process and its children, ``resource.getrusage``), medians of ``--rounds`` paired rounds
   (the three commands back to back in each round). Targets: medgap ``--workers 1`` >= 2x OpenCV's loop;
   ``--workers 2`` wall <= 0.6x the one-worker run's CPU time (and within 15% of CPU / 2).
2. Scoring only: medgap's BRISQUE on the decoded gray arrays of the same files, images/s, against the end
   to end rate of ``--workers 1`` (target: end to end >= 80% of scoring only).
3. Peak memory (the resident set of medgap and all its worker processes, sampled every 0.1 s) scoring
   ``--rss-files`` links to the same images with ``--workers 2``, beside the same for a tenth of them
   (target: < 1 GiB and flat in the number of files); and ``--workers 1`` end to end on the ``--rss-files``
   links against scoring only (the start-up, about 1 s, spread over many files).
4. The batched torch backend (``--device cpu``, and ``cuda`` when there is a GPU) vs the NumPy/numba path on
   the decoded arrays: BRISQUE and NIQE images/s.

Every process runs single-threaded BLAS/OpenMP (the workers do so themselves). Numbers depend on the load
of the machine: ``uptime`` is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os

for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_k, "1")

import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODALITIES = ("natural", "cxr", "ct", "mr", "pocus")
# the console script of this interpreter's environment (as a user runs it), else ``python -m medgap``
_SCRIPT = Path(sys.executable).with_name("medgap")
MEDGAP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "medgap"]

# The peer: decode + OpenCV contrib's C++ BRISQUE, one thread, in its own process (imports count, as medgap's do).
OPENCV_LOOP = r"""
import sys, csv
import cv2, numpy as np
cv2.setNumThreads(1)
model = cv2.quality.QualityBRISQUE_create(sys.argv[2], sys.argv[3])
def gray(path):
    if path.lower().endswith(".dcm"):
        import pydicom
        a = pydicom.dcmread(path).pixel_array.astype(np.float64)
        if a.ndim == 3:
            a = a[0] if a.shape[-1] not in (3, 4) else a[..., :3].mean(axis=-1)
        lo, hi = a.min(), a.max()
        return np.round((a - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)).astype(np.uint8)
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE)
n = 0
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f):
        img = gray(row["path"])
        if img is not None:
            model.compute(img)
            n += 1
print(n)
"""


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc): the workers of a fork server are its grandchildren."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime of this process


def _pss(pid: int) -> int:
    """Proportional set size in bytes (pages shared between forked workers counted once overall)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def timed(cmd: list[str], env: dict | None = None, sample_rss: bool = False) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the process tree, peak memory of the tree in bytes (sum of PSS) when sampled, stderr:
    medgap's progress and summary lines).

    CPU: the command's own from ``resource.getrusage`` (exact: it is waited for) plus, for processes it
    started that it does not wait for (a fork server's workers), their CPU time as last seen every 0.1 s."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    last: dict[int, float] = {}
    err_chunks: list[bytes] = []
    out_chunks: list[bytes] = []
    readers = [threading.Thread(target=lambda s=s, c=c: c.append(s.read()), daemon=True)
               for s, c in ((proc.stderr, err_chunks), (proc.stdout, out_chunks))]
    for reader in readers:
        reader.start()
    while proc.poll() is None:
        total = 0
        for p in _tree(proc.pid)[1:]:
            try:
                last[p] = _cpu_seconds(p)
                total += _pss(p) if sample_rss else 0
            except (OSError, ValueError, IndexError):
                continue
        if sample_rss:
            try:
                total += _pss(proc.pid)
            except OSError:
                pass
            peak = max(peak, total)
        time.sleep(0.1)
    for reader in readers:
        reader.join()
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)  # the command and what it waited for
    if proc.returncode not in (0, 1):  # 1: some items failed (the set has frames BRISQUE refuses)
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {b''.join(err_chunks).decode()[-2000:]}")
    # processes whose CPU time reached the command's (waited for) are already in `own`; the sampled ones are
    # the fork server's workers, which the fork server reaps but the command never waits for
    return wall, own + (sum(last.values()) if _unreaped(cmd) else 0.0), peak, b"".join(err_chunks).decode()


def scoring_seconds(stderr: str, files: int) -> float:
    """The scoring phase of a ``medgap quality`` run, from its summary line ("Scored N items from F files in
    T s"): from the first file to the last, without start-up and the closing table. Refuses a run that did not
    score every file (a command that failed early exits 1 too, as a run with failed items does)."""
    m = re.search(r"Scored \d+ items from (\d+) files in ([\d.]+) s", " ".join(stderr.split()))
    if m is None or int(m.group(1)) != files:
        raise SystemExit(f"medgap did not score the {files} files: {stderr[-2000:]}")
    return float(m.group(2))


def _unreaped(cmd: list[str]) -> bool:
    """``medgap quality --workers N`` (N > 1): its workers are children of the fork server, which the command
    does not wait for, so their CPU time is not in the command's rusage."""
    return "--workers" in cmd and cmd[cmd.index("--workers") + 1] != "1"


def quality_cmd(manifest: Path, out: Path, workers: int) -> list[str]:
    return [*MEDGAP, "quality", "--manifest", str(manifest), "--group-column", "modality", "--workers",
            str(workers), "--out", str(out)]


def fresh(out: Path) -> None:
    out.unlink(missing_ok=True)
    shutil.rmtree(out.with_name(out.name + ".parts"), ignore_errors=True)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "(uptime not available)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--reference", type=Path, default=REPO.parent / "shared" / "reference")
    ap.add_argument("--rounds", type=int, default=3, help="paired rounds of the end to end commands (median)")
    ap.add_argument("--rss-files", type=int, default=10_000, help="files (links) for the memory figure; 0: skip")
    ap.add_argument("--torch-images", type=int, default=60, help="images for the numpy vs torch figure")
    ap.add_argument("--quick", action="store_true", help="120 images, 1 round, 1,000 files for memory")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.rss_files, args.torch_images = 1, min(args.rss_files, 1000), 20

    import pandas as pd

    print(f"load before: {uptime()}")
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    man = pd.read_csv(args.data / "MANIFEST.csv")
    man = man[man.modality.isin(MODALITIES)]
    if args.quick:
        man = man.groupby("modality").head(24)
    paths = [str((args.data / p).resolve()) for p in man.path]
    tmp = Path(tempfile.mkdtemp(prefix="medgap-bench-"))
    res: dict[str, float | int | str] = {"files": len(paths)}
    try:
        manifest = tmp / "files.csv"
        pd.DataFrame({"path": paths, "modality": list(man.modality)}).to_csv(manifest, index=False)
        ref = args.reference / "opencv_brisque"
        peer = [sys.executable, "-c", OPENCV_LOOP, str(manifest), str(ref / "brisque_model_live.yml"),
                str(ref / "brisque_range_live.yml")]
        out = tmp / "scores.parquet"

        # warm-up: numba's on-disk cache, the OS file cache
        fresh(out)
        timed(quality_cmd(manifest, out, 1))
        timed(peer)

        runs: dict[str, list[tuple[float, float]]] = {"opencv": [], "w1": [], "w2": []}
        phase: dict[str, list[float]] = {"w1": [], "w2": []}  # seconds from the first file to the last
        for r in range(args.rounds):
            runs["opencv"].append(timed(peer)[:2])
            for w in (1, 2):
                fresh(out)
                wall, cpu, _, stderr = timed(quality_cmd(manifest, out, w))
                runs[f"w{w}"].append((wall, cpu))
                phase[f"w{w}"].append(scoring_seconds(stderr, len(paths)))
            print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f} s wall / {v[-1][1]:.2f} s CPU"
                                                  for k, v in runs.items()), flush=True)
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
        n = len(paths)
        print(f"\n1. End to end on {n} files (median of {args.rounds} paired rounds; wall / CPU seconds):")
        for k, label in (("opencv", "OpenCV contrib C++ BRISQUE loop"), ("w1", "medgap quality --workers 1"),
                         ("w2", "medgap quality --workers 2")):
            wall, cpu = med[k]
            print(f"   {label:34s} {wall:7.2f} s wall {cpu:7.2f} s CPU  {n / wall:7.1f} files/s")
            res[f"{k}_wall_s"], res[f"{k}_cpu_s"] = round(wall, 3), round(cpu, 3)
        ratio = med["opencv"][0] / med["w1"][0]
        w2_vs_cpu = med["w2"][0] / med["w1"][1]
        print(f"   medgap --workers 1 vs OpenCV: {ratio:.2f}x faster (target >= 2x); by CPU time "
              f"{med['opencv'][1] / med['w1'][1]:.2f}x")
        print(f"   --workers 2 wall / one-worker CPU: {w2_vs_cpu:.2f} (target <= 0.60; ideal 0.50, "
              f"within 15% of CPU/2: <= 0.575)")
        res.update(opencv_ratio=round(ratio, 3), w2_wall_over_w1_cpu=round(w2_vs_cpu, 3))

        # 2. scoring only on decoded arrays

        from medgap.io import read_frames, to_gray255
        from medgap.quality import create_metric

        grays = [to_gray255(next(read_frames(p))) for p in paths]
        brisque = create_metric("brisque")

        cpu_only: list[float] = []

        def score_all(images, fn) -> float:
            t, c = time.perf_counter(), time.process_time()
            for g in images:
                try:
                    fn(g)
                except ValueError:
                    pass
            cpu_only.append(time.process_time() - c)
            return time.perf_counter() - t

        score_all(grays[:5], brisque.compute)
        cpu_only.clear()
        only = statistics.median(score_all(grays, brisque.compute) for _ in range(args.rounds))
        only_cpu = statistics.median(cpu_only)
        e2e = n / med["w1"][0]
        steady = n / statistics.median(phase["w1"])
        print(f"\n2. Scoring only (BRISQUE on the {n} decoded gray arrays, one thread): {n / only:.1f} images/s "
              f"({only:.2f} s wall, {only_cpu:.2f} s CPU)\n"
              f"   end to end --workers 1: {e2e:.1f} files/s = {e2e / (n / only):.0%} of scoring only (target >= "
              f"80%); by CPU time (end to end also decodes, starts up and writes): {only_cpu / med['w1'][1]:.0%}\n"
              f"   --workers 1 from its first file to its last (decoding and writing, without the fixed start-up "
              f"and closing table; medgap's own 'Scored ... in T s'): {steady:.1f} files/s = "
              f"{steady / (n / only):.0%} of scoring only")
        res.update(scoring_only_per_s=round(n / only, 2), scoring_only_cpu_s=round(only_cpu, 3),
                   end_to_end_per_s=round(e2e, 2), end_to_end_over_scoring=round(e2e * only / n, 3),
                   w1_scoring_phase_s=round(statistics.median(phase["w1"]), 3),
                   w2_scoring_phase_s=round(statistics.median(phase["w2"]), 3),
                   scoring_phase_over_scoring=round(steady * only / n, 3))

        # 3. memory for many files
        if args.rss_files:
            print("\n3. Peak memory, --workers 2 (medgap and its workers together, sum of PSS):")
            for count in sorted({max(1, args.rss_files // 10), args.rss_files}):
                folder = tmp / f"links{count}"
                folder.mkdir()
                for i in range(count):
                    src = Path(paths[i % n])
                    (folder / f"{i:06d}_{src.name}").symlink_to(src)
                o = tmp / f"rss{count}.parquet"
                wall, cpu, peak, _ = timed([*MEDGAP, "quality", str(folder), "--workers", "2", "--out", str(o)],
                                        sample_rss=True)
                print(f"   {count:6d} files: peak {peak / 2**20:7.0f} MiB, {wall:7.1f} s wall (target < 1024 MiB, "
                      "flat)")
                res[f"peak_rss_mib_{count}"] = round(peak / 2**20)
                if count == args.rss_files:
                    # the same collection with one worker: end to end, the fixed start-up spread over many files
                    o1 = tmp / f"w1_{count}.parquet"
                    wall, cpu, _, stderr = timed([*MEDGAP, "quality", str(folder), "--workers", "1", "--out",
                                                 str(o1)])
                    phase_s = scoring_seconds(stderr, count)
                    many = count / wall
                    print(f"   {count:6d} files, --workers 1: {wall:7.1f} s wall, {many:.1f} files/s end to end = "
                          f"{many / (n / only):.0%} of scoring only (target >= 80%); first file to last "
                          f"{count / phase_s:.1f} files/s")
                    res.update({f"w1_{count}_wall_s": round(wall, 2),
                                f"w1_{count}_end_to_end_over_scoring": round(many * only / n, 3)})
                shutil.rmtree(folder)

        # 4. numpy vs torch backends
        print(f"\n4. BRISQUE and NIQE features + score on {args.torch_images} decoded arrays, images/s:")
        subset = grays[:: max(1, len(grays) // max(1, args.torch_images))][: args.torch_images]
        try:
            import torch

            torch.set_num_threads(1)
            devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        except ImportError:
            devices = []
            print("   torch is not installed: the torch backend is not measured")
        for name in ("brisque", "niqe") if subset else ():
            m = create_metric(name)
            score_all(subset[:2], m.compute)
            t_np = min(score_all(subset, m.compute) for _ in range(2))
            line = f"   {name:8s} numpy/numba {len(subset) / t_np:7.1f}"
            res[f"{name}_numpy_per_s"] = round(len(subset) / t_np, 2)
            for dev in devices:
                mt = m.on_device()
                mt.compute_many(subset[:2], device=dev)
                best = float("inf")
                for _ in range(2):
                    t = time.perf_counter()
                    mt.compute_many(subset, device=dev, batch_size=32)
                    if dev == "cuda":
                        torch.cuda.synchronize()
                    best = min(best, time.perf_counter() - t)
                line += f"  torch-{dev} {len(subset) / best:7.1f}"
                res[f"{name}_torch_{dev}_per_s"] = round(len(subset) / best, 2)
            print(line)
        print(f"\nload after: {uptime()}")
        res["uptime_after"] = uptime()
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
