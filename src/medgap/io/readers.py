"""Decoders: one reader per format family, all behind :func:`read_frames`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from medgap.io.errors import ImageReadError
from medgap.io.frame import Frame

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
NIFTI_SUFFIXES = frozenset({".nii", ".nii.gz"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mpeg", ".mpg", ".gif", ".webm", ".mkv", ".m4v"})
SUPPORTED_SUFFIXES = IMAGE_SUFFIXES | TIFF_SUFFIXES | DICOM_SUFFIXES | NIFTI_SUFFIXES | VIDEO_SUFFIXES

_DICOM_FIX = "install the pixel-data plugins: pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle"


def suffix_of(path: str | Path) -> str:
    name = str(path).lower()
    return ".nii.gz" if name.endswith(".nii.gz") else os.path.splitext(name)[1]


def is_dicom_file(path: str | Path) -> bool:
    """True when the file carries the DICOM 'DICM' magic at byte 128 (suffix-less DICOM)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def read_frames(path: str | Path, *, video_stride: int = 1, nifti_axis: int = 2) -> Iterator[Frame]:
    """The 2-D images of a file, frame by frame (see :class:`Frame`). Raises :class:`ImageReadError`.

    Formats: PNG, JPEG, BMP (OpenCV), TIFF incl. 16-bit and multi-page (tifffile), DICOM incl. compressed
    and multi-frame (pydicom + pylibjpeg), NIfTI slices along ``nifti_axis`` (nibabel), video and GIF frames
    0, stride, 2*stride, ... (PyAV).
    """
    path = Path(path)
    if video_stride < 1:
        raise ValueError(f"video_stride must be >= 1, got {video_stride}")
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a folder; pass the files in it, or use medgap.io.collect() to scan it")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageReadError(path, f"cannot stat ({e.strerror})") from None
    if size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    suffix = suffix_of(path)
    if suffix in IMAGE_SUFFIXES:
        yield _read_image(path, suffix)
    elif suffix in TIFF_SUFFIXES:
        yield from _read_tiff(path)
    elif suffix in DICOM_SUFFIXES or (suffix not in SUPPORTED_SUFFIXES and is_dicom_file(path)):
        from medgap.io.dicom import read_dicom

        yield from read_dicom(path)
    elif suffix in NIFTI_SUFFIXES:
        yield from _read_nifti(path, nifti_axis)
    elif suffix in VIDEO_SUFFIXES:
        yield from _read_video(path, video_stride)
    else:
        raise ImageReadError(
            path, f"unsupported file type {suffix or '(no suffix)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )


def _read_image(path: Path, suffix: str) -> Frame:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(path, f"cannot read ({e.strerror})") from None
    if suffix in (".jpg", ".jpeg") and data[:2].tobytes() == b"\xff\xd8":
        # libjpeg decodes a truncated JPEG with a warning and grey fill; refuse it instead of scoring the fill.
        # The last scan (after the last SOS marker) must end with EOI; trailing bytes after EOI are fine.
        raw = data.tobytes()
        sos = raw.rfind(b"\xff\xda")
        if sos < 0 or raw.find(b"\xff\xd9", sos) < 0:
            raise ImageReadError(path, "truncated JPEG (no end-of-image marker); re-export or re-download the file")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    fmt = suffix.lstrip(".").replace("jpg", "jpeg")
    if img is None:
        img = _read_with_pillow(path)
    img = _bgr_to_rgb(img)
    return Frame(img, None, {"format": fmt, "bits": img.dtype.itemsize * 8, "window": None, "range": None})


def _read_with_pillow(path: Path) -> np.ndarray:
    # OpenCV refuses some valid files (e.g. palette PNGs with odd chunks); Pillow is the second opinion.
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr", "1"):
                im = im.convert("RGB" if im.mode != "1" and im.mode != "LA" else "L")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(path, f"not a decodable image (corrupt, truncated or another format): {e}") from None
    return arr[..., ::-1].copy() if arr.ndim == 3 else arr  # BGR like OpenCV, converted back by the caller


def _bgr_to_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3:
        if img.shape[2] == 4:
            return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        if img.shape[2] == 3:
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(img[..., 0])
    return img


def _read_tiff(path: Path) -> Iterator[Frame]:
    # OpenCV's libtiff covers the usual codecs (LZW, deflate, JPEG, PackBits) without extra packages;
    # tifffile is the fallback for what it refuses (e.g. float or unusual sample layouts).
    ok, pages = cv2.imdecodemulti(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if ok and pages:
        multi = len(pages) > 1
        for i, page in enumerate(pages):
            arr = _bgr_to_rgb(page)
            meta = {"format": "tiff", "bits": arr.dtype.itemsize * 8, "window": None, "range": None}
            yield Frame(arr, i if multi else None, meta)
        return
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            multi = len(pages) > 1
            for i, page in enumerate(pages):
                arr = page.asarray()
                if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
                    arr = np.moveaxis(arr, 0, -1)  # planar RGB
                if arr.ndim == 3 and arr.shape[2] == 4:
                    arr = arr[..., :3]
                bits = int(getattr(page, "bitspersample", arr.dtype.itemsize * 8))
                meta = {"format": "tiff", "bits": bits, "window": None, "range": None}
                yield Frame(np.ascontiguousarray(arr), i if multi else None, meta)
    except Exception as e:  # tifffile raises many types for damaged files
        raise ImageReadError(path, f"not a readable TIFF ({type(e).__name__}: {e})") from None


def _read_nifti(path: Path, axis: int) -> Iterator[Frame]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel raises ImageFileError, EOFError, zlib errors...
        raise ImageReadError(path, f"not a readable NIfTI file ({type(e).__name__}: {e})") from None
    meta: dict = {"format": "nifti", "bits": data.dtype.itemsize * 8, "window": None}
    if data.ndim == 4:
        data = data[..., 0]
        meta["note"] = "4-D volume: first volume only"
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise ImageReadError(path, f"expected a 2-D, 3-D or 4-D volume, got shape {data.shape}")
    if not -3 <= axis <= 2:
        raise ValueError(f"nifti_axis must be 0, 1 or 2, got {axis}")
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
    meta["range"] = (float(finite.min()), float(finite.max())) if finite.size else None
    meta["axis"] = axis % 3
    n = data.shape[axis]
    for k in range(n):
        # Show slices as radiology viewers do: first voxel axis left-right, second bottom-to-top.
        sl = np.flipud(np.take(data, k, axis=axis).T)
        yield Frame(np.ascontiguousarray(sl), k if n > 1 else None, dict(meta))


def _read_video(path: Path, stride: int) -> Iterator[Frame]:
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # av.error.InvalidDataError and friends
        raise ImageReadError(path, f"not a decodable video ({type(e).__name__}: {e})") from None
    with container:
        if not container.streams.video:
            raise ImageReadError(path, "no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fmt = "gif" if suffix_of(path) == ".gif" else "video"
        fps = float(stream.average_rate) if stream.average_rate else None
        meta = {"format": fmt, "bits": 8, "window": None, "range": None, "fps": fps, "codec": stream.codec_context.name}
        n = 0
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i % stride == 0:
                    n += 1
                    yield Frame(frame.to_ndarray(format="rgb24"), i, dict(meta))
        except ImageReadError:
            raise
        except Exception as e:
            if n == 0:
                raise ImageReadError(path, f"no decodable video frames ({type(e).__name__}: {e})") from None
            raise ImageReadError(path, f"video stream damaged after {n} frames ({type(e).__name__}: {e})") from None
        if n == 0:
            raise ImageReadError(path, "no video frames could be decoded")
