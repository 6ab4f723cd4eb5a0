"""Figures draw names (groups, classes, columns) as plain text: matplotlib would read ``$...$`` as mathtext
(a group named ``$\\frac{$`` failed to render) and, with ``text.usetex``, pass it to LaTeX."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import matplotlib

F = TypeVar("F", bound=Callable)

PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def plain_text_figures(fn: F) -> F:
    """Run ``fn`` (which creates and saves a figure) with mathtext and LaTeX off for every Text it makes."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(PLAIN_TEXT):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
