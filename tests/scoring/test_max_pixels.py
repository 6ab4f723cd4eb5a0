"""The pixel budget through collection scoring: a frame above ``max_pixels`` is refused with its reason (from the
header, before decoding), and a rerun with a larger budget rescores it instead of keeping the refusal."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from medgap.quality import create_metric
from medgap.scoring import score_collection
from medgap.io import Source


def _image(path, h, w, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
    return path


def test_budget_refuses_then_a_larger_budget_rescores(tmp_path):
    small = _image(tmp_path / "small.png", 64, 64, 0)
    large = _image(tmp_path / "large.png", 128, 160, 1)  # 20480 pixels
    sources = [Source(small, "a"), Source(large, "b")]
    metric = [create_metric("imagestats")]
    out = tmp_path / "scores.parquet"

    first = score_collection(sources, metric, out, max_pixels=10_000)
    df = pd.read_parquet(out).set_index("path")
    assert first.files_failed == 1
    reason = df.loc[str(large), "error"]
    assert "160 x 128" in reason and "pixel budget of 10,000" in reason and "--max-pixels 20480" in reason, reason
    assert pd.isna(df.loc[str(small), "error"])

    second = score_collection(sources, metric, out, max_pixels=100_000)
    df = pd.read_parquet(out).set_index("path")
    assert second.files_scored == 2  # the budget is in the resume key: both rescored, not kept as refused
    assert df["error"].isna().all()
    assert len(df) == 2
