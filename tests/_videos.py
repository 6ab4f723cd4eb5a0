"""Tiny real videos written with PyAV (16-32 px) for the pretraining tests: a module of its own, since
`from conftest import ...` finds whichever conftest.py is first on sys.path (tests/train/ has one too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
