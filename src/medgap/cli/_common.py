"""Helpers shared by the command modules: the console, exit codes, argument parsing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)

EXIT_OK = 0
EXIT_FAILURES = 1  # ran, but some inputs failed (reported, the rest written)
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Bad command-line input; the message says how to fix it."""


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
