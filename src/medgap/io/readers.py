"""Decoders: one reader per format family, all behind :func:`read_frames`."""

from __future__ import annotations

import errno
import os
import stat
import struct
from numbers import Integral
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from medgap.io.errors import ImageReadError
from medgap.io.frame import LUMA, Frame
from medgap.io.limits import DEFAULT_MAX_PIXELS, check_max_pixels, check_pixel_budget, describe, guarded

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


def read_frames(
    path: str | Path,
    *,
    video_stride: int = 1,
    nifti_axis: int = 2,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Iterator[Frame]:
    """The 2-D images of a file, frame by frame (see :class:`Frame`). Raises :class:`ImageReadError`.

    Formats: PNG, JPEG, BMP (OpenCV; JPEG through a strict libjpeg-turbo decode), TIFF incl. 16-bit and
    multi-page (page by page), DICOM incl. compressed and multi-frame (pydicom + pylibjpeg, frame by frame),
    NIfTI slices along ``nifti_axis`` (nibabel, slice by slice), video and GIF frames 0, stride, 2*stride, ...
    (PyAV).

    ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, ``None`` for no limit) is the most pixels one frame may
    have; larger files are refused before decoding wherever the header tells the size. Every failure while
    opening or decoding, including decoder panics, is raised as :class:`ImageReadError`; invalid arguments
    raise ``ValueError`` at once (before iteration).
    """
    if isinstance(video_stride, bool) or not isinstance(video_stride, Integral) or video_stride < 1:
        raise ValueError(f"video_stride must be an integer >= 1, got {video_stride!r}")
    if isinstance(nifti_axis, bool) or not isinstance(nifti_axis, Integral) or not -3 <= nifti_axis <= 2:
        raise ValueError(f"nifti_axis must be 0, 1 or 2 (or -3..-1), got {nifti_axis!r}")
    check_max_pixels(max_pixels)
    return guarded(path, _frames(Path(path), int(video_stride), int(nifti_axis), max_pixels))


def _stat_reason(path: Path, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop (following the links comes back to one of them); fix or remove the link"
    if e.errno == errno.ENOENT:
        if path.is_symlink():
            return f"broken symbolic link (its target {os.readlink(path)} does not exist)"
        return "no such file"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; make the file readable (chmod) or run as a user who can read it"
    if e.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return f"cannot access ({e.strerror or e})"


def _frames(path: Path, video_stride: int, nifti_axis: int, max_pixels: int | None) -> Iterator[Frame]:
    try:
        st = path.stat()
    except OSError as e:
        raise ImageReadError(path, _stat_reason(path, e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(path, "is a folder; pass the files in it, or use medgap.io.collect() to scan it")
    if st.st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    suffix = suffix_of(path)
    if suffix in IMAGE_SUFFIXES:
        yield _read_image(path, suffix, max_pixels)
    elif suffix in TIFF_SUFFIXES:
        yield from _read_tiff(path, max_pixels)
    elif suffix in DICOM_SUFFIXES or (suffix not in SUPPORTED_SUFFIXES and is_dicom_file(path)):
        from medgap.io.dicom import read_dicom

        yield from read_dicom(path, max_pixels=max_pixels)
    elif suffix in NIFTI_SUFFIXES:
        yield from _read_nifti(path, nifti_axis, max_pixels)
    elif suffix in VIDEO_SUFFIXES:
        yield from _read_video(path, video_stride, max_pixels)
    else:
        raise ImageReadError(
            path, f"unsupported file type {suffix or '(no suffix)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )


def _read_image(path: Path, suffix: str, max_pixels: int | None) -> Frame:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(path, f"cannot read ({e.strerror})") from None
    raw = data.tobytes()
    size = _header_size(path, raw)
    if size is not None:
        check_pixel_budget(path, size[0], size[1], max_pixels)
    img = None
    if raw[:3] == b"\xff\xd8\xff":  # a JPEG whatever its suffix (OpenCV decodes by content)
        # libjpeg decodes a truncated JPEG with a warning and grey fill; refuse it instead of scoring the fill.
        # The last scan (after the last SOS marker) must end with EOI; trailing bytes after EOI are fine.
        sos = raw.rfind(b"\xff\xda")
        if sos < 0 or raw.find(b"\xff\xd9", sos) < 0:
            raise ImageReadError(path, "truncated JPEG (no end-of-image marker); re-export or re-download the file")
        img = _decode_jpeg_strict(path, raw)
    if img is None:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if img is None:
            img = _read_with_pillow(path)
        img = _bgr_to_rgb(img)
    fmt = suffix.lstrip(".").replace("jpg", "jpeg")
    return Frame(img, None, {"format": fmt, "bits": img.dtype.itemsize * 8, "window": None, "range": None})


def _header_size(path: Path, raw: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, BMP or JPEG (or whatever Pillow identifies), without decoding."""
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR" and len(raw) >= 24:
        return struct.unpack(">II", raw[16:24])
    if raw[:2] == b"BM" and len(raw) >= 26:
        (header_len,) = struct.unpack("<I", raw[14:18])
        if header_len == 12:  # OS/2 BITMAPCOREHEADER
            return struct.unpack("<HH", raw[18:22])
        w, h = struct.unpack("<ii", raw[18:26])
        return abs(w), abs(h)  # negative height: top-down rows
    if raw[:3] == b"\xff\xd8\xff":
        import simplejpeg

        try:
            h, w, _, _ = simplejpeg.decode_jpeg_header(raw)
            return w, h
        except ValueError:
            pass  # subsampling libjpeg-turbo's header API does not name: Pillow reads the SOF marker below
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError as e:  # Pillow's own limit (> 179 MP) is reached before ours can be
        raise ImageReadError(path, f"image too large to decode ({e}); refused before decoding") from None
    except Exception:  # noqa: BLE001 - not identified: OpenCV and Pillow's decode give the reason below
        return None


def _decode_jpeg_strict(path: Path, raw: bytes) -> np.ndarray | None:
    """RGB (or gray HxW) pixels of a JPEG, refusing corrupt entropy-coded data.

    libjpeg decodes damaged data with a warning ("Corrupt JPEG data: ...", "Premature end of data segment") and
    garbage pixels; OpenCV only prints it. simplejpeg runs the same libjpeg-turbo with warnings as errors and
    gives pixels bit-identical to OpenCV's (all 1,314 JPEGs of ../shared/data; docs/io.md). ``None`` means
    libjpeg-turbo's API cannot decode this JPEG at all (e.g. 12-bit, CMYK conversion): OpenCV decides then.
    """
    import simplejpeg

    try:
        _, _, colorspace, _ = simplejpeg.decode_jpeg_header(raw)
    except ValueError:
        return None
    if colorspace not in ("Gray", "YCbCr", "RGB"):
        target = "CMYK"  # CMYK/YCCK: validate strictly here, OpenCV's conversion gives the pixels
    else:
        target = "GRAY" if colorspace == "Gray" else "RGB"
    try:
        img = simplejpeg.decode_jpeg(raw, colorspace=target, strict=True)
    except ValueError as e:
        try:
            simplejpeg.decode_jpeg(raw, colorspace=target, strict=False)
        except ValueError:
            return None  # not a libjpeg warning but something it cannot decode: OpenCV / Pillow decide
        msg = " ".join(str(e).split())
        if msg.lower().startswith("corrupt jpeg data"):
            msg = msg[len("corrupt jpeg data") :].lstrip(": ")
        raise ImageReadError(
            path, f"corrupt JPEG data: {msg}; the decoded image would be damaged, "
            "re-export or re-download the file"
        ) from None
    if target == "CMYK":
        return None
    return np.ascontiguousarray(img[..., 0]) if target == "GRAY" else img


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


def _read_tiff(path: Path, max_pixels: int | None) -> Iterator[Frame]:
    """Page by page: tifffile reads the page directory (shapes for the pixel budget), OpenCV's libtiff decodes
    each page (LZW, deflate, JPEG, PackBits without extra packages); tifffile decodes what OpenCV refuses (e.g.
    float or unusual sample layouts). Only one decoded page is held at a time. Pages of more than 8 bits share
    the range of the whole file (``meta['range']``, from a first pass), as DICOM frames and NIfTI slices do."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as e:  # noqa: BLE001 - tifffile raises many types for damaged files
        raise ImageReadError(path, f"not a readable TIFF ({describe(e)})") from None
    with tif:
        try:
            n = len(tif.pages)
        except Exception as e:  # noqa: BLE001 - a damaged page chain
            raise ImageReadError(path, f"not a readable TIFF: damaged page directory ({describe(e)})") from None
        if n == 0:
            raise ImageReadError(path, "TIFF without pages")
        data = np.fromfile(path, dtype=np.uint8)
        multi = n > 1

        def page_pixels(i: int) -> tuple[np.ndarray, int]:
            """Page i decoded (RGB order, alpha dropped) and its bits per sample, after the pixel budget check."""
            try:
                page = tif.pages[i]
                shape = page.shape
                height, width = (page.imagelength, page.imagewidth) if hasattr(page, "imagelength") else shape[:2]
            except Exception as e:  # noqa: BLE001
                raise ImageReadError(path, f"TIFF page {i} is damaged ({describe(e)})") from None
            what = f"TIFF page {i}" if multi else "image"
            check_pixel_budget(path, width, height, max_pixels, what)
            ok, mats = cv2.imdecodemulti(data, cv2.IMREAD_UNCHANGED, None, (i, i + 1))
            if ok and mats:
                arr = _bgr_to_rgb(mats[0])
                del mats
                return arr, arr.dtype.itemsize * 8
            try:
                arr = page.asarray()
            except Exception as e:  # noqa: BLE001 - tifffile raises many types for damaged files
                raise ImageReadError(path, f"not a readable TIFF ({describe(e)})") from None
            if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
                arr = np.moveaxis(arr, 0, -1)  # planar RGB
            if arr.ndim == 3 and arr.shape[2] == 4:
                arr = arr[..., :3]
            return np.ascontiguousarray(arr), int(getattr(page, "bitspersample", arr.dtype.itemsize * 8))

        file_range = None
        if multi and _tiff_has_wide_pages(tif, n):
            # One scale per file, as multi-frame DICOM and NIfTI volumes: the range of every page (first pass,
            # one page in memory at a time).
            lo = hi = None
            for i in range(n):
                arr, _ = page_pixels(i)
                x = arr.astype(np.float64) if arr.ndim == 2 else arr[..., :3].astype(np.float64) @ LUMA
                x = x[np.isfinite(x)]
                if x.size:
                    lo = float(x.min()) if lo is None else min(lo, float(x.min()))
                    hi = float(x.max()) if hi is None else max(hi, float(x.max()))
            file_range = (lo, hi) if lo is not None else None
        for i in range(n):
            arr, bits = page_pixels(i)
            meta = {"format": "tiff", "bits": bits, "window": None, "range": file_range}
            yield Frame(arr, i if multi else None, meta)


def _tiff_has_wide_pages(tif, n: int) -> bool:
    """True when a page holds more than 8 bits per sample (from the page directory, nothing decoded)."""
    try:
        return any(getattr(tif.pages[i], "dtype", None) not in (None, np.uint8) for i in range(n))
    except Exception:  # noqa: BLE001 - a damaged page: the page-by-page read below names it
        return False


def _read_nifti(path: Path, axis: int, max_pixels: int | None) -> Iterator[Frame]:
    """Slice by slice from nibabel's array proxy (memory-mapped for .nii); the min-max range every slice is scaled
    with is the whole (first) volume's, found in a first streaming pass over the slabs along the last voxel axis
    (contiguous on disk)."""
    import nibabel as nib

    # gzip has no random access: keep one decompressing handle open so that the slabs along the last axis are
    # read forward once per pass (reopening would decompress from the start for every slice).
    compressed = str(path).lower().endswith(".gz")
    try:
        img = nib.load(str(path), keep_file_open=True) if compressed else nib.load(str(path))
        proxy = img.dataobj
        shape = tuple(int(n) for n in proxy.shape)
    except Exception as e:  # noqa: BLE001 - nibabel raises ImageFileError, EOFError, zlib errors...
        raise ImageReadError(path, f"not a readable NIfTI file ({describe(e)})") from None
    meta: dict = {"format": "nifti", "window": None}
    tail: tuple = ()
    if len(shape) == 4:
        tail = (0,)
        meta["note"] = "4-D volume: first volume only"
    elif len(shape) not in (2, 3):
        raise ImageReadError(path, f"expected a 2-D, 3-D or 4-D volume, got shape {shape}")
    vol = shape[:3] if len(shape) >= 3 else (*shape, 1)
    axis %= 3
    rest = [vol[d] for d in range(3) if d != axis]
    check_pixel_budget(path, rest[0], rest[1], max_pixels, f"NIfTI slice along axis {axis}")

    whole = None
    if len(shape) == 2 or (compressed and axis != 2):
        # A 2-D image is one slice anyway; slices across the gzip stream's order would each decompress the
        # whole file, so a compressed volume cut along axis 0 or 1 is read whole (as before).
        try:
            whole = np.asanyarray(proxy[(..., *tail)]) if tail else np.asanyarray(proxy)
        except Exception as e:  # noqa: BLE001
            raise ImageReadError(path, f"not a readable NIfTI file ({describe(e)})") from None
        if whole.ndim == 2:
            whole = whole[..., None]

    def slab(d: int, k: int) -> np.ndarray:
        """The 2-D slice k of the (first) volume along voxel axis d, values scaled as nibabel scales them."""
        if whole is not None:
            return np.take(whole, k, axis=d)
        try:
            index = [slice(None)] * 3
            index[d] = k
            return np.asanyarray(proxy[(*index, *tail)])
        except Exception as e:  # noqa: BLE001 - truncated or damaged voxel data
            raise ImageReadError(path, f"not a readable NIfTI file ({describe(e)})") from None

    lo = hi = None
    dtype = None
    for z in range(vol[2]):
        sl = slab(2, z)
        dtype = sl.dtype
        finite = sl[np.isfinite(sl)] if sl.dtype.kind == "f" else sl
        if finite.size:
            a, b = finite.min(), finite.max()
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    meta["bits"] = dtype.itemsize * 8 if dtype is not None else 0
    meta["range"] = (float(lo), float(hi)) if lo is not None else None
    meta["axis"] = axis
    n = vol[axis]
    for k in range(n):
        # Show slices as radiology viewers do: first voxel axis left-right, second bottom-to-top.
        sl = np.flipud(slab(axis, k).T)
        yield Frame(np.ascontiguousarray(sl), k if n > 1 else None, dict(meta))


def _read_video(path: Path, stride: int, max_pixels: int | None) -> Iterator[Frame]:
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # av.error.InvalidDataError and friends
        raise ImageReadError(path, f"not a decodable video ({type(e).__name__}: {e})") from None
    with container:
        if not container.streams.video:
            raise ImageReadError(path, "no video stream in the file")
        stream = container.streams.video[0]
        check_pixel_budget(path, stream.codec_context.width, stream.codec_context.height, max_pixels, "video frame")
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
