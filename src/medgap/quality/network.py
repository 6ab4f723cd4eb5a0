"""Metrics that are networks: loaded once per process and device, run on batches of frames.

A network metric registers like any metric (:func:`~medgap.quality.registry.register_metric` with
``network=True``); its factory returns a :class:`NetworkMetricFn`, a small picklable object that knows how to
build its model and how to score a batch:

- ``load(device) -> model``: build the model (read the weights), move it to ``device`` (a ``torch.device``) and
  put it in eval mode. Called once per process and device (:func:`loaded_model` caches it; pickling the
  function never carries the model);
- ``predict(model, images, device) -> list[{column: value}]``: one dict per frame of ``images``, a list of
  converted frames (HxW for ``input='gray'``, HxWx3 for ``'rgb'``; float64 on the 0-255 scale). With
  ``same_size = True`` (the default) every call gets frames of one shape (the scoring engine groups them, so
  :func:`stack` can build one NCHW tensor); a metric that resizes or pads frames itself sets ``same_size =
  False`` and gets any mix. It runs under ``torch.inference_mode()``. A frame it cannot score raises (a
  ``ValueError`` with the reason): the batch is then rerun frame by frame, so only that frame fails.

:meth:`medgap.quality.Metric.batch` and the scoring engine (:func:`medgap.scoring.score_collection`,
:func:`medgap.score`) call :func:`run_network` with ``device`` and ``batch_size``; ``metric(image)`` is a batch
of one on ``device="auto"`` (CUDA when there is one).
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

DEFAULT_BATCH_SIZE = 32
"""Frames per forward pass when neither the caller nor the metric (``NetworkMetricFn.batch_size``) says."""

_CACHE_SIZE = 4  # models kept per process (least recently used goes first): a notebook may switch metrics
_cache: OrderedDict[tuple, Any] = OrderedDict()
_cache_lock = threading.Lock()


class DeviceError(ValueError):
    """A device that cannot be used here (CUDA asked for without CUDA, an unknown device name); the message
    names the fix."""


class NetworkMetricFn:
    """Base class of a network metric's function (see the module docstring for the protocol).

    Subclasses keep only light, picklable state (parameters, a weight file's path and hash): the engine pickles
    metrics, and the model itself is built by :meth:`load` in the process that runs it."""

    same_size: ClassVar[bool] = True
    """``True``: each :meth:`predict` call gets frames of one shape; ``False``: frames of any sizes."""
    batch_size: ClassVar[int] = DEFAULT_BATCH_SIZE
    """Frames per forward pass when the caller gives no ``batch_size`` (the metric's own default)."""

    def load(self, device: Any) -> Any:  # pragma: no cover - the protocol
        raise NotImplementedError

    def predict(self, model: Any, images: Sequence[np.ndarray], device: Any) -> list[Mapping[str, float]]:
        raise NotImplementedError  # pragma: no cover - the protocol

    def cache_key(self) -> str:
        """What identifies the loaded model in the per-process cache: by default the function's pickled state
        (its parameters and any weight file hash), so equal metrics share one loaded model."""
        blob = pickle.dumps((type(self).__module__, type(self).__qualname__, self.__dict__), protocol=4)
        return hashlib.sha1(blob).hexdigest()

    def __call__(self, image: np.ndarray) -> dict[str, float]:
        """One converted frame, on ``device="auto"``: what ``Metric.compute`` calls."""
        out = run_network(self, [image], device="auto", batch_size=1)[0]
        if isinstance(out, BaseException):
            raise out
        return out


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("network metrics run on PyTorch: pip install 'medgap[train]' (or pip install torch)") from None
    return torch


def resolve_device(device: str | Any = "auto") -> Any:
    """``"auto"`` (CUDA when torch sees a GPU, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
    ``torch.device`` -> ``torch.device``; CUDA asked for where there is none raises :class:`DeviceError`."""
    torch = _torch()
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise DeviceError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {device!r}")
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2]
        if index and not index.isdigit():
            raise DeviceError(f"device {device!r}: the GPU index must be a number, e.g. 'cuda:0'")
        if not torch.cuda.is_available():
            why = ("this PyTorch is built without CUDA" if torch.version.cuda is None
                   else "PyTorch sees no GPU (driver, CUDA_VISIBLE_DEVICES)")
            raise DeviceError(f"device {device!r} was asked for, but {why}: use device='cpu', or device='auto' "
                              "(--device auto) to take CUDA only when it is there")
        if index and int(index) >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}; use one of those, or 'auto'")
        return torch.device(name)
    raise DeviceError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def check_device(device: str | Any) -> None:
    """Refuse a malformed device name (a run without network metrics still says so), without importing torch;
    whether CUDA is there is checked by :func:`resolve_device` when a network needs it."""
    if type(device).__module__.split(".")[0] == "torch":
        return  # a torch.device
    name = device.strip().lower() if isinstance(device, str) else None
    if name in ("auto", "cpu", "cuda") or (name and name.startswith("cuda:") and name[5:].isdigit()):
        return
    raise DeviceError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def loaded_model(fn: NetworkMetricFn, device: Any) -> Any:
    """``fn``'s model on ``device`` (a ``torch.device``), loaded at the first call in this process and kept
    (the last few models are kept; :func:`release_models` drops them all)."""
    key = (type(fn).__module__, type(fn).__qualname__, fn.cache_key(), str(device))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        model = fn.load(device)
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return model


def release_models() -> None:
    """Drop every loaded network model of this process (frees GPU memory in a notebook)."""
    with _cache_lock:
        _cache.clear()
    torch = _torch()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def stack(images: Sequence[np.ndarray], device: Any, dtype: Any = None) -> Any:
    """Frames of one shape (HxW or HxWxC, 0-255) -> one float32 NCHW tensor on ``device``, still 0-255."""
    torch = _torch()
    arr = np.stack([np.asarray(x) for x in images])
    if arr.ndim == 3:
        arr = arr[:, None]
    else:
        arr = np.moveaxis(arr, -1, 1)
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return t.to(device=device, dtype=dtype or torch.float32)


def _is_fatal(error: BaseException) -> bool:
    # as medgap.scoring.engine.is_fatal (scoring sits above quality): these stop the run, not one frame
    return isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit))


def _chunks(images: Sequence[np.ndarray], same_size: bool, batch_size: int) -> list[list[int]]:
    """Indices of ``images`` in forward passes of at most ``batch_size``, grouped by shape when asked."""
    if same_size:
        groups: dict[tuple, list[int]] = {}
        for i, x in enumerate(images):
            groups.setdefault(np.shape(x), []).append(i)
        ordered = list(groups.values())
    else:
        ordered = [list(range(len(images)))]
    return [g[k:k + batch_size] for g in ordered for k in range(0, len(g), batch_size)]


def run_network(fn: NetworkMetricFn, images: Sequence[np.ndarray], *, device: str | Any = "auto",
                batch_size: int | None = None) -> list[dict[str, float] | BaseException]:
    """``fn`` on every frame, in order: one dict per frame, or the exception that frame raised.

    Frames go through the model in passes of ``batch_size`` (grouped by shape unless ``fn.same_size`` is
    false); a pass that raises is rerun frame by frame, so a frame the metric refuses fails alone. Errors of the
    device or the model's loading are raised (they concern every frame)."""
    torch = _torch()
    size = fn.batch_size if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    model = loaded_model(fn, dev)
    out: list[Any] = [None] * len(images)

    def run(idx: list[int]) -> None:
        with torch.inference_mode():
            got = list(fn.predict(model, [images[i] for i in idx], dev))
        if len(got) != len(idx):
            raise RuntimeError(f"{type(fn).__name__}.predict returned {len(got)} results for {len(idx)} frames")
        for i, values in zip(idx, got):
            out[i] = {k: float(v) for k, v in values.items()}

    for idx in _chunks(images, fn.same_size, size):
        try:
            run(idx)
        except BaseException as e:
            if _is_fatal(e):
                raise
            if len(idx) == 1:
                out[idx[0]] = e
                continue
            for i in idx:  # find the frame(s) the pass failed on; the others are scored as they would be alone
                try:
                    run([i])
                except BaseException as e1:
                    if _is_fatal(e1):
                        raise
                    out[i] = e1
    return out


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DeviceError",
    "NetworkMetricFn",
    "check_device",
    "loaded_model",
    "release_models",
    "resolve_device",
    "run_network",
    "stack",
]
