"""Figures of ``medgap resolution``: the stacking weights as a heat map (classes x input sizes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_scale_weights(weights: pd.DataFrame, path: str | Path, title: str | None = None, dpi: int = 150) -> Path:
    """A heat map of ``weights`` (one row per class, one column per size, rows summing to 1), each cell
    annotated with its weight; the colour scale is fixed to 0-1 so that heat maps of different runs compare."""
    from matplotlib.figure import Figure

    rows, cols = weights.shape
    fig = Figure(figsize=(1.4 + 1.1 * cols, 1.2 + 0.45 * rows), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(weights.to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(cols), [str(c).removeprefix("size_") + " px" for c in weights.columns])
    ax.set_yticks(range(rows), [str(r) for r in weights.index])
    for i in range(rows):
        for j in range(cols):
            v = float(weights.iat[i, j])
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="black" if v > 0.6 else "white", fontsize=9)
    ax.set_xlabel("input size")
    ax.set_title(title or "stacking weight of each input size, per class (mean over folds)", fontsize=9)
    fig.colorbar(im, ax=ax, label="weight", shrink=0.9)
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


__all__ = ["plot_scale_weights"]
