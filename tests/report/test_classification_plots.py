"""Confusion-matrix and ROC figures are written as PNG without touching pyplot's global state."""

from __future__ import annotations

import numpy as np

from medgap.report.classification_plots import plot_confusion_matrix, plot_roc_curves
from medgap.stats import roc_curve


def test_confusion_matrix_and_roc_pngs(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    cm = np.array([[5, 1, 0, 0, 0], [0, 4, 2, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 7, 1], [0, 0, 1, 0, 9]])
    path = plot_confusion_matrix(cm, ["a", "b", "c (absent)", "d", "e"], tmp_path / "cm.png")
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) > 300
    rng = np.random.default_rng(0)
    pos = rng.random(60) < 0.5
    curves = {name: (*roc_curve(pos, pos * shift + rng.normal(size=60))[:2], 0.5) for name, shift in
              (("x", 1.0), ("y", 0.0))}
    img = matplotlib.image.imread(plot_roc_curves(curves, tmp_path / "roc.png"))
    assert img.ndim == 3 and img.std() > 0
    assert matplotlib.get_backend() == backend
