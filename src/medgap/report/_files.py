"""Output file names that stay where they belong, and OSErrors that name the file (standard library only, so
the command line can import them without loading the statistics or plotting stack)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def safe_file_stem(name: str, taken: set[str]) -> str:
    """A file-name stem for ``name`` (a column or group name): only ``A-Za-z0-9._-`` (others become ``_``), no
    leading dot (so never ``.`` / ``..`` or hidden), at most 100 characters, and not already in ``taken``
    (compared case-insensitively, as on macOS and Windows; ``-2``, ``-3``, ... are appended). The stem is
    added to ``taken``."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).lstrip(".")[:100] or "column"
    lower = {t.lower() for t in taken}
    candidate, i = stem, 1
    while candidate.lower() in lower:
        i += 1
        candidate = f"{stem}-{i}"
    taken.add(candidate)
    return candidate


def inside(folder: Path, name: str) -> Path:
    """``folder / name``, refused (ValueError) unless ``name`` is a plain file name, so the path is a direct
    child of ``folder`` (checked on the resolved folder; the file itself may be a link the user placed)."""
    path = folder / name
    if path.name != name or name in (".", "..") or path.parent.resolve() != folder.resolve():
        raise ValueError(f"refusing to write {path}: it is outside {folder}")
    return path


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Name ``path`` in an OSError that lacks a file name (a full disk fails on write or close, not open)."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
