"""The exception of medgap.explain."""

from __future__ import annotations


class ExplainError(ValueError):
    """A model, layer, method or image that cannot be explained; the message names it and the fix."""
