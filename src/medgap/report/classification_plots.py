"""Figures of a classifier's evaluation: the confusion matrix and one-vs-rest ROC curves, as PNG files.

Drawn on matplotlib ``Figure`` objects with the Agg canvas, without pyplot, so no global backend is set
and nothing opens a window; class names as plain text (no mathtext).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medgap.report._plain_text import plain_text_figures


@plain_text_figures
def plot_confusion_matrix(cm: np.ndarray, classes: Sequence[str], path: Path, title: str = "") -> Path:
    """Counts with the row percentage (share of the true class, so the diagonal is the sensitivity);
    true class in rows, predicted in columns."""
    cm = np.asarray(cm)
    k = len(classes)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    size = 1.2 + 0.9 * k
    fig = Figure(figsize=(size + 0.8, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{cm[i, j]}\n{100 * share[i, j]:.0f}%", ha="center", va="center", fontsize=9,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), labels=classes, rotation=30, ha="right")
    ax.set_yticks(range(k), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (count, % of true class)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return Path(path)


@plain_text_figures
def plot_roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path, title: str = "") -> Path:
    """One ROC curve per entry ``name: (fpr, tpr, auc)``, AUC in the legend, chance diagonal dotted."""
    fig = Figure(figsize=(5, 4.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (fpr, tpr, auc) in curves.items():
        # straight lines between the points: staircase where scores differ, diagonal across tied scores,
        # which is the curve whose area the AUC (ties count one half) is
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_title(title or "ROC, one class vs the rest", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return Path(path)
