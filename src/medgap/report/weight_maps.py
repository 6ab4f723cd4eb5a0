"""Figures of where a learned quality model (``cnn-wsp``, :mod:`medgap.models.wsp`) looks: its pooling weight map
over the image it scored.

- :func:`plot_weight_map`: one image beside the same image under its weight map (a heat overlay with a colour
  bar), the predicted score in the title;
- :func:`overlay_rgb`: the heat overlay alone, as an RGB array of the image's size (a file a viewer can lay
  over the image);
- :func:`plot_weight_map_grid`: rows of overlays (groups of a study) with one colour bar;
- :func:`write_weight_maps`: files -> ``<stem>_weightmap.png`` (the figure), ``<stem>_overlay.png`` (image
  size) and ``weightmaps.csv`` (per image: score, where the weight lies) in a folder.

The maps are :attr:`medgap.quality.cnn_wsp.WeightMap.weights`: relative to average pooling (mean 1 over the
image; 1 = the weight average pooling gives every position, 0 = ignored). Figures use matplotlib's Agg canvas
(no pyplot), as in :mod:`medgap.report.study`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medgap.report._files import safe_file_stem, writing

CMAP = "inferno"
"""The heat colour map: dark where the model pools little, bright where it pools most (perceptually uniform)."""
ALPHA = 0.55
"""Opacity of the heat over the image."""
FIGURE_DPI = 100
"""Resolution of ``<stem>_weightmap.png``."""
PANEL_INCHES = 4.0
"""Height of each panel of :func:`plot_weight_map` (its width follows the image's aspect ratio)."""


def _gray_or_rgb(image: np.ndarray) -> tuple[np.ndarray, dict]:
    a = np.clip(np.asarray(image, np.float64), 0, 255) / 255.0
    return (a, {}) if a.ndim == 3 else (a, {"cmap": "gray", "vmin": 0.0, "vmax": 1.0})


def map_limit(maps: Sequence[np.ndarray]) -> float:
    """The colour bar's top: the 99th percentile over the maps (at least 2, twice the uniform weight), so one
    hot pixel does not wash out the rest."""
    values = np.concatenate([np.asarray(m, np.float64).ravel() for m in maps]) if maps else np.zeros(1)
    return float(max(2.0, np.percentile(values, 99)))


def overlay_rgb(image: np.ndarray, weights: np.ndarray, *, vmax: float | None = None, alpha: float = ALPHA,
                cmap: str = CMAP) -> np.ndarray:
    """H x W x 3 uint8: ``image`` (HxW or HxWx3, 0-255) blended with the heat of ``weights`` (H x W, 0 to
    ``vmax``, default :func:`map_limit`) at opacity ``alpha``."""
    from matplotlib import colormaps

    a, _ = _gray_or_rgb(image)
    w = np.asarray(weights, np.float64)
    if a.shape[:2] != w.shape:
        raise ValueError(f"weight map {w.shape} and image {a.shape[:2]} differ in size: compute the map for this "
                         "image (medgap.quality.cnn_wsp.weight_maps)")
    rgb = a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)
    top = map_limit([w]) if vmax is None else vmax
    heat = colormaps[cmap](np.clip(w / top, 0.0, 1.0))[..., :3]
    return np.round(255 * ((1 - alpha) * rgb[..., :3] + alpha * heat)).astype(np.uint8)


def _canvas(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_size(shape: Sequence[int]) -> tuple[float, float]:
    """(width, height) in inches of :func:`plot_weight_map` for an image of ``shape`` (H, W, ...): two panels of
    :data:`PANEL_INCHES` height and the image's aspect ratio, and the colour bar."""
    h, w = int(shape[0]), int(shape[1])
    return round(2 * PANEL_INCHES * w / h + 1.2, 2), PANEL_INCHES + 0.6


def plot_weight_map(image: np.ndarray, weights: np.ndarray, title: str, *, vmax: float | None = None) -> Figure:
    """``image`` (left) and the same image under its weight map (right, with a colour bar), titled ``title``."""
    a, kw = _gray_or_rgb(image)
    top = map_limit([weights]) if vmax is None else vmax
    fig = _canvas(*figure_size(a.shape))
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        ax.imshow(a, **kw)
        ax.set_xticks([])
        ax.set_yticks([])
    left.set_title("image", fontsize=10)
    heat = right.imshow(weights, cmap=CMAP, alpha=ALPHA, vmin=0.0, vmax=top, interpolation="nearest")
    right.set_title("pooling weight (1 = uniform)", fontsize=10)
    bar = fig.colorbar(heat, ax=right, shrink=0.9)
    bar.set_label("weight relative to average pooling")
    fig.suptitle(title, fontsize=11)
    return fig


def plot_weight_map_grid(rows: Sequence[tuple[str, Sequence[tuple[np.ndarray, np.ndarray, str]]]],
                         *, panel: float = 2.2) -> Figure:
    """One row per ``(label, [(image, weights, caption), ...])``: each image under its weight map, captioned; one
    colour scale (:func:`map_limit` over every map) and one colour bar."""
    n_cols = max((len(cells) for _, cells in rows), default=1) or 1
    top = map_limit([w for _, cells in rows for _, w, _ in cells])
    fig = _canvas(panel * n_cols + 1.3, panel * len(rows) + 0.4)
    axes = np.atleast_2d(fig.subplots(len(rows), n_cols, squeeze=False))
    heat = None
    for r, (label, cells) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.set_axis_off()
                continue
            image, weights, caption = cells[c]
            a, kw = _gray_or_rgb(image)
            ax.imshow(a, **kw)
            heat = ax.imshow(weights, cmap=CMAP, alpha=ALPHA, vmin=0.0, vmax=top, interpolation="nearest")
            ax.set_title(caption, fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    if heat is not None:
        fig.colorbar(heat, ax=axes, shrink=min(0.8, 3.0 / max(1, len(rows)))).set_label(
            "pooling weight relative to average pooling")
    return fig


def weight_summary(weights: np.ndarray) -> dict[str, float]:
    """Where the weight lies (fractions of the map's total; ``nan`` for a map of zeros): ``centre_share`` in
    the central quarter of the area (0.25 if uniform), ``top10_share`` in the 10% of pixels weighted most
    (0.10 if uniform), ``zero_fraction`` of pixels with no weight, and the peak's position as fractions of
    the height and width (``peak_y``, ``peak_x``; 0 = top/left)."""
    w = np.asarray(weights, np.float64)
    total = w.sum()
    h, wd = w.shape
    if total <= 0:
        return {"centre_share": float("nan"), "top10_share": float("nan"), "zero_fraction": 1.0,
                "peak_y": float("nan"), "peak_x": float("nan")}
    centre = w[h // 4: h - h // 4, wd // 4: wd - wd // 4].sum() / total
    flat = np.sort(w.ravel())[::-1]
    top = flat[: max(1, int(round(0.1 * flat.size)))].sum() / total
    py, px = np.unravel_index(int(np.argmax(w)), w.shape)
    return {"centre_share": float(centre), "top10_share": float(top), "zero_fraction": float((w <= 0).mean()),
            "peak_y": float((py + 0.5) / h), "peak_x": float((px + 0.5) / wd)}


def write_weight_maps(model: Any, paths: Sequence[str | Path], out_dir: str | Path, *, fold: int = 0,
                      device: str = "cpu", display: Any = None, mos: Sequence[float] | None = None) -> pd.DataFrame:
    """For each image file (its first frame; ``display``, a :class:`medgap.io.Display`, as the study applied it,
    else :func:`medgap.io.to_rgb255`): ``out_dir/<stem>_weightmap.png`` (:func:`plot_weight_map`, score in the
    title), ``out_dir/<stem>_overlay.png`` (:func:`overlay_rgb`, the image's size) and one row of
    ``out_dir/weightmaps.csv`` (path, files, score, score_mos, the given ``mos``, :func:`weight_summary`, and
    ``error``: why a file could not be read, its other columns empty).

    ``model``: a ``medgap train-quality`` run directory (fold ``fold``), a ``model.pt``, or ``(net, meta)``."""
    import cv2

    from medgap.io import ImageReadError, read_frames, to_rgb255
    from medgap.quality.cnn_wsp import _model_file, load_quality_model, weight_maps

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loaded = model if isinstance(model, tuple) else load_quality_model(_model_file(model, fold))
    taken: set[str] = set()
    rows = []
    for i, path in enumerate(paths):
        try:
            frame = next(iter(read_frames(path)))
            image = display.prepare_rgb(frame) if display is not None else to_rgb255(frame)
        except (ImageReadError, StopIteration, ValueError) as e:  # that file's row says why; the rest are drawn
            rows.append({"path": str(path), "error": str(e) or "no frames"})
            continue
        wm = weight_maps(loaded, [image], device=device)[0]
        stem = safe_file_stem(Path(path).stem, taken)
        title = f"{Path(path).name}: predicted {wm.score:.2f} of 5 (MOS {wm.score_mos:.1f})"
        if mos is not None:
            title += f"; rated MOS {float(mos[i]):.1f}"
        fig = plot_weight_map(image, wm.weights, title)
        figure, overlay = out / f"{stem}_weightmap.png", out / f"{stem}_overlay.png"
        with writing(figure):
            fig.savefig(figure, format="png", dpi=FIGURE_DPI)
        with writing(overlay):
            if not cv2.imwrite(str(overlay), overlay_rgb(image, wm.weights)[..., ::-1]):
                raise OSError(f"could not write {overlay}")
        rows.append({"path": str(path), "figure": figure.name, "overlay": overlay.name, "score": wm.score,
                     "score_mos": wm.score_mos, **({"mos": float(mos[i])} if mos is not None else {}),
                     **weight_summary(wm.weights), "error": None})
    table = pd.DataFrame(rows)
    with writing(out / "weightmaps.csv"):
        table.to_csv(out / "weightmaps.csv", index=False)
    return table


def weight_map_caption(metric: str, unit_note: str = "") -> str:
    """The study report's caption of the grid (plain text)."""
    return (
        f"Where {metric} looks: each image under the learned pooling weight map of the model (bright: the "
        "features of that region count most in the score; dark: little or not at all), scaled so that 1 is the "
        "weight average pooling would give every position. Per group, the lowest-, median- and highest-scored "
        f"images by {metric}; the predicted score (1-5) is above each image.{unit_note}")


__all__ = ["ALPHA", "CMAP", "figure_size", "map_limit", "overlay_rgb", "plot_weight_map", "plot_weight_map_grid",
           "weight_map_caption", "weight_summary", "write_weight_maps"]
