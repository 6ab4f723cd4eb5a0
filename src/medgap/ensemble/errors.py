"""The exception of medgap.ensemble."""

from __future__ import annotations


class EnsembleError(ValueError):
    """Predictions that cannot be stacked (shapes that disagree, no validation predictions, runs whose splits
    differ); the message names the input and the fix."""
