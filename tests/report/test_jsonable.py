"""The one JSON normaliser (medgap._json.jsonable) that comparison.json, evaluation.json, the study's and the
scoring run's config records all go through (issue 9, item 9: was four)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from medgap._json import jsonable
from medgap.stats import compare_groups


def test_plain_values_for_numpy_paths_and_non_finite_numbers():
    doc = {1: np.float32(0.5), "p": Path("a/b.png"), "xs": (np.int64(3), np.bool_(True)), "nan": float("nan"),
           "inf": np.float64("inf"), "arr": np.array([[1.0, np.nan]]), "s": {"x"}}
    out = jsonable(doc)
    assert out == {"1": 0.5, "p": "a/b.png", "xs": [3, True], "nan": None, "inf": None, "arr": [[1.0, None]],
                   "s": ["x"]}
    assert type(out["xs"][0]) is int and type(out["xs"][1]) is bool
    json.dumps(out, allow_nan=False)  # strict JSON
    assert jsonable(float("-inf"), keep_infinity=True) == -math.inf
    assert jsonable(float("nan"), keep_infinity=True) is None


def test_a_group_comparison_keeps_an_infinite_effect_size_and_drops_nan():
    df = pd.DataFrame({"group": ["a"] * 3 + ["b"] * 3, "v": [1.0, 1, 1, 2, 2, 2]})  # zero SD: d is infinite
    d = compare_groups(df, "v").to_dict()
    text = json.dumps(d)
    assert "Infinity" in text and "NaN" not in text


def test_the_quality_config_record_is_plain_json(tmp_path):
    from dataclasses import asdict

    from medgap.cli.quality import QualityConfig

    cfg = QualityConfig(paths=[tmp_path / "a"], groups=["n=x"], out=tmp_path / "s.csv")
    rec = jsonable(asdict(cfg))
    assert rec["paths"] == [str(tmp_path / "a")] and rec["out"] == str(tmp_path / "s.csv")
    assert rec["manifest"] is None and rec["metrics"] == ["brisque"]
    json.dumps(rec, allow_nan=False)
