"""Figures of ``medgap resolution``: the stacking weights as a heat map (classes x input sizes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_scale_weights(weights: pd.DataFrame, path: str | Path, title: str | None = None, dpi: int = 150,
                       per_fold: pd.DataFrame | None = None) -> Path:
    """A heat map of ``weights`` (one row per class, one column per size, rows summing to 1), each cell
    annotated with its weight (and, given ``per_fold`` with columns fold, class and the sizes, the range over
    folds); the colour scale is fixed to 0-1 so that heat maps of different runs compare."""
    from matplotlib.figure import Figure

    rows, cols = weights.shape
    fig = Figure(figsize=(2.0 + 1.3 * cols, 1.2 + (0.6 if per_fold is not None else 0.45) * rows),
                 layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(weights.to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(cols), [str(c).removeprefix("size_") + " px" for c in weights.columns])
    ax.set_yticks(range(rows), [str(r) for r in weights.index])
    for i in range(rows):
        for j in range(cols):
            v = float(weights.iat[i, j])
            text = f"{v:.2f}"
            if per_fold is not None:
                folds = per_fold.loc[per_fold["class"].astype(str) == str(weights.index[i]), weights.columns[j]]
                text += f"\nfolds {folds.min():.2f}-{folds.max():.2f}"
            ax.text(j, i, text, ha="center", va="center", color="black" if v > 0.6 else "white", fontsize=8)
    ax.set_xlabel("input size")
    ax.set_title(title or "stacking weight per class and input size: mean (range over folds)", fontsize=9)
    fig.colorbar(im, ax=ax, label="weight", shrink=0.9)
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


__all__ = ["plot_scale_weights"]
