"""What every decoder call runs behind: the pixel budget checked from headers before decoding, and the guard
that turns any decoder failure into the file's :class:`ImageReadError`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral
from pathlib import Path
from typing import TypeVar

from medgap.io.errors import ImageReadError

#: Pixels per frame above which :func:`medgap.io.read_frames` refuses a file before decoding it (100 MP:
#: a 10000 x 10000 image; the largest radiographs and whole slides scored here are well below; a 20000 x 20000
#: PNG of 2.7 MB would otherwise take 7.8 GB). ``None`` means no limit.
DEFAULT_MAX_PIXELS = 100_000_000

# Exceptions that are the user's or the interpreter's, not the file's: never turned into a read error.
PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)

T = TypeVar("T")


def check_max_pixels(max_pixels: int | None) -> None:
    if max_pixels is None:
        return
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, Integral) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer or None (no limit), got {max_pixels!r}")


def check_pixel_budget(path: str | Path, width: int, height: int, max_pixels: int | None, what: str = "image") -> None:
    """Refuse a ``width`` x ``height`` frame above ``max_pixels`` with a reason that says how to raise the limit."""
    if max_pixels is None:
        return
    n = int(width) * int(height)
    if n > max_pixels:
        raise ImageReadError(
            path,
            f"{what} of {int(width)} x {int(height)} pixels ({n / 1e6:,.1f} MP per frame) exceeds the pixel budget "
            f"of {max_pixels:,} pixels per frame; refused before decoding. If the file is genuine, raise the limit "
            f"with --max-pixels {n} (max_pixels={n} in Python, or None for no limit)",
        )


def describe(exc: BaseException) -> str:
    """``"TypeName: message"`` on one line (decoder messages can span lines)."""
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def guarded(path: str | Path, frames: Iterator[T]) -> Iterator[T]:
    """Yield from ``frames``; any failure while opening or decoding becomes ``ImageReadError(path, reason)``.

    Decoders written in Rust (pylibjpeg-rle) raise pyo3's ``PanicException``, a ``BaseException``: it must not
    kill a reader thread or fail to pickle back from a worker, so everything but KeyboardInterrupt, SystemExit
    and GeneratorExit is caught here. The resulting error is a plain ``ImageReadError`` (picklable)."""
    crashed: ImageReadError | None = None
    try:
        yield from frames
    except ImageReadError:
        raise
    except PASS_THROUGH:
        raise
    except MemoryError:
        raise ImageReadError(
            path, "out of memory while decoding; lower --max-pixels, use fewer --workers, or free memory"
        ) from None
    except RecursionError as e:
        reason = f"decoder failed ({describe(e)}); the file is damaged or nested too deeply"
        raise ImageReadError(path, reason) from None
    except BaseException as e:  # noqa: BLE001 - see the docstring: decoder panics are BaseExceptions
        kind = "decoder crashed" if not isinstance(e, Exception) else "decoder failed"
        crashed = ImageReadError(path, f"{kind} ({describe(e)}); the file is damaged or non-conformant")
    if crashed is not None:
        # raised outside the handler, so it has no __context__: tblib's exception pickling (which importing
        # dask.distributed installs) pickles exception chains, and pyo3's PanicException cannot be pickled
        raise crashed


class _ThreadRecords(logging.Handler):
    """Log records of one thread only (warnings.catch_warnings is process-wide and not thread-safe)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and record.levelno == logging.WARNING:
            self.messages.append(record.getMessage())


@contextmanager
def logged_warnings(logger_name: str) -> Iterator[list[str]]:
    """The WARNING messages ``logger_name`` logs in this thread while the block runs (pydicom logs every warning
    it issues, so this sees them without touching the process-wide warnings filters)."""
    logger = logging.getLogger(logger_name)
    handler = _ThreadRecords()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
