"""The exception of ``medgap.stats`` for a table or an option that cannot be compared (one class, imported by
every module that raises it, so ``medgap.cli`` maps it to a usage error in one place)."""

from __future__ import annotations


class ComparisonError(ValueError):
    """A scores table or an option that cannot be compared: a missing column, an unknown reference group, an
    unknown unit of analysis, a patient in two groups when that is refused."""
