"""Reports: one self-contained HTML file (tables, plots, thumbnails embedded), and the CSV/JSON files of a
group comparison (``medgap.report.comparison``).

``write_study_report`` (``medgap.report.study``; ``write_report`` is its older form) loads on first use (it
imports matplotlib and OpenCV), so writing CSV/JSON does not."""

from __future__ import annotations

from typing import Any

__all__ = ["write_report", "write_study_report", "plot_sensitivity", "plot_forest", "write_comparisons"]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from medgap.report.html import write_report

        return write_report
    if name in ("write_study_report", "plot_sensitivity", "plot_forest"):
        from medgap.report import study

        return getattr(study, name)
    if name == "write_comparisons":
        from medgap.report.comparison import write_comparisons

        return write_comparisons
    raise AttributeError(f"module 'medgap.report' has no attribute {name!r}")
