"""The environment a result was made in, recorded once for every run medgap writes (a scoring run's
metadata, a training run's versions.json): Python, platform, package versions, the git commit when medgap
runs from a git checkout, OpenCV, the GPU when torch is already in use, and the hash of each weight file."""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGES = (
    "medgap", "numpy", "scipy", "pandas", "numba", "scikit-image", "scikit-learn", "pydicom", "pylibjpeg",
    "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "python-gdcm", "pillow", "opencv-contrib-python-headless",
    "opencv-python-headless", "opencv-python", "opencv-contrib-python", "av", "nibabel", "torch", "torchvision",
    "timm", "lightning",
)
"""Distributions whose version is recorded when installed (decoders included: they change pixel values)."""

GIT_TIMEOUT_S = 2.0


def environment(packages: Iterable[str] = PACKAGES, *, weights: Mapping[str, str | Path] | None = None) -> dict:
    """A JSON-ready record of where a result was made.

    Keys: ``python``, ``platform``, ``packages`` (distribution -> version, for those of ``packages`` that are
    installed), ``git`` (``{"commit", "dirty"}`` of the checkout medgap runs from, or None when it is an
    installed package or git is not available), ``opencv`` (cv2's build version, None without cv2), ``gpu``
    (None unless torch is already imported: then its CUDA version, whether CUDA is available, the device
    count and, once CUDA is initialised, the device names; torch is never imported for this, and CUDA never
    initialised, so forked workers stay usable) and, when ``weights`` (name -> file) are given, ``weights``
    (name -> ``{"path", "sha256"}``).
    """
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in dict.fromkeys(packages):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    out: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": found,
        "git": git_commit(),
        "opencv": _opencv(),
        "gpu": _gpu(),
    }
    if weights:
        out["weights"] = {name: {"path": str(p), "sha256": file_sha256(p)} for name, p in weights.items()}
    return out


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's content (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def git_commit() -> dict | None:
    """``{"commit": HEAD, "dirty": tracked files changed}`` of the git checkout medgap's own source files are
    in; None for an installed package (site-packages), without git, or when git does not answer in time."""
    src = Path(__file__).resolve().parent
    if any(part in ("site-packages", "dist-packages") for part in src.parts):
        return None

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    # medgap's own files must be tracked there (not a copy dropped into someone else's repository)
    if git("ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _opencv() -> str | None:
    try:
        import cv2
    except ImportError:
        return None
    return str(getattr(cv2, "__version__", None))


def _gpu() -> dict | None:
    torch = sys.modules.get("torch")  # never imported here: scoring without a network must not pay for it
    if torch is None or not hasattr(torch, "cuda"):
        return None
    cuda = torch.cuda
    out = {"torch": getattr(torch, "__version__", None), "cuda": getattr(torch.version, "cuda", None),
           "cuda_available": bool(cuda.is_available()), "device_count": int(cuda.device_count()),
           "devices": None, "cudnn": None}
    if cuda.is_initialized():  # asking for names initialises CUDA, which a forked worker cannot then use
        out["devices"] = [cuda.get_device_name(i) for i in range(out["device_count"])]
        out["cudnn"] = torch.backends.cudnn.version()
    return out
