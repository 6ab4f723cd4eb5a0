"""The exception of medgap.evaluation."""

from __future__ import annotations


class EvaluationError(ValueError):
    """A run directory, reader file or option that cannot be evaluated; the message names the file (or option)
    and the fix."""
