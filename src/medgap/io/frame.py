"""Frames (2-D images with metadata), item ids, and the gray rule every quality metric sees."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

# MATLAB rgb2gray's coefficients (ITU-R BT.601 luma, as MATLAB rounds them).
LUMA = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


@dataclass(frozen=True)
class Frame:
    """One 2-D image of a file.

    ``pixels`` is HxW (gray) or HxWx3 (RGB order) with the file's native values after decoding and photometric
    conversion (DICOM: after the modality rescale). ``frame`` is the 0-based frame/slice index in multi-frame
    files and ``None`` for single images. ``meta`` holds at least ``format``, ``bits``, ``window``
    ((center, width) or None), ``range`` ((lo, hi) or None) and ``monochrome1``; never patient identifiers.
    """

    pixels: np.ndarray
    frame: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def item_id(path: str | Path, frame: int | None) -> str:
    """``path`` for single images, ``path#frame=N`` for a frame of a multi-frame file."""
    return str(path) if frame is None else f"{path}#frame={frame}"


_ITEM = re.compile(r"^(?P<path>.*)#frame=(?P<frame>\d+)$")


def parse_item_id(s: str) -> tuple[str, int | None]:
    m = _ITEM.match(s)
    return (m["path"], int(m["frame"])) if m else (s, None)


def _window(x: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM VOI window to [0, 255] (PS3.3 C.11.2.1.2.1 LINEAR, C.11.2.1.3.1 LINEAR_EXACT, SIGMOID)."""
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        return 255.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        y = (x - center) / width + 0.5
    else:
        if width < 1:
            width = 1.0
        y = ((x - (center - 0.5)) / (width - 1.0)) + 0.5
    return np.clip(y, 0.0, 1.0) * 255.0


@njit(cache=True, nogil=True, error_model="numpy")
def _rgb2gray_uint8(rgb):
    # One fused float64 pass (numpy's version allocates three float copies of the image). y >= 0, so
    # truncating y + 0.5 is MATLAB's round-half-away-from-zero.
    h, w, _ = rgb.shape
    flat = rgb.reshape(h * w, 3)
    out = np.empty(h * w)
    for k in range(h * w):
        y = 0.298936021293775 * flat[k, 0] + 0.587043074451121 * flat[k, 1] + 0.114020904255103 * flat[k, 2]
        out[k] = np.float64(np.int64(y + 0.5))
    return out.reshape(h, w)


def as_frame(
    image: Frame | np.ndarray,
    *,
    window: tuple[float, float] | None = None,
    data_range: float | tuple[float, float] | None = None,
) -> Frame:
    """``image`` as a :class:`Frame`: a Frame as it is, a plain array (HxW gray, HxWx1, HxWx3 RGB or HxWx4 RGBA,
    channels last) wrapped in one. ``window`` ((center, width), as DICOM's VOI) and ``data_range`` (``hi`` or
    ``(lo, hi)``: the values that map to 0 and 255) override what the frame carries; they are how a plain array
    says what a file's metadata would (see :func:`to_gray255`)."""
    if isinstance(image, Frame):
        frame = image
    else:
        frame = Frame(_image_array(image))
    if window is None and data_range is None:
        return frame
    meta = dict(frame.meta)
    if window is not None:
        center, width = map(float, window)
        meta["window"] = (center, width)
    if data_range is not None:
        meta["range"] = range_bounds(data_range)
    return Frame(frame.pixels, frame.frame, meta)


def range_bounds(data_range: float | tuple[float, float]) -> tuple[float, float]:
    """``hi`` -> ``(0, hi)``; ``(lo, hi)`` as floats; ValueError unless hi > lo."""
    try:
        lo, hi = (0.0, float(data_range)) if np.ndim(data_range) == 0 else map(float, data_range)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        lo, hi = 0.0, 0.0
    if not hi > lo:
        raise ValueError(f"data_range {data_range!r}: give hi or (lo, hi) with hi > lo, e.g. data_range=255")
    return lo, hi


def _image_array(image: object) -> np.ndarray:
    """A plain array checked to be one image, channels last (HxW, HxWx3, HxWx4; HxWx1 becomes HxW)."""
    x = np.asarray(image)
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        fix = " (a mask? pass x.astype(np.uint8) * 255)" if x.dtype == bool else ""
        raise ValueError(f"an image array must hold integers or floats, not {x.dtype}{fix}")
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (3, 4)):
        return x
    if x.ndim == 3 and x.shape[0] in (1, 3, 4):
        raise ValueError(f"an array of shape {x.shape} looks channel-first (C, H, W); medgap reads channels last: "
                         "pass np.moveaxis(x, 0, -1)")
    if x.ndim == 3:
        raise ValueError(f"an array of shape {x.shape} is not one image: channels last must be 1 (gray), 3 (RGB) or "
                         f"4 (RGBA), not {x.shape[-1]}; for several gray images, convert each x[i]")
    raise ValueError(f"an array of shape {x.shape} is not one image: give HxW (gray) or HxWx3 (RGB)")


def to_gray255(
    frame: Frame | np.ndarray,
    *,
    window: tuple[float, float] | None = None,
    data_range: float | tuple[float, float] | None = None,
) -> np.ndarray:
    """The image a quality metric sees: gray float64 on the 0-255 scale (C-contiguous, HxW).

    ``frame`` is a :class:`Frame` (from :func:`medgap.io.read_frames`) or a plain array (HxW, HxWx3 or HxWx4,
    channels last), which follows the same rule by its dtype: uint8 as it is, anything else min-max scaled
    unless ``window`` (center, width) or ``data_range`` (``hi`` or ``(lo, hi)``, mapped to 0-255) says
    otherwise: ``to_gray255(ct_hu, window=(40, 400))``, ``to_gray255(photo01, data_range=1)``.

    The rule:

    - 8-bit gray: the values as they are.
    - 8-bit colour: BT.601 luma exactly as MATLAB ``rgb2gray`` computes it on uint8 input,
      ``round(0.298936021293775 R + 0.587043074451121 G + 0.114020904255103 B)``; this is what the BRISQUE,
      NIQE and PIQE releases see, so scores stay comparable with published MATLAB values.
    - More than 8 bits (16-bit PNG/TIFF, DICOM after rescale, NIfTI, float): colour goes to luma first (same
      coefficients, unrounded). Then, when the file carries a VOI window (DICOM Window Center/Width), the
      window maps to 0-255 (values outside clip): it is the display a radiologist reads. Otherwise the values
      are min-max scaled to 0-255 over ``meta['range']`` (the whole volume for NIfTI, so slices share a
      scale) or over the frame. Min-max keeps the full dynamic range without 8-bit quantisation; a constant
      frame maps to 0. No rounding is applied to >8-bit data.
    - MONOCHROME1 (DICOM, bright = low values) is inverted after scaling: ``255 - v``.
    - NaN/Inf in float data are kept, so a metric can report them rather than scoring a silent number.
    """
    frame = as_frame(frame, window=window, data_range=data_range)
    px = frame.pixels
    meta = frame.meta
    if px.dtype == np.uint8 and not meta.get("window") and not meta.get("monochrome1"):
        if px.ndim == 2:
            return np.ascontiguousarray(px, dtype=np.float64)
        return _rgb2gray_uint8(np.ascontiguousarray(px[..., :3]))
    x = px.astype(np.float64) if px.ndim == 2 else px[..., :3].astype(np.float64) @ LUMA
    window = meta.get("window")
    if window:
        g = _window(x, float(window[0]), float(window[1]), meta.get("voi_function", "LINEAR"))
    else:
        if meta.get("range"):
            lo, hi = map(float, meta["range"])
        elif px.dtype == np.uint8:
            lo, hi = 0.0, 255.0
        else:
            finite = x[np.isfinite(x)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        g = (x - lo) * (255.0 / (hi - lo)) if hi > lo else np.where(np.isfinite(x), 0.0, x)
    if meta.get("monochrome1"):
        g = 255.0 - g
    return np.ascontiguousarray(g, dtype=np.float64)


def to_rgb255(
    frame: Frame | np.ndarray,
    *,
    window: tuple[float, float] | None = None,
    data_range: float | tuple[float, float] | None = None,
) -> np.ndarray:
    """Colour float64 HxWx3 on the 0-255 scale for metrics that need colour: 8-bit RGB as is; anything else is
    the gray image of :func:`to_gray255` in all three channels (so colour measures read 0 for gray data).
    A plain array and the keywords work as in :func:`to_gray255`."""
    frame = as_frame(frame, window=window, data_range=data_range)
    px = frame.pixels
    if px.ndim == 3 and px.dtype == np.uint8:
        return px[..., :3].astype(np.float64)
    g = to_gray255(frame)
    return np.repeat(g[..., None], 3, axis=2)
