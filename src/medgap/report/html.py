"""``write_report``: the study report for a dict of per-column comparisons (the form before
``compare_metrics`` returned a ``MetricComparison``). It is ``medgap.report.study.write_study_report`` with the
report at ``out`` and its figures in ``out.parent/figures``; new code calls ``write_study_report``.

Only file names, groups and scores appear; no DICOM header field is read or shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd

from medgap.report.study import write_study_report
from medgap.stats import GroupComparison, MetricComparison


def as_metric_comparison(comparisons: Mapping[str, GroupComparison],
                         lower_is_better: Mapping[str, bool | None] | None = None) -> MetricComparison:
    """A ``MetricComparison`` holding ``comparisons`` (all made on one unit and reference, as ``compare_groups``
    makes them); counts from the first comparison's ``describe``; no Holm families across metrics."""
    if isinstance(comparisons, MetricComparison):
        return comparisons
    comparisons = dict(comparisons)
    if not comparisons:
        return MetricComparison(comparisons={}, reference="", groups=[])
    first = next(iter(comparisons.values()))
    d = first.describe
    counts = pd.DataFrame({"group": d.group.astype(str), "n_units": d.n.astype(int),
                           "n_frames": (d.n_frames if "n_frames" in d else d.n).astype(int)})
    groups = sorted({str(g) for c in comparisons.values() for g in c.describe.group})
    lib = dict(lower_is_better or {})
    return MetricComparison(comparisons=comparisons, reference=first.reference, groups=groups,
                            lower_is_better={c: lib.get(c) for c in comparisons}, unit=first.unit, counts=counts,
                            test=first.test)


def write_report(
    out: str | Path,
    scores: pd.DataFrame,
    comparisons: Mapping[str, GroupComparison],
    *,
    lower_is_better: dict[str, bool | None] | None = None,
    title: str = "medgap study: image quality by group",
    run_info: dict | None = None,
    n_examples: int = 4,
    config: Mapping | None = None,
) -> Path:
    """Write the HTML report for ``scores`` (one row per frame) and the comparisons of each metric column
    (``compare_metrics``' result or a dict column -> ``compare_groups``) at ``out``."""
    out = Path(out)
    result = as_metric_comparison(comparisons, lower_is_better)
    if lower_is_better:
        given = {c: v for c, v in lower_is_better.items() if c in result}
        result = replace(result, lower_is_better={**result.lower_is_better, **given})
    return write_study_report(out.parent, scores, result, config=config, title=title, run_info=run_info,
                              n_examples=n_examples, name=out.name)


__all__ = ["as_metric_comparison", "write_report"]
