"""The study report, ready for a paper: one self-contained HTML file (figures and thumbnails inline as data
URIs, no network) with a table of contents, an overview (a forest plot of Cohen's d against the reference for
every metric and group, and a compact table), a methods text generated from the run, numbered figures with
captions (each also written as PNG and SVG under ``figures/``), and per metric the paper table, the omnibus,
mixed-model and reference tests, the post hoc tables, the assumption checks, the distribution of the unit
values and the lowest- and highest-scored images of each group.

Figures are drawn on a matplotlib ``Figure`` with the Agg canvas (no pyplot, no global backend) and names as
plain text (no mathtext). Only file names, groups and scores appear; no DICOM header field is read or shown.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from medgap.io import Display, ImageReadError, read_frames
from medgap.report._page import PAGE_CSS as _CSS, html_table as _html_table
from medgap.report._files import safe_file_stem, writing
from medgap.report._plain_text import plain_text_figures
from medgap.stats import (
    SMALL_GROUP,
    MetricComparison,
    anova_line,
    format_ci,
    format_n,
    format_p,
    format_value,
    mixed_model_line,
    paper_table,
    reference_tests_line,
    resolve_units,
)

FIGURE_DPI = 200
"""Resolution of the PNG figure files (and of the figures inlined in the report)."""

MIN_VIOLIN = 5
"""A group with fewer unit values than this is drawn as points only: a violin's density of 2-4 values
suggests a shape the data cannot show."""

SENSITIVITY_COLUMNS = ("choice", "metric", "group", "cohen_d", "d_ci_low", "d_ci_high")
"""The columns ``plot_sensitivity`` and ``write_study_report(sensitivity=...)`` read (one row per choice x
metric x group, d against the reference)."""



# ----------------------------------------------------------------------------------------------- tables


def _direction_words(lower_is_better: bool | None) -> str:
    return {True: "lower is better", False: "higher is better"}.get(lower_is_better, "no better direction")


def _metric_order(result: MetricComparison) -> list[str]:
    """The primary metric, then the metrics with a direction, then the descriptive statistics (stable)."""
    cols = list(result)
    rank = {c: (c != result.primary, result.lower_is_better.get(c) is None) for c in cols}
    return sorted(cols, key=lambda c: rank[c])


def forest_table(result: MetricComparison) -> pd.DataFrame:
    """The forest plot's data, one row per metric x group against the reference, in the plot's order (primary
    metric first, then metrics with a direction, then descriptive statistics; groups as in the result): the
    ``vs_reference()`` columns ``metric, group_b, n_units_b, n_frames_b, cohen_d, d_ci_low, d_ci_high,
    d_ci_method, p, p_holm, holm_family`` at full precision, with ``lower_is_better``."""
    v = result.vs_reference()
    cols = ["metric", "group_b", "n_units_b", "n_frames_b", "cohen_d", "d_ci_low", "d_ci_high", "d_ci_method",
            "p", "p_holm", "holm_family"]
    if v.empty:
        return pd.DataFrame(columns=[*cols, "lower_is_better"])
    order = {m: i for i, m in enumerate(_metric_order(result))}
    groups = {g: i for i, g in enumerate(result.groups)}
    v = v.assign(_m=v.metric.map(order), _g=v.group_b.map(groups).fillna(len(groups)))
    v = v.sort_values(["_m", "_g"], kind="stable")[cols].reset_index(drop=True)
    v["lower_is_better"] = [result.lower_is_better.get(m) for m in v.metric]
    return v


def compact_table(result: MetricComparison, d_digits: int = 2) -> pd.DataFrame:
    """The overview table (printed values): metric, group, n units (frames), d vs the reference (CI), the CI's
    method and the Holm-adjusted P of the declared test."""
    t = forest_table(result)
    level = f"{_confidence(result) * 100:g}% CI"
    n_col = f"n {result.unit}s (frames)"
    rows = [{"metric": r.metric + (" (primary)" if r.metric == result.primary else ""), "group": r.group_b,
             n_col: format_n(int(r.n_units_b), int(r.n_frames_b)),
             f"d vs {result.reference} ({level})": format_ci(r.cohen_d, r.d_ci_low, r.d_ci_high, d_digits),
             "CI method": r.d_ci_method or "n/a", "P (Holm)": format_p(r.p_holm).removeprefix("P ").lstrip("= ")}
            for r in t.itertuples()]
    return pd.DataFrame(rows, columns=["metric", "group", n_col, f"d vs {result.reference} ({level})", "CI method",
                                       "P (Holm)"])


_TEST_NAMES = {"welch": "Welch's t test", "mixed": "mixed-model z test", "mann-whitney": "Mann-Whitney U test"}


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else "n/a"


def _confidence(result: MetricComparison) -> float:
    return next(iter(result.values())).confidence if len(result) else 0.95


def _blank_repeats(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` printed on the first row of each run of equal values only (a block per metric)."""
    out = df.copy()
    out.loc[out[column].eq(out[column].shift()), column] = ""
    return out


def _posthoc_tables(cmp) -> dict[str, pd.DataFrame]:
    """Games-Howell (every pair, adjusted by construction), Dunn with Holm and Cliff's delta, and the
    assumption checks, with printed values."""
    gh = cmp.games_howell
    out = {}
    if len(gh):
        out["Games-Howell (unequal variances; every pair)"] = pd.DataFrame({
            "pair": gh.group_a.astype(str) + " - " + gh.group_b.astype(str),
            "n": [f"{a} / {b}" for a, b in zip(gh.n_a, gh.n_b)],
            "difference (95% CI)": [format_ci(d, lo, hi, None) for d, lo, hi in zip(gh["diff"], gh.ci_low, gh.ci_high)],
            "P (adjusted)": [format_p(p).removeprefix("P ").lstrip("= ") for p in gh.p_adj]})
    dunn = cmp.dunn
    if len(dunn):
        out["Dunn's test after Kruskal-Wallis (Holm over every pair) with Cliff's delta"] = pd.DataFrame({
            "pair": dunn.group_a.astype(str) + " - " + dunn.group_b.astype(str),
            "mean ranks": [f"{format_value(a)} / {format_value(b)}"
                           for a, b in zip(dunn.mean_rank_a, dunn.mean_rank_b)],
            "z": [format_value(z) for z in dunn.z],
            "P (Holm)": [format_p(p).removeprefix("P ").lstrip("= ") for p in dunn.p_holm],
            "Cliff's delta": [f"{c:.2f}" for c in dunn.cliffs_delta]})
    a = cmp.assumptions
    if len(a):
        out["Assumption checks (on unit values)"] = pd.DataFrame({
            "test": a.test, "group": a.group, "n": a.n,
            "statistic": [format_value(s) for s in a.statistic],
            "P": [format_p(p).removeprefix("P ").lstrip("= ") if np.isfinite(p) else "" for p in a.p],
            "note": a.note})
    return out


# ----------------------------------------------------------------------------------------------- figures


def _canvas(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


@plain_text_figures
def plot_forest(result: MetricComparison) -> Figure:
    """Cohen's d of every group against the reference with its reported CI (``vs_reference()``), a panel per
    metric, groups as rows, a zero line; "better" marked on the side it lies for metrics with a direction.
    Filled markers: Holm-adjusted P < .05 for the declared test."""
    t = forest_table(result)
    metrics = list(dict.fromkeys(t.metric))
    groups = [g for g in result.groups if g != result.reference and g in set(t.group_b)]
    k = max(1, len(metrics))
    ncols = min(4, k)
    nrows = math.ceil(k / ncols)
    fig = _canvas((2.9 * ncols + 0.9, (0.32 * len(groups) + 1.25) * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    y = {g: len(groups) - 1 - i for i, g in enumerate(groups)}
    level = f"{_confidence(result) * 100:g}%"
    for ax, metric in zip(axes.ravel(), metrics):
        rows = t[t.metric == metric]
        lib = rows.lower_is_better.iloc[0]
        for r in rows.itertuples():
            yy = y[r.group_b]
            sig = np.isfinite(r.p_holm) and r.p_holm < 0.05
            if np.isfinite(r.d_ci_low) and np.isfinite(r.d_ci_high):
                ax.plot([r.d_ci_low, r.d_ci_high], [yy, yy], color="#3b6ea8", lw=1.6, solid_capstyle="butt")
            ax.plot([r.cohen_d], [yy], "o", ms=5.5, color="#3b6ea8", mfc="#3b6ea8" if sig else "white", mew=1.4)
        ax.axvline(0, color="#555", lw=0.9, ls="--")
        ax.set_title(metric + (" (primary)" if metric == result.primary else ""), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.set_ylim(-0.7, len(groups) - 0.3)
        ax.tick_params(labelsize=8.5)
        lo, hi = ax.get_xlim()
        span = max(abs(lo), abs(hi), 0.5)
        ax.set_xlim(min(lo, -0.15 * span), max(hi, 0.15 * span))
        if lib is None:
            hint = "no better direction"
        else:  # d = (group - reference) / SD: for lower-is-better metrics a negative d is the better side
            hint = "\u2190 better" if lib else "better \u2192"
        ax.set_xlabel(f"d vs {result.reference}\n({hint})", fontsize=8.5)
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    axes[0, 0].set_yticks(list(y.values()), list(y.keys()))
    fig.suptitle(f"Cohen's d against {result.reference} with {level} CI (per {result.unit}; filled: "
                 f"Holm-adjusted P < .05)", fontsize=10)
    return fig


def unit_values(scores: pd.DataFrame, result: MetricComparison, column: str) -> dict[str, np.ndarray]:
    """Each group's unit values of ``column`` (the mean of each unit's finite frames): what the tests compared.
    Units as ``compare_metrics`` made them (``result.unit``, ``result.unit_column``; a patient in two groups is a
    unit of each)."""
    units = resolve_units(scores, result.unit, result.unit_column if result.unit == "patient" else None)
    values = pd.to_numeric(scores[column], errors="coerce").astype(np.float64)
    t = pd.DataFrame({"group": scores["group"], "unit": units.ids, "v": values})
    t = t[np.isfinite(t.v) & t.group.notna()]
    means = t.groupby(["group", "unit"], sort=False).v.mean().reset_index()
    return {str(g): means.loc[means.group == g, "v"].to_numpy() for g in result.groups if (means.group == g).any()}


@plain_text_figures
def plot_distribution(values: Mapping[str, np.ndarray], column: str, lower_is_better: bool | None,
                      unit: str = "file") -> Figure:
    """Each group's unit values: a violin with a box for groups of ``MIN_VIOLIN`` or more, the points (jittered)
    for every group, and a bar at the mean for groups too small for a violin."""
    keep = [(g, np.asarray(v, np.float64)) for g, v in values.items() if np.asarray(v).size]
    fig = _canvas((1.15 * len(keep) + 2.2, 3.8))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is the same on every run
    big = [(i, v) for i, (_, v) in enumerate(keep, start=1) if v.size >= MIN_VIOLIN]
    if big:
        parts = ax.violinplot([v for _, v in big], positions=[i for i, _ in big], showextrema=False, widths=0.8)
        for body in parts["bodies"]:
            body.set_alpha(0.3)
            body.set_facecolor("#3b6ea8")
        ax.boxplot([v for _, v in big], positions=[i for i, _ in big], widths=0.15, showfliers=False)
    for i, (_, v) in enumerate(keep, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, v.size), v, s=9, alpha=0.55, color="#222", edgecolors="none",
                   zorder=3)
        if v.size < MIN_VIOLIN:
            ax.plot([i - 0.2, i + 0.2], [v.mean()] * 2, color="#d1495b", lw=2, zorder=4)
    ax.set_xticks(range(1, len(keep) + 1), [f"{g}\n(n={v.size})" for g, v in keep], fontsize=8.5)
    ax.set_xlim(0.4, len(keep) + 0.6)
    ax.set_ylabel(f"{column} ({_direction_words(lower_is_better)})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{column}: one point per {unit}", fontsize=10)
    return fig


@plain_text_figures
def plot_sensitivity(df: pd.DataFrame) -> Figure:
    """How each group's d against the reference moves with the display and scale choices: one forest panel
    per choice side by side (a row of panels per metric), groups as rows, the same x axis per metric.

    ``df``: tidy, one row per choice x metric x group with the columns of ``SENSITIVITY_COLUMNS``
    (``choice`` e.g. "window=lung"; choices and metrics in order of first appearance)."""
    missing = [c for c in SENSITIVITY_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"the sensitivity table lacks {', '.join(missing)}; it needs one row per choice x metric x "
                         f"group with the columns {', '.join(SENSITIVITY_COLUMNS)}")
    choices = list(dict.fromkeys(df.choice.astype(str)))
    metrics = list(dict.fromkeys(df.metric.astype(str)))
    groups = list(dict.fromkeys(df.group.astype(str)))
    fig = _canvas((2.5 * len(choices) + 1.0, (0.3 * len(groups) + 1.1) * len(metrics) + 0.4))
    axes = fig.subplots(len(metrics), len(choices), squeeze=False, sharey=True)
    y = {g: len(groups) - 1 - i for i, g in enumerate(groups)}
    for mi, metric in enumerate(metrics):
        sub = df[df.metric.astype(str) == metric]
        bounds = pd.concat([sub.cohen_d, sub.d_ci_low, sub.d_ci_high]).astype(float)
        bounds = bounds[np.isfinite(bounds)]
        lo, hi = (float(bounds.min()), float(bounds.max())) if len(bounds) else (-1.0, 1.0)
        pad = 0.08 * max(hi - lo, 0.5)
        for ci, choice in enumerate(choices):
            ax = axes[mi, ci]
            for r in sub[sub.choice.astype(str) == choice].itertuples():
                yy = y[str(r.group)]
                if np.isfinite(r.d_ci_low) and np.isfinite(r.d_ci_high):
                    ax.plot([r.d_ci_low, r.d_ci_high], [yy, yy], color="#3b6ea8", lw=1.5)
                ax.plot([r.cohen_d], [yy], "o", ms=5, color="#3b6ea8")
            ax.axvline(0, color="#555", lw=0.9, ls="--")
            ax.set_xlim(min(lo - pad, -pad), max(hi + pad, pad))
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.set_ylim(-0.7, len(groups) - 0.3)
            ax.grid(axis="x", alpha=0.3)
            ax.tick_params(labelsize=8)
            ax.set_title(choice if mi == 0 else "", fontsize=9)
            if ci == 0:
                ax.set_ylabel(metric, fontsize=9)
            ax.set_xlabel("d" if mi == len(metrics) - 1 else "", fontsize=8.5)
    axes[0, 0].set_yticks(list(y.values()), list(y.keys()))
    fig.suptitle("Cohen's d against the reference under each display and scale choice", fontsize=10)
    return fig


def sensitivity_table(df: pd.DataFrame) -> pd.DataFrame:
    """The sensitivity data as printed: one row per metric x group, one column per choice (d (CI))."""
    cells = df.assign(value=[format_ci(d, lo, hi, 2) for d, lo, hi in zip(df.cohen_d, df.d_ci_low, df.d_ci_high)])
    wide = cells.pivot_table(index=["metric", "group"], columns="choice", values="value", aggfunc="first", sort=False)
    wide = wide[list(dict.fromkeys(df.choice.astype(str)))]
    wide.columns.name = None
    return wide.reset_index()


# ----------------------------------------------------------------------------------------------- methods


def _flat_config(config: Mapping | None) -> dict:
    """Leaf options of a (nested) command config: ``{"quality": {"window": ...}}`` -> ``{"window": ...}`` (the
    first occurrence of a name wins)."""
    out: dict = {}

    def walk(d: Mapping) -> None:
        for k, v in d.items():
            if isinstance(v, Mapping):
                walk(v)
            else:
                out.setdefault(str(k), v)

    walk(config or {})
    return out


def _metric_infos(columns: list[str]) -> dict[str, object]:
    """Column -> the registry entry that writes it (None for a column the registry does not know)."""
    from medgap.quality import get_metric_info, list_metrics  # the registry loads every metric: only when asked

    by_column = {}
    for name in list_metrics():
        info = get_metric_info(name)
        for c in info.columns if info.kind == "statistic" else info.columns[:1]:
            by_column.setdefault(c, info)
    return {c: by_column.get(c) for c in columns}


def _recorded_versions(scores: pd.DataFrame) -> dict[str, str]:
    """Metric name -> version as the scores table records it (``metric_versions``: ``brisque=2,niqe=3``; with
    parameters the version carries their hash)."""
    if "metric_versions" not in scores:
        return {}
    out: dict[str, str] = {}
    for text in scores["metric_versions"].dropna().astype(str).unique():
        for part in text.split(","):
            name, _, version = part.partition("=")
            if name and version:
                out.setdefault(name.strip(), version.strip())
    return out


def _list(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _software(env: Mapping) -> str:
    pk = dict(env.get("packages") or {})
    version = pk.get("medgap", "(version unknown)")
    git = env.get("git") or {}
    commit = ""
    if git.get("commit"):
        commit = f" (git commit {str(git['commit'])[:10]}{', with uncommitted changes' if git.get('dirty') else ''})"
    names = {"numpy": "NumPy", "scipy": "SciPy", "pandas": "pandas", "statsmodels": "statsmodels",
             "pingouin": "pingouin", "scikit-image": "scikit-image", "pydicom": "pydicom", "nibabel": "nibabel",
             "av": "PyAV", "matplotlib": "matplotlib", "torch": "PyTorch"}
    libs = [f"{label} {pk[p]}" for p, label in names.items() if p in pk]
    cv = env.get("opencv") or next((pk[p] for p in pk if p.startswith("opencv")), None)
    if cv:
        libs.append(f"OpenCV {cv}")
    return (f"Images were scored and compared with medgap {version}{commit} in Python {env.get('python', '?')}"
            + (f", using {_list(libs)}" if libs else "") + ".")


def _preprocessing(flat: Mapping) -> str:
    parts = []
    window = flat.get("window")
    if window is not None:
        parts.append("DICOM images were displayed with the window stored in the file" if str(window) == "file"
                     else "DICOM images were min-max scaled over the file's range (the stored window was not used)"
                     if str(window) == "minmax" else f"DICOM images were displayed with the {window} window"
                     + (" (CT presets in Hounsfield units; other images kept the file's display rule)"
                        if str(window) in ("lung", "mediastinum", "bone", "brain") else ""))
    else:
        parts.append("DICOM images were displayed with the window stored in the file (or min-max scaled over the "
                     "file's range when none is stored)")
    if "resize_short" in flat:
        n = flat.get("resize_short")
        parts.append(f"every image was resized to a short side of {n} pixels (bicubic, antialiased, as MATLAB "
                     "imresize)" if n else "images were scored at their native size")
    else:
        parts.append("images were scored at their native size")
    if "foreground" in flat:
        parts.append("each image was cropped to the bounding box of its non-background content"
                     if flat.get("foreground") else "the whole image was scored (no foreground crop)")
    stride = flat.get("video_stride")
    if stride is not None:
        parts.append("every frame of videos was scored" if int(stride) == 1 else f"every {int(stride)}th video frame "
                     "was scored")
    axis = flat.get("nifti_axis")
    if axis is not None:
        parts.append(f"NIfTI volumes were sliced along axis {axis}")
    return ("Each frame was converted to a gray image on the 0-255 scale before scoring: " + "; ".join(parts) + ".")


def methods_paragraphs(result: MetricComparison, scores: pd.DataFrame, *, config: Mapping | None = None,
                       environment: Mapping | None = None, sensitivity: pd.DataFrame | None = None) -> list[str]:
    """The methods text of a study, as plain paragraphs a researcher can paste and edit: software, metrics
    (name, version, citation), data and unit of analysis (n units and frames per group), display and
    preprocessing (from ``config``), tests and corrections, sensitivity choices."""
    flat = _flat_config(config)
    env = environment if environment is not None else _environment()
    cols = list(result)
    infos = _metric_infos(cols)
    recorded = _recorded_versions(scores)
    paras = [_software(env)]

    described, seen = [], set()
    for c in _metric_order(result):
        info = infos[c]
        if info is None:
            described.append(f"{c} (a column of the scores table, not a registered metric)")
            continue
        if info.name in seen:
            continue
        seen.add(info.name)
        version = recorded.get(info.name, info.version)
        if info.kind == "statistic":
            shown = [x for x in info.columns if x in cols]
            described.append(f"the image statistics {_list(shown)} ({info.name} version {version}; {info.reference}; "
                             "descriptive, with no better direction)")
        else:
            described.append(f"{info.name.upper() if info.name.isalpha() else info.name} (medgap metric "
                             f"{info.name!r} version {version}; {info.reference}; "
                             f"{_direction_words(info.lower_is_better)})")
    paras.append("Measures: " + "; ".join(described) + "."
                 + (f" The primary metric was {result.primary}." if result.primary else ""))

    counts = result.counts
    unit = result.unit
    groups = ", ".join(f"{r.group} {format_n(int(r.n_units), int(r.n_frames))}" for r in counts.itertuples())
    if unit == "frame":
        unit_text = ("The unit of analysis was the frame: every frame counted as one observation, including frames "
                     "of one clip or patient")
    else:
        source = f" (ids from the {result.unit_column!r} column)" if result.unit_column else ""
        unit_text = (f"The unit of analysis was the {unit}{source}: the frames of each {unit} were averaged, and "
                     f"every test and effect size used one value per {unit}")
    paras.append(f"{unit_text}. Groups, n {unit}s (frames): {groups}. The reference group was "
                 f"{result.reference}. {_preprocessing(flat)}")

    level = f"{_confidence(result) * 100:g}%"
    first = next(iter(result.values()), None)
    boot = first.bootstrap if first is not None else {}
    test = {"welch": f"Welch's t test on the {unit} values", "mixed": "the Wald z test of the mixed model",
            "mann-whitney": f"the Mann-Whitney U test on the {unit} values"}.get(result.test, result.test)
    fam = result.families
    holm = ""
    if fam.get("primary"):
        holm = (f" P values against the reference were Holm-adjusted within two families: the primary metric's "
                f"{fam['primary']['size']} comparison(s)")
        if fam.get("secondary"):
            holm += f", and the {fam['secondary']['size']} comparisons of the secondary metrics together"
        holm += "."
    mixed = ""
    if any(c.mixed is not None for c in result.values()):
        mixed = (f" A linear mixed model (statsmodels MixedLM, REML; score ~ group + (1 | {unit})) was fitted on "
                 f"the frames, giving each group's difference from the reference in the metric's units with a "
                 f"{level} Wald CI and the intraclass correlation.")
    paras.append(
        f"For each measure the groups were compared with one-way ANOVA, Welch's ANOVA and the Kruskal-Wallis test "
        f"on the {unit} values, followed by Tukey HSD and Games-Howell post hoc tests and Dunn's test "
        f"(Holm-adjusted over all pairs, with Cliff's delta). Each group was compared with {result.reference} by "
        f"{test}.{holm}{mixed} Cohen's d used the pooled SD; its {level} CI inverts the noncentral t distribution "
        f"when either group had fewer than {SMALL_GROUP} {unit}s, and is otherwise a percentile bootstrap resampling "
        f"{unit}s within each group ({_count(boot.get('n_boot'))} resamples, seed {boot.get('seed', 'n/a')}). "
        "Variance homogeneity was checked with the Brown-Forsythe test and normality per group with the "
        "Shapiro-Wilk test; Welch's ANOVA, Games-Howell and Kruskal-Wallis are reported regardless.")
    if sensitivity is not None and len(sensitivity):
        choices = list(dict.fromkeys(sensitivity.choice.astype(str)))
        paras.append(f"Sensitivity to display and scale: the comparison with {result.reference} was repeated under "
                     f"{len(choices)} choices ({_list(choices)}), with the same unit and tests.")
    return paras


def _environment() -> dict:
    from medgap.environment import PACKAGES, environment

    return environment((*PACKAGES, "statsmodels", "pingouin", "matplotlib"))


# ----------------------------------------------------------------------------------------------- thumbnails


def _display(flat: Mapping) -> Display:
    names = ("window", "resize_short", "foreground")
    return Display.from_config(SimpleNamespace(**{n: flat[n] for n in names if n in flat and flat[n] is not None}))


class _Thumbnails:
    """Thumbnails of scored frames, each read once: the gray 0-255 image the metric saw (the run's display
    rules: window, foreground crop, resize), fitted into ``size`` pixels as JPEG data URIs."""

    def __init__(self, flat: Mapping, size: int = 150):
        self.display = _display(flat)
        self.read = {k: flat[k] for k in ("nifti_axis", "max_pixels") if flat.get(k) is not None}
        self.stride = int(flat.get("video_stride") or 1)
        self.size = size
        self.cache: dict[tuple[str, int | None], str | None] = {}

    def __call__(self, path: str, frame) -> str | None:
        key = (str(path), None if pd.isna(frame) else int(frame))
        if key not in self.cache:
            self.cache[key] = self._make(*key)
        return self.cache[key]

    def frame(self, path: str, frame: int | None):
        """The scored frame (a :class:`medgap.io.Frame`) as the run read it, or None when it cannot be read."""
        stride = self.stride if frame is not None and frame % self.stride == 0 else 1
        try:
            for fr in read_frames(path, video_stride=stride, **self.read):
                if frame is None or fr.frame == frame:
                    return fr
        except (ImageReadError, ValueError):
            return None
        return None

    def _make(self, path: str, frame: int | None) -> str | None:
        fr = self.frame(path, frame)
        if fr is None:
            return None
        try:
            g = self.display.prepare(fr)
        except (ImageReadError, ValueError):
            return None
        g = np.nan_to_num(g)
        scale = self.size / max(g.shape)
        small = cv2.resize(g, (max(1, round(g.shape[1] * scale)), max(1, round(g.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", np.clip(small, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
        return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else None


def _thumbs(rows: pd.DataFrame, column: str, thumbnail: _Thumbnails) -> str:
    cells = []
    for r, value in zip(rows.itertuples(), rows[column]):  # a column such as cnn-wsp is no attribute name
        uri = thumbnail(r.path, r.frame)
        name = Path(str(r.path)).name + (f" #{int(r.frame)}" if pd.notna(r.frame) else "")
        img = f'<img src="{uri}" alt="{html.escape(name)}">' if uri else "<div>(unreadable)</div>"
        value = format_value(value)
        cells.append(f'<div class="thumb">{img}<br>{html.escape(name)}<br><b>{value}</b></div>')
    return '<div class="thumbs">' + "".join(cells) + "</div>"


# ----------------------------------------------------------------------------------------------- weight maps

WEIGHT_MAP_METRIC = "cnn-wsp"
"""The learned metric whose pooling weight maps get their own section (:func:`_weight_map_section`)."""


def _weight_map_model(flat: Mapping) -> dict[str, str] | None:
    """The parameters of the run's ``--metric cnn-wsp:model=RUN_DIR[,fold=K]`` (``model``, ``fold``), or None."""
    for spec in flat.get("metrics") or ():
        name, _, rest = str(spec).partition(":")
        if name.strip() == WEIGHT_MAP_METRIC:
            return {k.strip(): v.strip() for k, sep, v in (item.partition("=") for item in rest.split(",")) if sep}
    return None


def _weight_map_section(scores: pd.DataFrame, result: MetricComparison, params: Mapping[str, str],
                        thumbnail: _Thumbnails, figures: _Figures, per_group: int = 3, max_groups: int = 10,
                        side: int = 320) -> str:
    """A grid of weight-map overlays: per group the lowest-, median- and highest-scored frames by cnn-wsp, each
    under the model's pooling weight map (:func:`medgap.quality.cnn_wsp.weight_maps`, on the image the metric
    saw: the run's display rules), shown at ``side`` pixels at most."""
    from medgap.quality.cnn_wsp import _model_file, load_quality_model, weight_maps
    from medgap.report.weight_maps import plot_weight_map_grid, weight_map_caption

    column = WEIGHT_MAP_METRIC
    try:
        loaded = load_quality_model(_model_file(params.get("model", ""), int(params.get("fold") or 0)))
    except (ValueError, OSError) as e:
        return f'<p class="muted">No weight maps: the model could not be loaded ({html.escape(str(e))}).</p>'
    rows = []
    for g in result.groups[:max_groups]:
        sub = scores[(scores.group == g) & scores[column].notna()].sort_values(column, kind="stable")
        if sub.empty:
            continue
        picks = sub.iloc[sorted(set(np.round(np.linspace(0, len(sub) - 1, min(per_group, len(sub)))).astype(int)))]
        cells = []
        for r in picks.itertuples():
            fr = thumbnail.frame(str(r.path), None if pd.isna(r.frame) else int(r.frame))
            try:
                image = thumbnail.display.prepare_rgb(fr) if fr is not None else None
            except (ImageReadError, ValueError):
                image = None
            if image is None:
                continue
            wm = weight_maps(loaded, [image])[0]
            scale = min(1.0, side / max(image.shape[:2]))
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            small = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_AREA)
            small_map = cv2.resize(wm.weights.astype(np.float32), size, interpolation=cv2.INTER_AREA)
            name = Path(str(r.path)).name + (f" #{int(r.frame)}" if pd.notna(r.frame) else "")
            cells.append((small, small_map, f"{name[:28]}\n{column} {wm.score:.2f}"))
        if cells:
            rows.append((g, cells))
    if not rows:
        return '<p class="muted">No weight maps: none of the scored frames could be read again.</p>'
    more = (f" Only the first {max_groups} groups are shown." if len(result.groups) > max_groups else "")
    return figures.add(plot_weight_map_grid(rows), "cnn_wsp_weight_maps", weight_map_caption(column) + more)


# ----------------------------------------------------------------------------------------------- the page


@dataclass
class _Figures:
    """Numbered figures: each saved as PNG (``FIGURE_DPI``) and SVG under ``folder``, and inlined as PNG."""

    folder: Path
    count: int = 0

    def add(self, fig: Figure, stem: str, caption: str) -> str:
        self.count += 1
        n = self.count
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"figure_{n}_{stem}"
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=FIGURE_DPI)
        with writing(self.folder / f"{name}.png"):
            (self.folder / f"{name}.png").write_bytes(png.getvalue())
        with writing(self.folder / f"{name}.svg"):
            fig.savefig(self.folder / f"{name}.svg", format="svg")
        uri = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
        files = f"{self.folder.name}/{name}.png, .svg"
        width = round(fig.get_figwidth() * 96)  # its size in inches at the browser's 96 px per inch, not 200 dpi
        return (f'<figure id="figure-{n}"><img src="{uri}" alt="Figure {n}" style="width:{width}px">'
                f"<figcaption><b>Figure {n}.</b> {html.escape(caption)} "
                f'<span class="muted">(files: {html.escape(files)})</span></figcaption></figure>')


def _anchor(text: str) -> str:
    return "s-" + re.sub(r"[^A-Za-z0-9_-]", "-", text)


def write_study_report(
    out_dir: str | Path,
    scores: pd.DataFrame,
    result: MetricComparison,
    *,
    config: Mapping | None = None,
    environment: Mapping | None = None,
    sensitivity: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
    title: str = "medgap study: image quality by group",
    run_info: Mapping | None = None,
    n_examples: int = 4,
    name: str = "report.html",
) -> Path:
    """Write ``out_dir/report.html`` and its figures (``out_dir/figures/figure_<n>_<what>.png`` and ``.svg``).

    Args:
        scores: one row per frame (``medgap quality`` / ``study`` output: ``group``, ``path``, ``frame``, the
            metric columns, ``error``; ``metric_versions`` when present gives the versions in the methods).
        result: ``compare_metrics(scores, ...)``.
        config: the run's options (a command config as ``medgap._options.to_dict`` writes it, nested or flat):
            the display and reading options (window, resize_short, foreground, video_stride, nifti_axis) go into
            the methods text and are applied to the thumbnails.
        environment: ``medgap.environment.environment()`` of the run (default: this process's, with
            statsmodels, pingouin and matplotlib).
        sensitivity: optional tidy table (``SENSITIVITY_COLUMNS``) of d against the reference per display/scale
            choice, metric and group: a figure (``plot_sensitivity``) and a table in its own section.
        progress: called with a short text before each slow step (each metric's tables, each figure, the
            thumbnails).
        run_info: extra ``name: value`` pairs for the header line.
        n_examples: lowest and highest images shown per group and metric.

    Returns:
        the report's path.
    """
    say = progress or (lambda _: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _Figures(out_dir / "figures")
    flat = _flat_config(config)
    metrics = _metric_order(result)
    level = f"{_confidence(result) * 100:g}%"
    unit = result.unit
    failed = int(scores.error.notna().sum()) if "error" in scores else 0

    say("report: methods text")
    methods = methods_paragraphs(result, scores, config=config, environment=environment, sensitivity=sensitivity)
    toc = [("overview", "Overview: effect sizes against " + result.reference), ("methods", "Methods")]
    if sensitivity is not None and len(sensitivity):
        toc.append(("sensitivity", "Sensitivity to display and scale"))
    toc += [(_anchor(m), f"{m} ({_direction_words(result.lower_is_better.get(m))})") for m in metrics]
    wsp_params = _weight_map_model(flat) if WEIGHT_MAP_METRIC in scores else None
    if wsp_params is not None:
        toc.append(("weight-maps", f"Where {WEIGHT_MAP_METRIC} looks: pooling weight maps"))
    if result.notes:
        toc.append(("notes", "Notes on the data"))
    if failed:
        toc.append(("failed", f"Items that could not be scored ({failed})"))

    info = {"generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "frames": len(scores),
            "failed items": failed, "groups": ", ".join(result.groups), "reference": result.reference,
            "unit of analysis": unit, **(run_info or {})}
    parts = [f"<h1>{html.escape(title)}</h1>",
             '<p class="muted">' + " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in info.items())
             + "</p>",
             "<nav><b>Contents</b><ol>" + "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in toc)
             + "</ol></nav>"]

    # overview: the forest plot, the compact table, the caveat about the unit (once)
    parts.append(f'<h2 id="overview">Overview: effect sizes against {html.escape(result.reference)}</h2>')
    parts.append('<p class="caveat">' + html.escape(_caveat(result)) + "</p>")
    if len(result):
        say("report: figure 1 (forest plot)")
        parts.append(figures.add(plot_forest(result), "forest",
                                 f"Cohen's d of each group against {result.reference} with its {level} CI, one panel "
                                 f"per measure, computed on {unit} values (each {unit}'s frames averaged). The dashed "
                                 "line is no difference; for measures with a direction the better side is marked "
                                 "under the axis. Filled markers: Holm-adjusted P < .05 "
                                 f"({_TEST_NAMES.get(result.test, result.test)} against {result.reference})."))
        parts.append(f"<h3>Table 1. Cohen's d against {html.escape(result.reference)}, n {unit}s (frames), and "
                     "Holm-adjusted P</h3>" + _html_table(_blank_repeats(compact_table(result), "metric"), "overview"))
    else:
        parts.append("<p>No measure could be compared (see the notes).</p>")

    parts.append('<h2 id="methods">Methods</h2><div class="methods">'
                 + "".join(f"<p>{html.escape(p)}</p>" for p in methods) + "</div>")

    if sensitivity is not None and len(sensitivity):
        say("report: sensitivity figure")
        parts.append('<h2 id="sensitivity">Sensitivity to display and scale</h2>')
        parts.append(figures.add(plot_sensitivity(sensitivity), "sensitivity",
                                 "Cohen's d against the reference with its CI under each display and scale choice "
                                 "(columns), per measure (rows); a group whose d moves between columns depends on "
                                 "how its images are displayed or scaled."))
        parts.append(_html_table(_blank_repeats(sensitivity_table(sensitivity), "metric"), "overview"))

    thumbnail = _Thumbnails(flat)
    for m in metrics:
        cmp = result[m]
        lib = result.lower_is_better.get(m)
        say(f"report: {m} (tables, figure, thumbnails)")
        parts.append(f'<h2 id="{_anchor(m)}">{html.escape(m)} ({_direction_words(lib)})'
                     + (" · primary" if m == result.primary else "") + "</h2>")
        parts.append(_html_table(paper_table(cmp)))
        w, k = cmp.welch, cmp.kruskal
        lines = [anova_line(cmp),
                 "Welch's ANOVA: " + (f"F({w.df1:.0f}, {w.df2:.1f}) = {w.F:.2f}, {format_p(w.p)}" if np.isfinite(w.F)
                                      else "n/a (a group has zero variance or one value)"),
                 f"Kruskal-Wallis: H({k.df}) = {k.H:.2f}, {format_p(k.p)}, epsilon-squared = {k.epsilon_squared:.3f}",
                 reference_tests_line(cmp), mixed_model_line(cmp)]
        parts.append('<p class="stat">' + "<br>".join(html.escape(x) for x in lines if x) + "</p>")
        if cmp.notes:
            parts.append('<p class="muted">' + html.escape(" ".join(f"{n[0].upper()}{n[1:]}." if n else ""
                                                                    for n in cmp.notes)) + "</p>")
        values = unit_values(scores, result, m)
        small = [g for g, v in values.items() if v.size < MIN_VIOLIN]
        parts.append(figures.add(
            plot_distribution(values, m, lib, unit), f"{safe_file_stem(m, set())}_distribution",
            f"{m} per {unit} (one point per {unit}: the mean of its frames) in each group; violins with a box "
            f"(median, quartiles) for groups of {MIN_VIOLIN} or more {unit}s"
            + (f", points and their mean (red bar) only for {_list(small)} (fewer than {MIN_VIOLIN})" if small else "")
            + "."))
        for heading, table in _posthoc_tables(cmp).items():
            shown = " open" if m == result.primary else ""  # the primary metric's tables print too
            parts.append(f"<details{shown}><summary>{html.escape(heading)}</summary>{_html_table(table)}</details>")
        low_name, high_name = ("lowest", "highest") if lib is None else ("best", "worst")
        parts.append("<h3>Lowest and highest values per group</h3>" if lib is None
                     else "<h3>Best and worst scored images per group</h3>")
        parts.append('<p class="muted">Thumbnails show what the metric sees: the gray 0-255 image after the display '
                     "rules of this run (window, crop, resize), not the file as a viewer shows it.</p>")
        for g in result.groups:
            sub = scores[(scores.group == g) & scores[m].notna()].sort_values(m, kind="stable")
            if sub.empty:
                continue
            best, worst = sub.head(n_examples), sub.tail(n_examples).iloc[::-1]
            if lib is False:
                best, worst = worst, best
            parts.append(f'<div class="row"><div><p><b>{html.escape(g)}</b>: {low_name}</p>'
                         f"{_thumbs(best, m, thumbnail)}</div>"
                         f'<div><p><b>{html.escape(g)}</b>: {high_name}</p>{_thumbs(worst, m, thumbnail)}</div></div>')
    if wsp_params is not None:
        say(f"report: {WEIGHT_MAP_METRIC} weight maps")
        parts.append(f'<h2 id="weight-maps">Where {WEIGHT_MAP_METRIC} looks: pooling weight maps</h2>')
        parts.append(_weight_map_section(scores, result, wsp_params, thumbnail, figures))
    if result.notes:
        parts.append('<h2 id="notes">Notes on the data</h2><ul>'
                     + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
    if failed:
        errs = scores.loc[scores.error.notna(), ["item_id", "error"]].head(50).copy()
        errs["item_id"] = errs.item_id.map(lambda s: Path(str(s)).name)
        parts.append(f'<h2 id="failed">Items that could not be scored ({failed})</h2>' + _html_table(errs))
    say("report: writing")
    doc = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = out_dir / name
    with writing(path):
        path.write_text(doc, encoding="utf-8")
    return path


def _caveat(result: MetricComparison) -> str:
    if result.unit == "frame":
        return ("Unit of analysis: the frame. Every frame counted as one observation, also frames of one clip or "
                "patient, which are not independent: P values and CIs are too small when groups hold many frames "
                "per clip or patient. Rerun with the file or patient unit for inference.")
    total_u = int(result.counts.n_units.sum()) if len(result.counts) else 0
    total_f = int(result.counts.n_frames.sum()) if len(result.counts) else 0
    return (f"Unit of analysis: the {result.unit} ({total_u} {result.unit}s, {total_f} frames). Each {result.unit}'s "
            f"frames were averaged and every test, CI and effect size used one value per {result.unit}, so frames "
            f"of one clip or {result.unit} do not count as independent observations; n is given as {result.unit}s "
            "(frames). Frames remain in the mixed model, which models their correlation within a unit.")


__all__ = ["FIGURE_DPI", "MIN_VIOLIN", "SENSITIVITY_COLUMNS", "compact_table", "forest_table", "methods_paragraphs",
           "plot_distribution", "plot_forest", "plot_sensitivity", "sensitivity_table", "unit_values",
           "write_study_report"]
