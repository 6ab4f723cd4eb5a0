"""Reports: one self-contained HTML file (tables, plots, thumbnails embedded)."""

from medgap.report.html import write_report

__all__ = ["write_report"]
