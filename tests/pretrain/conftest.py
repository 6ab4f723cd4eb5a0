"""Tiny real videos written with PyAV (16-32 px), and manifests of them with patients and labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


from _videos import constant_frames, textured_frames, write_video  # noqa: F401  (re-exported)


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
