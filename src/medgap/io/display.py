"""Display and scale rules a study can vary: the CT window, a common image size, and the imaged region.

:class:`Display` bundles them (``Display(window="lung", resize_short=384, foreground=True)``); its
:meth:`Display.prepare` turns a :class:`~medgap.io.Frame` into the gray float64 0-255 image a metric sees, in
place of :func:`~medgap.io.to_gray255` (which is ``Display()``). The order is fixed: window -> gray 0-255 ->
foreground crop -> resize, so that the short side of the *imaged region* is the common size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from medgap._options import did_you_mean, option
from medgap.io.frame import Frame, as_frame, to_gray255, to_rgb255
from medgap.io.resize import resize_short

# CT window presets in Hounsfield units, (center, width): Radiopaedia, "Windowing (CT)",
# https://radiopaedia.org/articles/windowing-ct (lung W 1500 L -600, mediastinum W 350 L 50,
# bone W 1800 L 400, brain W 80 L 40).
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
WINDOW_CHOICES: tuple[str, ...] = ("file", "minmax", *CT_WINDOWS)
"""The named values of ``Display.window``; ``"C,W"`` (two numbers, e.g. ``"40,400"``) is accepted too."""


class DisplayError(ValueError):
    """A display option has a value it does not take; the message names the option and the values it takes."""


def parse_window(window: str) -> str | tuple[float, float]:
    """``"file"``/``"minmax"``/a CT preset name as it is (lower-case); ``"C,W"`` as ``(center, width)`` floats.

    Raises :class:`DisplayError` naming the choices (and a close match) otherwise, or when the width is not
    positive."""
    text = str(window).strip()
    if text.lower() in WINDOW_CHOICES:
        return text.lower()
    parts = text.split(",")
    if len(parts) == 2:
        try:
            center, width = float(parts[0]), float(parts[1])
        except ValueError:
            pass
        else:
            if not (np.isfinite(center) and np.isfinite(width) and width > 0):
                raise DisplayError(f"window {window!r}: the width (second number) must be finite and > 0, "
                                   "e.g. --window 40,400")
            return center, width
    raise DisplayError(f"window {window!r} is not one of {', '.join(WINDOW_CHOICES)} or 'C,W' (center,width in "
                       f"the file's units after the rescale, e.g. 40,400).{did_you_mean(text, WINDOW_CHOICES)}")


def is_hounsfield(frame: Frame) -> bool:
    """True for a grayscale CT DICOM frame whose values went through the modality rescale (Hounsfield units)."""
    meta = frame.meta
    return (meta.get("format") == "dicom" and str(meta.get("modality", "")).upper() == "CT"
            and frame.pixels.ndim == 2 and bool(meta.get("rescaled")))


def _windowed(frame: Frame, window: str | tuple[float, float]) -> tuple[Frame, str]:
    """The frame with the window the option asks for, and a note ('' when nothing was changed or skipped)."""
    meta = frame.meta
    px = frame.pixels
    if window == "file":
        return frame, ""
    if window == "minmax":
        if not meta.get("window"):
            return frame, ""
        m = {k: v for k, v in meta.items() if k not in ("window", "voi_function")}
        m["window"] = None
        return Frame(px, frame.frame, m), "minmax: file window not used"
    name = window if isinstance(window, str) else None
    center, width = CT_WINDOWS[name] if name else window
    label = f"{name} (C {center:g}, W {width:g})" if name else f"C {center:g}, W {width:g}"
    if name and not is_hounsfield(frame):
        what = f"{meta.get('format', 'array')}" + (f" {meta['modality']}" if meta.get("modality") else "")
        return frame, f"window {label} not applied: not a CT DICOM in Hounsfield units ({what}); file rule used"
    if not name and (px.ndim != 2 or px.dtype == np.uint8):
        kind = "colour" if px.ndim != 2 else "8-bit"
        return frame, f"window {label} not applied: {kind} image; file rule used"
    m = dict(meta)
    m["window"] = (float(center), float(width))
    m["voi_function"] = "LINEAR"
    return Frame(px, frame.frame, m), ""


@dataclass
class Display:
    """How a frame becomes the image a metric sees: window, foreground crop, common size.

    ``Display()`` is :func:`~medgap.io.to_gray255` exactly. Named CT windows apply to CT DICOM frames in
    Hounsfield units only; on anything else (8-bit photographs, JPEG/PNG CT, MR, CXR) the file's own rule is
    used and :meth:`note` says so. ``"C,W"`` numbers apply to any grayscale frame that is not 8-bit (DICOM after
    the rescale, NIfTI, 16-bit PNG/TIFF), in its own units; 8-bit and colour images keep the file rule (noted).
    ``minmax`` drops the file's VOI window (min-max over the file's range; 8-bit images stay as they are).

    The fields are command options (``medgap._options.option``): a command's config can inherit them
    (``@dataclass class StudyConfig(Display): ...``) and hand :meth:`from_config` to the scoring engine.
    """

    window: str = option("file", "Display window for DICOM: file (the file's first VOI window), minmax, lung, "
                         "mediastinum, bone, brain (CT presets in HU), or C,W numbers.",
                         metavar="file|minmax|lung|mediastinum|bone|brain|C,W")
    resize_short: int | None = option(None, "Resize every image so its short side is N pixels (MATLAB imresize, "
                                      "bicubic, antialiased) before scoring; default: native size.", metavar="N")
    foreground: bool = option(False, "Crop every image to the bounding box of its non-background content "
                              "(near-constant border intensity) before scoring.")

    def __post_init__(self) -> None:
        parse_window(self.window)
        n = self.resize_short
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 8):
            raise DisplayError(f"resize_short {n!r}: give the short side in pixels, an integer >= 8 (e.g. 384), "
                               "or None for the native size")

    @classmethod
    def from_config(cls, config: object) -> Display:
        """The display of any object with ``window``, ``resize_short`` and ``foreground`` attributes (a command's
        config); attributes it lacks keep their defaults."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: getattr(config, n) for n in names if hasattr(config, n)})

    @property
    def is_default(self) -> bool:
        """True when this is :func:`~medgap.io.to_gray255` unchanged."""
        return self == Display()

    def summary(self) -> str:
        """One line for a methods text: ``window lung (C -600, W 1500); short side 384 px; foreground crop``."""
        w = parse_window(self.window)
        parts = [f"window {w}" + (f" (C {CT_WINDOWS[w][0]:g}, W {CT_WINDOWS[w][1]:g})" if w in CT_WINDOWS else "")
                 if isinstance(w, str) else f"window C {w[0]:g}, W {w[1]:g}"]
        parts.append(f"short side {self.resize_short} px" if self.resize_short else "native size")
        parts.append("foreground crop" if self.foreground else "whole image")
        return "; ".join(parts)

    def note(self, frame: Frame | np.ndarray) -> str:
        """What this display could not apply to ``frame`` ('' when everything applied)."""
        return _windowed(as_frame(frame), parse_window(self.window))[1]

    def prepare(self, frame: Frame | np.ndarray) -> np.ndarray:
        """Gray float64 HxW on the 0-255 scale (C-contiguous), the input of gray metrics."""
        return self._prepare(frame, rgb=False)

    def prepare_rgb(self, frame: Frame | np.ndarray) -> np.ndarray:
        """Colour float64 HxWx3 on the 0-255 scale (:func:`~medgap.io.to_rgb255` with this display), cropped with
        the box of the gray image and resized alike."""
        return self._prepare(frame, rgb=True)

    def _prepare(self, frame: Frame | np.ndarray, rgb: bool) -> np.ndarray:
        shown, _ = _windowed(as_frame(frame), parse_window(self.window))
        gray = to_gray255(shown)
        out = to_rgb255(shown) if rgb else gray
        if self.foreground:
            _, (r0, r1, c0, c1) = foreground_crop(gray)
            out = out[r0:r1, c0:c1]
        if self.resize_short and min(out.shape[:2]) != self.resize_short:
            out = np.clip(resize_short(out, int(self.resize_short)), 0.0, 255.0)
        return np.ascontiguousarray(out, dtype=np.float64)

    def replace(self, **changes) -> Display:
        return dataclasses.replace(self, **changes)


def _border(gray: np.ndarray, width: int) -> np.ndarray:
    w = max(1, min(width, min(gray.shape) // 2))
    return np.concatenate([gray[:w].ravel(), gray[-w:].ravel(), gray[w:-w, :w].ravel(), gray[w:-w, -w:].ravel()])


def foreground_mask(gray: np.ndarray, *, tolerance: float = 4.0, border: int = 2, opening: int = 5,
                    min_part: float = 0.05, smooth: int = 5) -> np.ndarray:
    """Boolean HxW mask of the imaged region of a gray 0-255 image (True = foreground).

    Background is the near-constant surround: pixels (of the image after a ``smooth`` x ``smooth`` median, 3 or
    5) within ``tolerance`` gray levels of the most common value of the outer ``border`` pixels (the border mode,
    rounded to whole levels) that are connected to the image border (so dark lungs or ventricles inside the body
    stay foreground). The rest is opened with an ``opening`` x ``opening`` square (JPEG ringing, specks and thin
    lines such as a CT table go), parts smaller than ``min_part`` of the largest are dropped (burned-in text,
    markers), and the mask is the convex hull of what is left: the imaged region (a body section, a film, an
    ultrasound fan) is convex, and the hull takes back dark content that touches the surround (ultrasound
    shadows). A border without a dominant value (a photograph filling its frame: the mode holds under 10% of
    the border) gives an all-True mask.
    """
    g = np.asarray(gray, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"foreground_mask takes a gray HxW image (medgap.to_gray255), got shape {g.shape}")
    from scipy import ndimage

    # decide on a lightly smoothed copy: CT air in a wide window, x-ray film and ultrasound noise vary by
    # several levels pixel to pixel around the surround's value
    if smooth > 1:
        # a median keeps the edges where they are (float32 median: OpenCV takes sizes 3 and 5)
        g = cv2.medianBlur(np.nan_to_num(g).astype(np.float32), 5 if smooth >= 5 else 3).astype(np.float64)
    edge = _border(g, border)
    edge = np.round(edge[np.isfinite(edge)])
    if edge.size == 0:
        return np.ones(g.shape, dtype=bool)
    values, counts = np.unique(edge, return_counts=True)
    mode = values[np.argmax(counts)]
    if counts.max() < 0.1 * edge.size:
        return np.ones(g.shape, dtype=bool)
    near = np.abs(g - mode) <= tolerance
    labels, _ = ndimage.label(near)
    touching = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, touching[touching > 0])
    fg = ~background
    if opening > 1:
        fg = ndimage.binary_opening(fg, structure=np.ones((opening, opening), dtype=bool))
    labels, n = ndimage.label(fg)
    if n == 0:
        return fg
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= min_part * sizes.max()) + 1
    from skimage.morphology import convex_hull_image

    # the imaged region is convex (a body section, a film, an ultrasound fan): its hull takes back dark
    # content that touches the surround (ultrasound shadows, air in the sinuses) without the small parts
    # (burned-in text, markers) that min_part leaves out
    return convex_hull_image(np.isin(labels, keep))


def foreground_crop(gray: np.ndarray, **mask_options) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``(crop, (row0, row1, col0, col1))``: ``gray[row0:row1, col0:col1]``, the bounding box of
    :func:`foreground_mask` (``mask_options`` go to it). An image without background, or whose foreground is
    empty (a constant image), comes back whole."""
    g = np.asarray(gray)
    mask = foreground_mask(g, **mask_options)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        box = (0, g.shape[0], 0, g.shape[1])
    else:
        box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    return g[box[0]:box[1], box[2]:box[3]], box

