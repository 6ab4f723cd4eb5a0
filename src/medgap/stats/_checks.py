"""Argument checks shared by every function of ``medgap.stats`` (one place for each)."""

from __future__ import annotations

import math
from numbers import Real


def check_confidence(confidence: object) -> None:
    """ValueError unless ``confidence`` is a number strictly between 0 and 1 (a bool, a string or NaN too)."""
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or math.isnan(confidence) \
            or not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
