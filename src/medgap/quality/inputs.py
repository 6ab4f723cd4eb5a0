"""What a metric accepts from a user: a path, a :class:`~medgap.io.Frame`, an array or a torch tensor, checked
and converted to the image its function takes (gray HxW or colour HxWx3, float64 on the 0-255 scale).

The checks refuse what would otherwise be scored silently as something else (a float image in [0, 1] read as
an almost black 0-255 image scored -15.5 instead of 104.7 with BRISQUE): each error names the fix. Batches
(NumPy NxHxW[xC], torch NxCxHxW) are split into images here; the metric scores them one by one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from medgap.io.frame import Frame, range_bounds, to_gray255, to_rgb255

_TOL = 1e-6  # to_gray255's min-max scaling can end a hair above 255 (255.00000000000003)

DataRange = float | tuple[float, float] | None


class MetricInputError(ValueError):
    """An input a metric cannot score as it is (wrong scale, raw 16-bit values, wrong channels, layout); the
    message says how to convert it."""


def is_torch_tensor(x: object) -> bool:
    """True for a ``torch.Tensor`` (checked without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach") and hasattr(x, "ndim")


def _torch_to_numpy(x: Any) -> np.ndarray:
    t = x.detach().cpu()
    if t.is_floating_point():
        t = t.double()  # also bfloat16, which NumPy has no type for
    return t.numpy()


def _is_path(x: object) -> bool:
    return isinstance(x, (str, os.PathLike))


def is_batch(x: object) -> bool:
    """A 4-D array (NxHxWxC) or a 4-D torch tensor (NxCxHxW): one result per image."""
    return (isinstance(x, np.ndarray) or is_torch_tensor(x)) and getattr(x, "ndim", 0) == 4


def split_batch(images: object) -> Iterator[object]:
    """The images of a batch, one by one: a NumPy NxHxW or NxHxWxC array, a torch NxCxHxW tensor, the frames of a
    file (a path), or any iterable of single images (paths, Frames, arrays, tensors)."""
    if is_torch_tensor(images):
        if images.ndim != 4:  # type: ignore[attr-defined]
            raise MetricInputError(f"a torch batch is NxCxHxW; this tensor has shape {tuple(images.shape)}"  # type: ignore[attr-defined]
                                   " (one image CxHxW: call the metric on it, not .batch)")
        yield from images  # type: ignore[misc]  (each CxHxW)
        return
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise MetricInputError(f"a NumPy batch is NxHxW (gray) or NxHxWxC (channels last); this array has "
                                   f"shape {images.shape}")
        yield from images
        return
    if _is_path(images):
        from medgap.io import read_frames

        yield from read_frames(images)  # type: ignore[arg-type]
        return
    if isinstance(images, Frame) or not isinstance(images, Iterable):
        raise MetricInputError(f"{type(images).__name__} is not a batch: give an NxHxW[xC] array, an NxCxHxW "
                               "tensor, a path or a list of images")
    yield from images


def _one_frame(path: str | os.PathLike) -> Frame:
    from medgap.io import read_frames

    frames = read_frames(path)
    try:
        first = next(frames)
    except StopIteration:
        raise MetricInputError(f"{path}: no frame to score") from None
    if next(frames, None) is not None:
        raise MetricInputError(f"{path}: has several frames; score them with metric.batch({str(path)!r}) (one "
                               "result per frame) or medgap.score([path]) (a table)")
    return first


def _layout(x: np.ndarray, from_torch: bool) -> np.ndarray:
    """One image, channels last (HxW, HxWx3, HxWx4); torch's CxHxW is moved to channels last."""
    shape = x.shape
    if from_torch and x.ndim == 3:
        if shape[0] not in (1, 3, 4):
            raise MetricInputError(f"a torch image is CxHxW with C = 1 (gray) or 3 (RGB); this tensor has shape "
                                   f"{shape}: {shape[0]} channels")
        x = np.moveaxis(x, 0, -1)
    elif x.ndim == 3 and shape[-1] not in (1, 3, 4):
        if shape[0] in (1, 3, 4):
            raise MetricInputError(f"an array of shape {shape} looks channel-first (C, H, W); NumPy images are "
                                   "channels last: pass np.moveaxis(x, 0, -1) (or metric.batch(x) if it holds "
                                   f"{shape[0]} gray images)")
        if shape[-1] == 2:
            raise MetricInputError(f"an array of shape {shape} has 2 channels (gray and alpha?): pass x[..., 0]")
        if shape[-1] <= 16:
            raise MetricInputError(f"an array of shape {shape} has {shape[-1]} channels; an image has 1 (gray), "
                                   "3 (RGB) or 4 (RGBA), channels last: pick the channels to score, e.g. x[..., :3]")
        raise MetricInputError(f"an array of shape {shape} is not one image (channels last: 1, 3 or 4): for "
                               f"{shape[0]} gray images NxHxW use metric.batch(x)")
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3):
        raise MetricInputError(f"an array of shape {shape} is not one image: give HxW (gray), HxWx3 (RGB), or a "
                               "batch NxHxW[xC] to metric.batch")
    return x


def check_scale(x: np.ndarray) -> None:
    """Refuse values that are not on the 0-255 scale, naming the conversion (see the module docstring)."""
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        fix = " (a mask? pass x.astype(np.uint8) * 255)" if x.dtype == bool else ""
        raise MetricInputError(f"an image array must hold integers or floats, not {x.dtype}{fix}")
    if x.size == 0 or x.dtype == np.uint8:
        return
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise MetricInputError(
                f"{x.dtype} values from {lo} to {hi} are not 0-255 (a raw 16-bit, CT or DICOM image?): metrics "
                "score the displayed 0-255 image; convert with medgap.to_gray255(x, window=(center, width)) for a "
                "display window, medgap.to_gray255(x) to scale min-max, or pass data_range=(lo, hi)"
            )
        return
    finite = x[np.isfinite(x)]
    if not finite.size:
        return  # NaN/Inf only: the metric reports it
    lo, hi = float(finite.min()), float(finite.max())
    if lo < -_TOL or hi > 255 + _TOL:
        raise MetricInputError(
            f"float values from {lo:g} to {hi:g} are not on the 0-255 scale: convert with "
            "medgap.to_gray255(x, window=(center, width)) or medgap.to_gray255(x) (min-max), or pass "
            "data_range=(lo, hi)"
        )
    if hi <= 1.0 and hi > 0.0:
        raise MetricInputError(
            f"float values from {lo:g} to {hi:g} look like a [0, 1] image, but metrics read 0-255 (BRISQUE would "
            "score it as an almost black image): multiply by 255 or pass data_range=1 (data_range=255 if it "
            "really is a 0-255 image this dark)"
        )


def to_metric_input(image: object, input: str = "gray", *, data_range: DataRange = None) -> np.ndarray:  # noqa: A002
    """One image as a metric's function takes it: gray float64 HxW (``input='gray'``) or colour HxWx3
    (``'rgb'``) on the 0-255 scale.

    ``image``: a path (a file with one frame), a :class:`~medgap.io.Frame` (converted by the gray rule,
    :func:`medgap.io.to_gray255`), a NumPy array (HxW, HxWx3, HxWx4; channels last) or a torch tensor (HxW,
    CxHxW). Arrays must be on the 0-255 scale (uint8, integers 0-255, floats within 0-255 that are not all in
    (0, 1]) unless ``data_range`` (``hi`` or ``(lo, hi)``) says which values map to 0 and 255; anything else
    raises :class:`MetricInputError` naming the conversion. A colour metric needs colour: a gray array is
    refused (a gray Frame or file is repeated in the three channels, as when scoring a collection).
    """
    if _is_path(image):
        image = _one_frame(image)  # type: ignore[arg-type]
    if isinstance(image, Frame):
        convert = to_rgb255 if input == "rgb" else to_gray255
        return convert(image, data_range=data_range)
    from_torch = is_torch_tensor(image)
    if from_torch:
        x = _torch_to_numpy(image)
    elif isinstance(image, np.ndarray):
        x = image
    else:
        raise MetricInputError(f"cannot score a {type(image).__name__}: give a path, a medgap Frame, a NumPy "
                               "array or a torch tensor")
    x = _layout(x, from_torch)
    if data_range is None:
        check_scale(x)
        if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
            x = x.astype(np.uint8)  # 0-255 in a wider type: the same image as uint8 (the 8-bit rule)
    if input == "rgb":
        if x.ndim != 3:
            raise MetricInputError(f"this metric needs a colour image HxWx3; got shape {x.shape} (for gray data "
                                   "colour measures are 0: medgap.to_rgb255(x) repeats it in three channels)")
        if data_range is None:
            return np.ascontiguousarray(x[..., :3], dtype=np.float64)
        return to_rgb255(x, data_range=data_range) if x.dtype == np.uint8 else _scaled(x[..., :3], data_range)
    if data_range is None and x.dtype != np.uint8:
        if x.ndim == 2:  # checked 0-255 floats: as they are (no copy when already float64)
            return np.ascontiguousarray(x, dtype=np.float64)
        data_range = 255.0  # colour: luma, unrounded, no scaling
    return to_gray255(x, data_range=data_range)


def _scaled(x: np.ndarray, data_range: float | tuple[float, float]) -> np.ndarray:
    lo, hi = range_bounds(data_range)
    return np.ascontiguousarray((x.astype(np.float64) - lo) * (255.0 / (hi - lo)))


__all__ = ["MetricInputError", "check_scale", "is_batch", "is_torch_tensor", "split_batch", "to_metric_input"]
