"""Sensitivity of a group comparison to display and scale (issue 10, item 3): the same collection scored again
with one display choice changed at a time (the CT window, a common short side, a foreground crop), compared
again, and each group's Cohen's d against the reference collected per choice, so a reader sees how much of a
"gap" is display and framing.

Each choice is scored into its own resumable table (``<folder>/scores_<choice>.parquet``), so an interrupted
``medgap study --sensitivity`` resumes and a rerun only recomputes the statistics."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from medgap.io import Display, Source
from medgap.quality import Metric

DEFAULT_SHORT_SIDE = 384
"""The common short side of the scale choice: about the median short side of the photographs in
../shared/data (368 px), below the CXR (885) and MR/CT (512) ones, so every group is compared shrunk or near
its own size rather than enlarged."""

SENSITIVITY_COLUMNS = ("choice", "changed", "metric", "group", "reference", "n_units", "n_frames", "cohen_d",
                       "d_ci_low", "d_ci_high", "d_ci_method")


def display_choices(base: Display, short_side: int = DEFAULT_SHORT_SIDE) -> list[tuple[str, str, Display]]:
    """(label, what changed, display) for the run as it was and for each choice that differs from it in one
    respect: the other CT windows among file / minmax / lung, the scale (``short_side``, or native when the
    run was resized), and the foreground crop switched."""
    choices = [("as run", "nothing", base)]
    for window in ("file", "minmax", "lung"):
        if window != base.window:
            choices.append((f"window={window}", "window", dataclasses.replace(base, window=window)))
    if base.resize_short:
        choices.append(("native size", "scale", dataclasses.replace(base, resize_short=None)))
    else:
        choices.append((f"short side {short_side} px", "scale", dataclasses.replace(base, resize_short=short_side)))
    choices.append(("foreground crop" if not base.foreground else "whole image", "foreground",
                    dataclasses.replace(base, foreground=not base.foreground)))
    return choices


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower()


def run_sensitivity(sources: Sequence[Source], metrics: Sequence[Metric], folder: str | Path, *,
                    base: Display | None = None, columns: Sequence[str] | None = None,
                    reference: str | None = None, compare_kwargs: dict[str, Any] | None = None,
                    short_side: int = DEFAULT_SHORT_SIDE, score_kwargs: dict[str, Any] | None = None,
                    base_scores: pd.DataFrame | None = None,
                    progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Score ``sources`` with ``metrics`` under each of :func:`display_choices` (``base``: the run's display),
    compare the groups on ``columns`` (default: every metric column) with ``compare_kwargs`` (the unit of
    analysis and the rest, as in the main comparison) against ``reference``, and return one row per choice,
    metric and group (:data:`SENSITIVITY_COLUMNS`; the reference group has no row). Also written to
    ``<folder>/sensitivity.csv``. ``score_kwargs`` go to :func:`~medgap.scoring.score_collection` (workers,
    video_stride, ...). ``base_scores``: the run's own table, used for "as run" instead of scoring again."""
    from medgap.scoring import score_collection
    from medgap.stats import compare_metrics

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = base or Display()
    rows = []
    for label, changed, display in display_choices(base, short_side):
        if changed == "nothing" and base_scores is not None:
            scores = base_scores
        else:
            if progress:
                progress(f"sensitivity: scoring with {label} ({display.summary()})")
            out = folder / f"scores_{_slug(label)}.parquet"
            summary = score_collection(sources, metrics, out, display=None if display.is_default else display,
                                       **(score_kwargs or {}))
            if summary.interrupted:
                raise KeyboardInterrupt
            scores = pd.read_parquet(out)
        result = compare_metrics(scores, list(columns) if columns else None, reference, **(compare_kwargs or {}))
        table = result.vs_reference()
        if table.empty:
            continue
        for r in table.to_dict("records"):  # group_b against group_a, the reference
            rows.append({"choice": label, "changed": changed, "metric": r["metric"], "group": r["group_b"],
                         "reference": result.reference, "n_units": r.get("n_units_b"),
                         "n_frames": r.get("n_frames_b"), "cohen_d": r.get("cohen_d"),
                         "d_ci_low": r.get("d_ci_low"), "d_ci_high": r.get("d_ci_high"),
                         "d_ci_method": r.get("d_ci_method")})
    df = pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))
    df.to_csv(folder / "sensitivity.csv", index=False)
    return df
