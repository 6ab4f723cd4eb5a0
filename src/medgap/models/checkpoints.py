"""Loading checkpoint files without running code: ``torch.load(weights_only=True)`` only, every failure a
:class:`CheckpointError` naming the file and what to do.

A checkpoint is a pickle; ``weights_only=False`` would execute any callable a planted or damaged file names.
medgap's own files (Lightning's ``last.ckpt``/``best.ckpt``, state dicts) hold only tensors, containers and
primitives, which the restricted unpickler accepts.
"""

from __future__ import annotations

import errno
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded safely; ``str(e)`` names the file, the cause and the fix."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


def load_checkpoint_file(path: str | Path, fix: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``. A file that needs more than tensors and
    primitives (a pickled object or callable: never executed), a truncated or damaged file, or an unreadable one
    raises :class:`CheckpointError` with ``fix`` (what the user should do, e.g. delete the fold folder)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # the restricted unpickler refused a global: say which, never load it
        found = re.search(r"Unsupported (global: GLOBAL [\w.]+|operand \d+)", str(e))
        if found:
            raise CheckpointError(path, f"holds more than tensors and numbers (unsupported {found.group(1)}); "
                                        f"it was not loaded, "
                                        f"since loading it could run code. {fix}") from None
        raise CheckpointError(path, f"damaged or not a PyTorch checkpoint ({_short(e)}). {fix}") from None
    except (EOFError, zipfile.BadZipFile, RuntimeError, ValueError, UnicodeDecodeError, AttributeError,
            IndexError, KeyError, TypeError) as e:
        # torch reports a truncated zip archive as RuntimeError("PytorchStreamReader failed reading zip archive"),
        # a legacy file cut short as EOFError
        raise CheckpointError(path, f"truncated or damaged, or not a PyTorch checkpoint ({_short(e)}). {fix}") from None
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR):
            raise CheckpointError(path, f"cannot be read ({e.strerror or e}). {fix}") from None
        # a zip archive cut short can fail its seek/read with EINVAL
        raise CheckpointError(path, f"truncated or damaged, or not a PyTorch checkpoint ({_short(e)}). {fix}") from None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0].split(". ")[0][:200] if text else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
