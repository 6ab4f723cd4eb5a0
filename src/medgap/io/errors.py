"""The one error type for input that cannot be read."""

from __future__ import annotations

from pathlib import Path


class ImageReadError(Exception):
    """A file that cannot be turned into images. ``str(e)`` is ``"<path>: <reason>"``; the reason says what is wrong
    and, where there is one, the fix."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable across worker processes with both fields
        return (type(self), (self.path, self.reason))
