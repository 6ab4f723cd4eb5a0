"""Errors of :mod:`medgap.segment`: each message names the input and the fix."""

from __future__ import annotations


class SegmentError(ValueError):
    """A segmentation option, pairs table, mask or run directory that cannot work; the message says why and
    what to do (the CLI prints it and exits 2)."""
