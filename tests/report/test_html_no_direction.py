"""A column with no direction (lower_is_better None: the imagestats columns) shows its lowest and highest
values in the report, not "best" and "worst" (issue 9, item 7)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from medgap.report import write_report
from medgap.stats import compare_groups


def test_a_column_without_direction_says_lowest_and_highest(tmp_path):
    rows = []
    for group, levels in {"a": [30, 200, 90], "b": [120, 40, 220]}.items():
        for level in levels:
            path = tmp_path / f"{group}_{level}.png"
            cv2.imwrite(str(path), np.full((20, 30), level, np.uint8))
            rows.append({"item_id": str(path), "path": str(path), "frame": np.nan, "group": group,
                         "mean": float(level), "error": None})
    scores = pd.DataFrame(rows)
    doc = write_report(tmp_path / "r.html", scores, {"mean": compare_groups(scores, "mean")},
                       lower_is_better={"mean": None}, n_examples=1).read_text()
    assert "<b>a</b>: lowest</p>" in doc and "<b>a</b>: highest</p>" in doc
    assert ": best</p>" not in doc and ": worst</p>" not in doc and "Best and worst" not in doc
    low = doc.index("<b>a</b>: lowest</p>")
    assert doc.index("a_30.png", low) < doc.index("<b>a</b>: highest</p>") < doc.index("a_200.png", low)
