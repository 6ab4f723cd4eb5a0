"""The study report: paper-style tables, the omnibus tests, violin and histogram plots per metric, and the
best- and worst-scored images of each group, in one HTML file that opens offline (everything embedded).

Only file names, groups and scores appear; no DICOM header field is read or shown.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medgap.io import ImageReadError, read_frames, to_gray255
from medgap.report._plain_text import plain_text_figures
from medgap.stats import GroupComparison, anova_line, format_p, format_value, paper_table

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;
padding-bottom:.2rem}h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}th,td{padding:.3rem .7rem;border-bottom:1px solid #e4e4e4;
text-align:right}th:first-child,td:first-child{text-align:left}thead th{border-bottom:2px solid #999}
.muted{color:#666;font-size:.9rem}.stat{font-family:ui-monospace,Menlo,monospace;font-size:.9rem}
.thumbs{display:flex;flex-wrap:wrap;gap:.4rem;margin:.3rem 0 1rem}.thumb{width:120px;font-size:.75rem;
text-align:center;word-break:break-all}.thumb img{width:120px;height:120px;object-fit:contain;background:#111;
border-radius:3px}.row{display:flex;gap:2rem;flex-wrap:wrap}.row img{max-width:100%}
"""


def _figure(figsize: tuple[float, float]):
    """A figure and its axes on the Agg canvas: no pyplot, no global backend, no window."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@plain_text_figures
def _violin(scores: pd.DataFrame, column: str, groups: list[str], lower_is_better: bool | None) -> str:
    data = [scores.loc[scores.group == g, column].dropna().to_numpy() for g in groups]
    keep = [(g, d) for g, d in zip(groups, data) if d.size]
    fig, ax = _figure((1.4 * len(keep) + 2, 3.8))
    if keep:
        parts = ax.violinplot([d for _, d in keep], showextrema=False)
        for body in parts["bodies"]:
            body.set_alpha(0.35)
        ax.boxplot([d for _, d in keep], widths=0.15, showfliers=False)
        ax.set_xticks(range(1, len(keep) + 1), [f"{g}\n(n={d.size})" for g, d in keep])
    hint = " (lower is better)" if lower_is_better else " (higher is better)" if lower_is_better is False else ""
    ax.set_ylabel(column + hint)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{column} by group")
    return _png(fig)


@plain_text_figures
def _histograms(scores: pd.DataFrame, column: str, groups: list[str]) -> str:
    values = scores[column].dropna()
    if values.empty:
        return ""
    bins = np.histogram_bin_edges(values, bins=30)
    fig, ax = _figure((7, 3.6))
    for g in groups:
        v = scores.loc[scores.group == g, column].dropna()
        if len(v):
            ax.hist(v, bins=bins, histtype="step", linewidth=1.6, density=True, label=f"{g} (n={len(v)})")
    ax.set_xlabel(column)
    ax.set_ylabel("density")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"{column}: distribution per group")
    return _png(fig)


def _thumbnail(path: str, frame, size: int = 150) -> str | None:
    try:
        for fr in read_frames(path):
            if pd.isna(frame) or fr.frame == int(frame):
                g = to_gray255(fr)
                break
        else:
            return None
    except ImageReadError:
        return None
    g = np.nan_to_num(g)
    scale = size / max(g.shape)
    small = cv2.resize(g, (max(1, round(g.shape[1] * scale)), max(1, round(g.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.clip(small, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else None


def _thumbs(rows: pd.DataFrame, column: str) -> str:
    cells = []
    for r in rows.itertuples():
        uri = _thumbnail(r.path, r.frame)
        name = Path(r.path).name + (f" #{int(r.frame)}" if pd.notna(r.frame) else "")
        img = f'<img src="{uri}" alt="{html.escape(name)}">' if uri else "<div>(unreadable)</div>"
        value = format_value(getattr(r, column))  # significant digits: an edge density 0.0523, not 0.1
        cells.append(f'<div class="thumb">{img}<br>{html.escape(name)}<br><b>{value}</b></div>')
    return '<div class="thumbs">' + "".join(cells) + "</div>"


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, border=0, escape=True, na_rep="")


def write_report(
    out: str | Path,
    scores: pd.DataFrame,
    comparisons: dict[str, GroupComparison],
    *,
    lower_is_better: dict[str, bool | None] | None = None,
    title: str = "medgap study: image quality by group",
    run_info: dict | None = None,
    n_examples: int = 4,
) -> Path:
    """Write the HTML report for ``scores`` (one row per item) and the comparisons of each metric column."""
    out = Path(out)
    lower_is_better = lower_is_better or {}
    groups = sorted(scores.group.dropna().unique().tolist())
    failed = scores.error.notna().sum() if "error" in scores else 0
    parts = [f"<h1>{html.escape(title)}</h1>"]
    info = {"generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "items": len(scores),
            "failed items": int(failed), "groups": ", ".join(groups), **(run_info or {})}
    parts.append('<p class="muted">' + " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in info.items())
                 + "</p>")
    for column, cmp in comparisons.items():
        lib = lower_is_better.get(column)
        hint = " (lower is better)" if lib else " (higher is better)" if lib is False else ""
        parts.append(f"<h2>{html.escape(column)}{hint}</h2>")
        parts.append(_table(paper_table(cmp)))
        w, k = cmp.welch, cmp.kruskal
        parts.append('<p class="stat">' + html.escape(anova_line(cmp)) + "<br>"
                     + html.escape("Welch's ANOVA: " + (f"F({w.df1:.0f}, {w.df2:.1f}) = {w.F:.2f}, {format_p(w.p)}"
                                   if np.isfinite(w.F) else "n/a (a group has zero variance or one value)")) + "<br>"
                     + html.escape(f"Kruskal-Wallis: H({k.df}) = {k.H:.2f}, {format_p(k.p)}, "
                                   f"epsilon-squared = {k.epsilon_squared:.3f}") + "</p>")
        parts.append(f'<p class="muted">Cohen\'s d = (mean of group - mean of {html.escape(str(cmp.reference))}) / '
                     "pooled SD; 95% CI as pingouin.compute_esci. Each image or video/multi-frame frame counts as "
                     "one observation: frames of one clip, and images of one patient, are not independent, so "
                     "treat CIs and P values as descriptive when groups contain many frames per clip. Post hoc "
                     "tests (Tukey HSD, Games-Howell) are in the CSV files beside this report.</p>")
        violin, hist = _violin(scores, column, groups, lib), _histograms(scores, column, groups)
        parts.append(f'<div class="row"><img src="{violin}" alt="violin plot"><img src="{hist}" alt="histograms"></div>')
        # a measure with no direction (image statistics) has no best: its lowest and highest values are shown
        low_name, high_name = ("lowest", "highest") if lib is None else ("best", "worst")
        parts.append("<h3>Lowest and highest values per group</h3>" if lib is None
                     else "<h3>Best and worst scored images per group</h3>")
        for g in groups:
            sub = scores[(scores.group == g) & scores[column].notna()].sort_values(column, kind="stable")
            if sub.empty:
                continue
            best, worst = (sub.head(n_examples), sub.tail(n_examples).iloc[::-1])
            if lib is False:
                best, worst = worst, best
            parts.append(f'<div class="row"><div><p><b>{html.escape(g)}</b>: {low_name}</p>{_thumbs(best, column)}</div>'
                         f'<div><p><b>{html.escape(g)}</b>: {high_name}</p>{_thumbs(worst, column)}</div></div>')
    if failed:
        errs = scores.loc[scores.error.notna(), ["item_id", "error"]].head(50).copy()
        errs["item_id"] = errs.item_id.map(lambda s: Path(str(s)).name)
        parts.append(f"<h2>Items that could not be scored ({failed})</h2>" + _table(errs))
    doc = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out
