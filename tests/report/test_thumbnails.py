"""The study report's best and worst thumbnails per group (issue 9, item 8): the right images, in the right
order, for a metric where lower is better and for one where higher is better. Each image is a flat grey field
whose level is its score, so the thumbnail's own pixels say which image it is."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pandas as pd
import pytest

from medgap.io import read_frames, to_gray255
from medgap.report import write_report
from medgap.stats import compare_groups

LEVELS = {"a": [30, 200, 90, 150, 60], "b": [120, 40, 220, 170, 80]}


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("thumbs")
    rows = []
    for group, levels in LEVELS.items():
        for level in levels:
            path = root / f"{group}_{level}.png"
            cv2.imwrite(str(path), np.full((40, 60), level, np.uint8))
            (frame,) = read_frames(path)
            rows.append({"item_id": str(path), "path": str(path), "frame": np.nan, "group": group,
                         "level": float(to_gray255(frame).mean()), "error": None})
    return pd.DataFrame(rows)


def _shown(doc: str, group: str, which: str) -> list[tuple[str, float]]:
    """(file name, mean grey of the thumbnail itself) of each thumbnail under "<group>: <which>", in order."""
    start = doc.index(f"<b>{group}</b>: {which}</p>")
    block = doc[start: doc.index("</div></div>", start)]
    out = []
    for uri, name in re.findall(r'<img src="data:image/jpeg;base64,([^"]+)" alt="([^"]+)">', block):
        pixels = cv2.imdecode(np.frombuffer(base64.b64decode(uri), np.uint8), cv2.IMREAD_GRAYSCALE)
        out.append((name, float(pixels.mean())))
    return out


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_best_and_worst_thumbnails_are_the_right_images_in_order(scores, tmp_path, lower_is_better):
    cmp = {"level": compare_groups(scores, "level")}
    doc = write_report(tmp_path / "report.html", scores, cmp, lower_is_better={"level": lower_is_better},
                       n_examples=2).read_text()
    for group, levels in LEVELS.items():
        ranked = sorted(levels) if lower_is_better else sorted(levels, reverse=True)  # best first
        want_best, want_worst = ranked[:2], ranked[::-1][:2]  # worst first among the worst
        for which, want in (("best", want_best), ("worst", want_worst)):
            shown = _shown(doc, group, which)
            assert [n for n, _ in shown] == [f"{group}_{v}.png" for v in want], (group, which)
            assert [m for _, m in shown] == pytest.approx(want, abs=2)  # the pictures, not only the captions
