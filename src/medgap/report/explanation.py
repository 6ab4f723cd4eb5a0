"""Figures and the HTML page of ``medgap explain``: CAM overlays, first-layer kernels, effective receptive
fields. The page uses the study report's style sheet and embeds the PNGs it links."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from medgap.report._files import writing


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def _save(fig, path: Path, dpi: int = 130) -> Path:
    path = Path(path)
    with writing(path):
        fig.savefig(path, dpi=dpi)
    return path


def plot_cams(images: Sequence[np.ndarray], cams: Mapping[str, np.ndarray], titles: Sequence[str], path: Path,
              overlay: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Path:
    """One row per image: the input, then each method's CAM overlaid (``cams``: method -> (N, H, W))."""
    n, cols = len(images), 1 + len(cams)
    fig = _figure(1.9 * cols, 2.1 * n + 0.3)
    axes = np.atleast_2d(fig.subplots(n, cols, squeeze=False))
    for i, rgb in enumerate(images):
        axes[i, 0].imshow(rgb)
        axes[i, 0].set_title(titles[i], fontsize=7)
        for j, (method, maps) in enumerate(cams.items(), start=1):
            axes[i, j].imshow(overlay(rgb, maps[i]))
            if i == 0:
                axes[i, j].set_title(method, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path)


def _tile(weights: np.ndarray) -> np.ndarray:
    """(out, in, kh, kw) kernels -> one RGB mosaic, each kernel scaled to [0, 1] on its own, 1 px gaps."""
    k = weights
    if k.shape[1] != 3:
        k = np.repeat(k.mean(1, keepdims=True), 3, axis=1)
    n, _, kh, kw = k.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    mosaic = np.ones((rows * (kh + 1) + 1, cols * (kw + 1) + 1, 3))
    for i in range(n):
        r, c = divmod(i, cols)
        ker = k[i].transpose(1, 2, 0)
        lo, hi = ker.min(), ker.max()
        ker = (ker - lo) / (hi - lo) if hi > lo else np.full_like(ker, 0.5)
        mosaic[1 + r * (kh + 1):1 + r * (kh + 1) + kh, 1 + c * (kw + 1):1 + c * (kw + 1) + kw] = ker
    return mosaic


def plot_kernels(kernels: Mapping[str, np.ndarray], path: Path) -> Path:
    """The first layer's kernels of each network side by side (``kernels``: name -> (out, in, kh, kw))."""
    fig = _figure(3.2 * len(kernels), 3.5)
    axes = np.atleast_1d(fig.subplots(1, len(kernels)))
    for ax, (name, w) in zip(axes, kernels.items()):
        ax.imshow(_tile(np.asarray(w, dtype=np.float64)), interpolation="nearest")
        ax.set_title(f"{name}: {w.shape[0]} kernels {w.shape[2]}x{w.shape[3]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path, dpi=150)


def plot_erfs(maps: Mapping[tuple[str, str], tuple[np.ndarray, object]], path: Path) -> Path:
    """ERF maps, one row per member (input size), one column per network, each scaled to its 99.5th percentile,
    with a circle of radius 2 sigma of the fitted Gaussian."""
    from matplotlib.patches import Circle

    members = list(dict.fromkeys(m for m, _ in maps))
    nets = list(dict.fromkeys(n for _, n in maps))
    fig = _figure(2.6 * len(nets) + 0.6, 2.5 * len(members) + 0.3)
    axes = np.atleast_2d(fig.subplots(len(members), len(nets), squeeze=False))
    im = None
    for i, m in enumerate(members):
        for j, n in enumerate(nets):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if (m, n) not in maps:
                ax.set_visible(False)
                continue
            erf, fit = maps[(m, n)]
            top = np.percentile(erf, 99.5) or erf.max() or 1.0  # a few hot pixels would darken everything else
            im = ax.imshow(np.clip(erf / top, 0, 1), cmap="magma", vmin=0, vmax=1)
            if np.isfinite(fit.sigma):
                ax.add_patch(Circle((fit.center[1], fit.center[0]), 2 * fit.sigma, fill=False, color="cyan", lw=1))
            ax.set_title(f"{m}, {n}\nsigma {fit.sigma:.1f} (m {fit.sigma_moments:.1f}) px of {erf.shape[0]}",
                         fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.6, label="ERF / 99.5th percentile")
    return _save(fig, path)


def plot_erf_sigma(table: pd.DataFrame, path: Path) -> Path:
    """The ERF sigma per input size and network (fitted Gaussian: solid; second moments: dashed), in pixels and
    as a fraction of the input size; the dotted line is the moment sigma of a uniform map, 1/sqrt(12)."""
    fig = _figure(7.5, 3.0)
    ax1, ax2 = fig.subplots(1, 2)
    for net, sub in table.groupby("network", sort=False):
        sub = sub.sort_values("input_size")
        line, = ax1.plot(sub.input_size, sub.sigma_px, "o-", label=f"{net} (fit)")
        ax1.plot(sub.input_size, sub.sigma_moments_px, "s--", color=line.get_color(), alpha=0.6,
                 label=f"{net} (moments)")
        ax2.plot(sub.input_size, sub.sigma_fraction, "o-", color=line.get_color())
        ax2.plot(sub.input_size, sub.sigma_moments_px / sub.input_size, "s--", color=line.get_color(), alpha=0.6)
    ax2.axhline(1 / np.sqrt(12), color="gray", ls=":", lw=1)
    ax2.text(table.input_size.min(), 1 / np.sqrt(12), " uniform map (moments)", fontsize=7, va="bottom", color="gray")
    for ax, label in ((ax1, "sigma (input pixels)"), (ax2, "sigma / input size")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(table.input_size.unique()), [str(s) for s in sorted(table.input_size.unique())])
        ax.set_xlabel("input size (px)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    return _save(fig, path)


def write_explanation_page(result, cfg) -> Path:
    """``explanation.html`` in ``result.out``: the figures with numbered captions (PNG embedded; files beside
    it) by section, the ERF table and the options."""
    from medgap.report._page import PAGE_CSS, html_table

    sections = {"cam": "Class activation maps", "kernels": "First-layer kernels", "erf": "Effective receptive field"}
    parts = [f"<h1>medgap explain: {html.escape(str(cfg.run_dir))}</h1>",
             '<p class="muted">generated ' + datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
             + f" · fold {cfg.fold} · images: {html.escape(', '.join(map(str, cfg.images)))}</p>"]
    n = 0
    for key, title in sections.items():
        figs = [f for f in result.figures if f.section == key]
        if not figs:
            continue
        parts.append(f"<h2>{html.escape(title)}</h2>")
        for f in figs:
            n += 1
            uri = "data:image/png;base64," + base64.b64encode(Path(f.path).read_bytes()).decode()
            parts.append(f'<figure><img src="{uri}" alt="Figure {n}" style="max-width:100%">'
                         f"<figcaption><b>Figure {n}.</b> {html.escape(f.caption)} "
                         f'<span class="muted">(file: {html.escape(Path(f.path).name)})</span></figcaption></figure>')
        if key == "erf" and len(result.erf):
            shown = result.erf.copy()
            for c in ("sigma_px", "sigma_moments_px", "sigma_fraction"):
                shown[c] = shown[c].map(lambda v: f"{v:.3f}")
            parts.append("<h3>ERF widths (erf.csv)</h3>" + html_table(shown))
    if result.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in result.notes) + "</ul>")
    doc = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>medgap explain</title>"
           f"<style>{PAGE_CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = Path(result.out) / "explanation.html"
    with writing(path):
        path.write_text(doc, encoding="utf-8")
    return path


__all__ = ["plot_cams", "plot_erf_sigma", "plot_erfs", "plot_kernels", "write_explanation_page"]
