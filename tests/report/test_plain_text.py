"""Group and class names are drawn as plain text in figures (issue 8, defect 11): matplotlib would read
``$...$`` as mathtext, and ``$\\frac{$`` failed to render, so the whole report failed."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from medgap.report import write_report
from medgap.report.classification_plots import plot_confusion_matrix, plot_roc_curves
from medgap.stats import compare_groups

HOSTILE = ["$\\frac{$", "[/]", "a_b^c $x$"]


def test_report_with_mathtext_and_markup_group_names_renders(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for g_i, g in enumerate(HOSTILE):
        for i in range(4):
            p = tmp_path / f"{g_i}_{i}.png"
            cv2.imwrite(str(p), rng.integers(0, 256, (40, 40), dtype=np.uint8))
            rows.append({"item_id": str(p), "path": str(p), "frame": np.nan, "group": g,
                         "brisque": rng.normal(20 + 5 * g_i, 3), "error": None})
    scores = pd.DataFrame(rows)
    cmp = {"brisque": compare_groups(scores, "brisque", "group", reference=HOSTILE[0])}
    out = write_report(tmp_path / "report.html", scores, cmp, lower_is_better={"brisque": True})
    page = out.read_text()
    assert "$\\frac{$" in page and page.count("data:image/png") == 2  # the violin and the histograms


def test_classification_figures_with_mathtext_class_names(tmp_path):
    cm = np.array([[3, 1], [0, 4]])
    plot_confusion_matrix(cm, ["$\\frac{$", "$x"], tmp_path / "cm.png", title="$\\frac{$")
    fpr = np.array([0.0, 0.5, 1.0])
    plot_roc_curves({"$\\frac{$": (fpr, fpr, 0.5)}, tmp_path / "roc.png")
    assert (tmp_path / "cm.png").stat().st_size > 0 and (tmp_path / "roc.png").stat().st_size > 0
