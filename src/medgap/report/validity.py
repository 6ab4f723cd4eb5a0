"""Files of a validation against human ratings (:func:`medgap.validate`): ``validity.csv`` and ``validity.json``
(one row / entry per metric), ``validity_scores.csv`` (one row per rated image: MOS and each metric's score) and
``validity.png`` (MOS against each metric's score with the fitted logistic mapping, a panel per metric).

Figures are drawn on a matplotlib ``Figure`` with the Agg canvas, without pyplot (no global backend, no window),
and names as plain text (no mathtext)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medgap.report._files import inside, writing
from medgap.report._plain_text import plain_text_figures
from medgap.stats.format import format_ci


FILES = ("validity.csv", "validity.json", "validity_scores.csv", "validity.png")


@plain_text_figures
def plot_validity(validation, path: Path, dpi: int = 130) -> Path:
    """MOS (y) against each metric's score (x), the fitted mapping as a line, a panel per metric; titles give
    SROCC and PLCC with their CIs and n."""
    result = validation.result
    names = list(result.metrics)
    k = len(names)
    cols = min(k, 3)
    rows = math.ceil(k / cols)
    fig = Figure(figsize=(4.6 * cols, 4.3 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    mos_all = validation.data[validation.mos_column].to_numpy(np.float64)
    pct = round(100 * result.confidence)
    for ax, name in zip(axes.ravel(), names):
        mv = result[name]
        x = validation.data[validation.score_columns[name]].to_numpy(np.float64)
        ok = np.isfinite(x)
        ax.scatter(x[ok], mos_all[ok], s=9, alpha=0.45, color="#3b6ea8", edgecolors="none", label="image")
        grid = np.linspace(np.min(x[ok]), np.max(x[ok]), 300)
        label = "fitted logistic (VQEG)" if mv.fit.kind == "logistic5" else "fitted line (logistic fallback)"
        ax.plot(grid, mv.fit(grid), color="#d1495b", lw=2, label=label)
        ax.set_xlabel(f"{name} score ({mv.direction})")
        ax.set_ylabel(f"{validation.mos_column} (mean opinion score)")
        ax.set_title(f"{name}   n = {mv.n} images\nSROCC {format_ci(mv.srocc.value, mv.srocc.low, mv.srocc.high, 3)}\n"
                     f"PLCC {format_ci(mv.plcc.value, mv.plcc.low, mv.plcc.high, 3)}", fontsize=10)
        ax.grid(alpha=0.25)
        ax.legend(loc="best", fontsize=8, framealpha=0.85)
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    fig.suptitle(f"Metric scores vs human ratings ({pct}% bootstrap CIs over images; SROCC signed: positive = "
                 "agrees with raters)", fontsize=10)
    with writing(path):
        fig.savefig(path, dpi=dpi)
    return Path(path)


def write_validity(validation, out_dir: Path) -> dict[str, Path]:
    """Write :data:`FILES` into ``out_dir`` (created); returns ``{file name: path}``. The JSON is strict (no
    NaN or Infinity: undefined values are null)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: inside(out_dir, name) for name in FILES}
    table = validation.to_frame()
    table["mapping_params"] = [json.dumps([float(v) for v in p]) for p in table["mapping_params"]]
    with writing(paths["validity.csv"]):
        table.to_csv(paths["validity.csv"], index=False)
    text = json.dumps(validation.to_dict(), indent=1, allow_nan=False)
    with writing(paths["validity.json"]):
        paths["validity.json"].write_text(text + "\n")
    with writing(paths["validity_scores.csv"]):
        validation.data.to_csv(paths["validity_scores.csv"], index=False)
    plot_validity(validation, paths["validity.png"])
    return paths


__all__ = ["FILES", "plot_validity", "write_validity"]
