"""Tiny real videos written with PyAV (16-32 px), and manifests of them with patients and labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def write_video(path: Path, frames: list[np.ndarray], rate: int = 10) -> Path:
    """An MPEG-4 clip of the given RGB uint8 frames (H, W, 3)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"qscale": "1"}
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


def constant_frames(values: list[int], size: int = 16) -> list[np.ndarray]:
    """One flat gray frame per value: the decoded content tells which frame it is."""
    return [np.full((size, size, 3), v, np.uint8) for v in values]


def textured_frames(n: int, colour, seed: int, size: int = 24) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = np.clip(rng.normal(colour, 40, (size, size, 3)), 0, 255)
    return [np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


@pytest.fixture()
def video_manifest(tmp_path) -> Path:
    """12 clips of 6 patients (2 clips each), 2 classes by dominant colour, 6 frames each; class of patient p is
    p % 2; one patient's clips are unlabelled."""
    rows = []
    colours = [(200, 60, 60), (60, 60, 200)]
    for p in range(6):
        for c in range(2):
            label = "" if p == 5 else f"class{p % 2}"
            path = write_video(tmp_path / "videos" / f"p{p}_c{c}.mp4",
                               textured_frames(6, colours[p % 2], seed=10 * p + c))
            rows.append({"path": str(path.relative_to(tmp_path)), "label": label, "group_id": f"p{p}"})
    csv = tmp_path / "videos.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv
