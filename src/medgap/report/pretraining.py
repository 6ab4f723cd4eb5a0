"""The figure of ``medgap benchmark``: each initialisation's accuracy, balanced accuracy and macro AUC per unit
of analysis (every repeat with its patient-bootstrap 95% CI), and the paired differences between
initialisations with their CIs. Matplotlib ``Figure`` with the Agg canvas (no pyplot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medgap.report._plain_text import plain_text_figures

_METRICS = (("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"), ("macro_auc", "macro AUC"))
_UNIT_WORDS = {"item": "per item (frame/image)", "file": "per file (clip soft vote)", "patient": "per patient"}


@plain_text_figures
def benchmark_figure(results: pd.DataFrame, differences: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Top rows: one panel per (metric, unit), one line per initialisation, a dot and CI bar per repeat. Bottom
    row: per unit, the paired difference in balanced accuracy (A minus B, patient bootstrap) per pair and
    repeat, with 0 marked."""
    overall = results[results["class"] == "overall"]
    units = [u for u in ("item", "file", "patient") if u in set(overall.unit)]
    inits = list(dict.fromkeys(overall.init))
    seeds = sorted(set(overall.seed))
    n_rows = len(_METRICS) + (1 if not differences.empty else 0)
    fig = Figure(figsize=(4.2 * len(units), 1.0 + 1.6 * n_rows + 0.25 * len(inits)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(n_rows, len(units), squeeze=False))
    offsets = np.linspace(-0.15, 0.15, len(seeds)) if len(seeds) > 1 else [0.0]
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for r, (metric, words) in enumerate(_METRICS):
        for c, unit in enumerate(units):
            ax = axes[r, c]
            sub = overall[(overall.unit == unit) & (overall.metric == metric)]
            for y, init in enumerate(inits):
                for o, s in zip(offsets, seeds):
                    row = sub[(sub.init == init) & (sub.seed == s)]
                    if row.empty:
                        continue
                    v, lo, hi = (float(row[k].iloc[0]) for k in ("value", "ci_low", "ci_high"))
                    ax.errorbar(v, y + o, xerr=[[max(0, v - lo)], [max(0, hi - v)]], fmt="o", ms=4, capsize=2,
                                color=colours[y % len(colours)])
            ax.set_yticks(range(len(inits)), labels=inits if c == 0 else [""] * len(inits))
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
            if metric == "macro_auc":
                ax.axvline(0.5, color="grey", lw=0.8, ls=":")
            ax.set_title(f"{words}, {_UNIT_WORDS[unit]}", fontsize=9)
    if not differences.empty:
        d = differences[(differences["class"] == "overall") & (differences.metric == "balanced_accuracy")]
        pairs = list(dict.fromkeys(zip(d.a, d.b)))
        for c, unit in enumerate(units):
            ax = axes[-1, c]
            sub = d[d.unit == unit]
            for y, (a, b) in enumerate(pairs):
                for o, s in zip(offsets, seeds):
                    row = sub[(sub.a == a) & (sub.b == b) & (sub.seed == s)]
                    if row.empty:
                        continue
                    v, lo, hi = (float(row[k].iloc[0]) for k in ("difference", "ci_low", "ci_high"))
                    ax.errorbar(v, y + o, xerr=[[max(0, v - lo)], [max(0, hi - v)]], fmt="s", ms=4, capsize=2,
                                color="black")
            ax.axvline(0, color="grey", lw=0.8)
            ax.set_yticks(range(len(pairs)), labels=[f"{a}\nminus {b}" for a, b in pairs] if c == 0
                          else [""] * len(pairs), fontsize=7)
            ax.set_xlim(-0.6, 0.6)
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
            ax.set_title(f"A minus B, balanced accuracy, {unit}", fontsize=9)
    fig.suptitle((title + "\n" if title else "") + "dots: repeats of the cross-validation; bars: 95% CI "
                 "(patient bootstrap)", fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
