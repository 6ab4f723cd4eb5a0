"""DICOM through pydicom and its pixel-data plugins (pylibjpeg: JPEG baseline/extended/lossless, JPEG-LS,
JPEG 2000, RLE; deflate is native)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from medgap.io.errors import ImageReadError
from medgap.io.frame import LUMA, Frame

# Element values above this are read when used (native pixel data: frame by frame from the file).
_DEFER = 1 << 20
_FIX = "install the pixel-data plugins: pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle"


def _first(value) -> float:
    # Window Center/Width may be multi-valued (several presets): the first is the default display.
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _int(value, default: int = 1) -> int:
    try:
        return int(value) or default
    except (TypeError, ValueError):
        return default


def _open(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return pydicom.dcmread(path, defer_size=_DEFER)
            except InvalidDicomError:
                return pydicom.dcmread(path, force=True)  # files without the 128-byte preamble
    except Exception as e:
        raise ImageReadError(path, f"not a readable DICOM file ({type(e).__name__}: {e})") from None


def _ensure_transfer_syntax(ds) -> None:
    """Files without a meta header (pre-Part 10) are uncompressed; name their syntax from how they were read."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    implicit, little = ds.original_encoding
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    )


def header_summary(ds) -> dict:
    """Non-identifying header fields worth keeping with the pixels."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return {
        "format": "dicom",
        "modality": str(ds.get("Modality", "")),
        "photometric": str(ds.get("PhotometricInterpretation", "")),
        "transfer_syntax": getattr(ts, "name", str(ts or "")),
        "bits": int(ds.get("BitsStored", ds.get("BitsAllocated", 0)) or 0),
        "frames": _int(ds.get("NumberOfFrames", 1)),
    }


# Groups every image object carries (identification, patient, acquisition, study, image pixel, pixel data): a
# file read without the 'DICM' marker that has none of them is not DICOM, whatever pydicom's force-read made of it.
_DICOM_GROUPS = frozenset({0x0008, 0x0010, 0x0018, 0x0020, 0x0028, 0x7FE0})
# pydicom warnings (logged too) that mean the pixel data is damaged, not merely unusual.
_CORRUPT_WARNINGS = ("no jpeg eoi/eoc marker was found", "returned frame data may be invalid")
_JPEG_STARTS = (b"\xff\xd8", b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP  ")  # JPEG/JPEG-LS SOI, J2K SOC, JP2


def _frame_bytes(ds) -> float:
    """Bytes of one native (uncompressed) frame; fractional for 1-bit data (frames are packed bit-wise)."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples = _int(ds.get("SamplesPerPixel", 1))
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if "FloatPixelData" in ds:
        bits = 32
    elif "DoubleFloatPixelData" in ds:
        bits = 64
    n = rows * cols * samples * bits / 8
    if str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
        n = n * 2 / 3  # PS3.3 C.7.6.3.1.2: two luminance samples share one Cb/Cr pair
    return n


def _pixel_bytes(ds) -> bytes:
    for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if kw in ds:
            return ds[kw].value or b""
    return b""


def _pixel_length(ds) -> int:
    """Bytes of native pixel data, from the element's header when its value is deferred (not read yet)."""
    for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if kw in ds:
            elem = ds.get_item(kw, keep_deferred=True)
            if getattr(elem, "value", None) is None and getattr(elem, "length", None) not in (None, 0xFFFFFFFF):
                return int(elem.length)
            return len(ds[kw].value or b"")
    return 0


def check_frame_count(path: Path, ds, declared: int) -> None:
    """The frames the pixel data holds must be the frames the header declares (``Number of Frames``, 1 when
    absent): pydicom otherwise returns extra frames glued into one image, or fails on a frame late."""
    from pydicom.encaps import parse_basic_offsets, parse_fragments

    source = "(0028,0008) Number of Frames" if "NumberOfFrames" in ds else "no Number of Frames element"
    what = f"the header declares {declared} ({source})"
    ts = ds.file_meta.TransferSyntaxUID
    if not ts.is_encapsulated:
        n_bytes = _pixel_length(ds)
        frame = _frame_bytes(ds)
        if frame <= 0:
            raise ImageReadError(path, "image pixel module invalid: Rows, Columns or Bits Allocated is 0")
        expected = -(-int(frame * declared * 8) // 8)  # ceil for 1-bit data
        whole = int(n_bytes // frame)
        if n_bytes < expected:
            raise ImageReadError(
                path,
                f"pixel data truncated: {n_bytes} bytes, less than expected ({expected} bytes): it holds {whole} "
                f"complete frame(s) of {ds.Rows} x {ds.Columns}, {what}. Re-export or re-download the file",
            )
        if whole > declared:
            raise ImageReadError(
                path,
                f"frame count mismatch: the pixel data holds {whole} frames of {ds.Rows} x {ds.Columns}, {what}; "
                "the header is wrong or the data damaged (set Number of Frames in the file if the extra frames are "
                "real)",
            )
        return
    try:
        from io import BytesIO

        buf = BytesIO(_pixel_bytes(ds))
        offsets = parse_basic_offsets(buf)
        if "ExtendedOffsetTable" in ds and ds.ExtendedOffsetTable:
            found, how = len(ds.ExtendedOffsetTable) // 8, "Extended Offset Table"
        elif offsets:
            found, how = len(offsets), "Basic Offset Table"
        else:
            n_fragments, _ = parse_fragments(buf)
            if n_fragments == declared:
                return
            if ts.name.startswith("RLE"):
                found, how = n_fragments, "RLE fragments, one per frame"
            else:
                from pydicom.encaps import generate_fragments

                buf.seek(0)
                parse_basic_offsets(buf)
                found = sum(1 for f in generate_fragments(buf) if f[:2] == b"\xff\xd8" or f.startswith(_JPEG_STARTS))
                how = "compressed codestreams"
                if found == 0:
                    return  # codestreams this check cannot see; the decoder decides
    except ImageReadError:
        raise
    except Exception as e:  # noqa: BLE001 - damaged item tags in the encapsulated data
        raise ImageReadError(path, f"encapsulated pixel data is damaged ({' '.join(str(e).split())})") from None
    if found != declared:
        more = found > declared
        raise ImageReadError(
            path,
            f"frame count mismatch: the pixel data holds {found} frames ({how}), {what}"
            + ("; the header is wrong or the data damaged (set Number of Frames in the file if the extra frames are "
               "real)" if more else "; the file is truncated or damaged, re-export or re-download it"),
        )


def _palette_lut_is_8bit(ds) -> bool | None:
    """True when the 16-bit palette entries hold 8-bit values (some writers do), from the LUT itself."""
    from pydicom.pixels import apply_color_lut

    try:
        n, first, _ = (int(v) for v in ds.RedPaletteColorLookupTableDescriptor)
        n = n or 65536
        index = np.arange(first, first + n, dtype=np.int64).clip(0, 65535).astype(np.uint16)
        return bool(apply_color_lut(index, ds).max() <= 255)
    except Exception:  # noqa: BLE001 - unusual descriptors: decide from the pixels
        return None


def _group_item(ds, i: int, keyword: str):
    """The first item of functional-group sequence ``keyword`` for frame ``i`` of an enhanced multi-frame file:
    the frame's own (Per-Frame Functional Groups) wins over the shared one (PS3.3 C.7.6.16); None without."""
    for seq_kw, k in (("PerFrameFunctionalGroupsSequence", i), ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(seq_kw)
        if seq is not None and len(seq) > k:
            inner = seq[k].get(keyword)
            if inner:
                return inner[0]
    return None


def _frame_rescale(ds, i: int) -> tuple[float, float] | None:
    """(slope, intercept) of frame ``i``: the Pixel Value Transformation functional group of an enhanced file,
    else None (the classic top-level Rescale Slope/Intercept or Modality LUT is pydicom's ``apply_rescale``)."""
    item = _group_item(ds, i, "PixelValueTransformationSequence")
    if item is None or ("RescaleSlope" not in item and "RescaleIntercept" not in item):
        return None
    try:
        return float(item.get("RescaleSlope", 1.0)), float(item.get("RescaleIntercept", 0.0))
    except (TypeError, ValueError):
        return None


def _frame_window(ds, i: int) -> tuple[tuple[float, float], str] | None:
    """((center, width), VOI LUT function) of frame ``i``: its Frame VOI LUT functional group (enhanced files),
    else the top-level Window Center/Width (first value when several); None without a usable window."""
    for holder in (_group_item(ds, i, "FrameVOILUTSequence"), ds):
        if holder is not None and "WindowCenter" in holder and "WindowWidth" in holder:
            try:
                window = (_first(holder.WindowCenter), _first(holder.WindowWidth))
            except (TypeError, ValueError):
                continue
            return window, str(holder.get("VOILUTFunction", "LINEAR") or "LINEAR")
    return None


def _valid_voi_lut(ds) -> bool:
    # pydicom's apply_voi_lut test: a VOI LUT Sequence whose first item has a descriptor and data
    seq = ds.get("VOILUTSequence")
    return bool(seq) and None not in (seq[0].get("LUTDescriptor"), seq[0].get("LUTData"))


def read_dicom(path: Path, max_pixels: int | None = None) -> Iterator[Frame]:
    """Frame by frame (one decoded frame in memory at a time); values as ``ds.pixel_array`` followed by the
    palette, modality rescale and VOI LUT steps gives them.

    Display rules (docs/io.md): a VOI window is kept (``meta['window']``) for MONOCHROME1/2 data only, colour
    (RGB, YBR, palette) is converted as colour; enhanced multi-frame files give each frame the rescale and
    window of its functional groups (per-frame over shared); a VOI LUT Sequence wins over a window, as
    pydicom's ``apply_voi_lut(prefer_lut=True)``; a multi-frame file that is not 8-bit carries the range of the
    whole file in ``meta['range']`` (a first decoding pass), so that frames without a window share one scale,
    as NIfTI slices share their volume's.
    """
    from pydicom.pixels import apply_color_lut, apply_rescale, apply_voi_lut, iter_pixels

    from medgap.io.limits import check_pixel_budget, logged_warnings

    ds = _open(path)
    if len(ds) == 0:
        raise ImageReadError(path, "no DICOM elements could be read (truncated, or not a DICOM file)")
    if not getattr(ds, "preamble", None) and not any(t.group in _DICOM_GROUPS for t in ds.keys()):
        raise ImageReadError(
            path, "not a DICOM file (no 'DICM' marker at byte 128 and no DICOM image elements); check what the file is"
        )
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if "Rows" in ds and "Columns" in ds:
            raise ImageReadError(
                path, f"pixel data missing or truncated (the header describes a {ds.Rows}x{ds.Columns} image)"
            )
        sop = ds.get("SOPClassUID")
        what = getattr(sop, "name", None) or str(ds.get("Modality", "")) or "this object"
        raise ImageReadError(path, f"no pixel data ({what} holds no image)")
    missing = [kw for kw in ("Rows", "Columns", "BitsAllocated") if kw not in ds]
    if missing:
        raise ImageReadError(
            path, f"pixel data without {', '.join(missing)} in the header (image pixel module); the file is damaged"
        )
    if "NumberOfFrames" in ds:
        try:
            int(ds.NumberOfFrames)
        except (TypeError, ValueError):
            raise ImageReadError(path, f"invalid (0028,0008) Number of Frames {ds['NumberOfFrames'].value!r}") from None
    part10 = bool(getattr(ds, "preamble", None)) and "TransferSyntaxUID" in getattr(ds, "file_meta", {})
    _ensure_transfer_syntax(ds)
    meta = header_summary(ds)
    n_frames = meta["frames"]
    check_pixel_budget(path, int(ds.Columns), int(ds.Rows), max_pixels)
    check_frame_count(path, ds, n_frames)
    photometric = meta["photometric"]
    monochrome = photometric.startswith("MONOCHROME")
    meta["monochrome1"] = photometric == "MONOCHROME1"
    meta["window"] = None
    meta["range"] = None
    palette = photometric == "PALETTE COLOR"
    # pydicom's precedence (apply_voi_lut(prefer_lut=True)): a VOI LUT Sequence wins over Window Center/Width.
    voi_lut = monochrome and _valid_voi_lut(ds)
    rescale = "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds
    frame_rescale = [_frame_rescale(ds, i) for i in range(n_frames)] if monochrome else [None] * n_frames
    # A VOI window is a grayscale display step (PS3.3 C.11.2 applies to MONOCHROME1/2 only; pydicom refuses
    # it for colour): colour data keeps its colours, and any window in its header is not used.
    windows = [None if (voi_lut or not monochrome) else _frame_window(ds, i) for i in range(n_frames)]
    if not monochrome and _frame_window(ds, 0) is not None:
        meta["note"] = f"window in the header not applied: {photometric} is colour"
    if rescale or any(frame_rescale):
        meta["rescaled"] = True
    if palette:
        meta["photometric"] = "PALETTE COLOR -> RGB"
    if voi_lut:
        meta["range"] = (0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1))
    palette_8bit = _palette_lut_is_8bit(ds) if palette else None
    # YBR_FULL(_422) -> RGB, J2K YBR_ICT/RCT -> RGB. Native data of a Part-10 file is read frame by frame from
    # the file (its value was deferred by dcmread); encapsulated data is held encoded, decoded frame by frame.
    ts = ds.file_meta.TransferSyntaxUID
    native_from_file = part10 and not ts.is_encapsulated and not ts.is_deflated

    def decoded() -> Iterator[np.ndarray]:
        frames = iter_pixels(path if native_from_file else ds, allow_excess_frames=False)
        for i in range(n_frames):
            crashed = None
            try:
                with warnings.catch_warnings(), logged_warnings("pydicom") as logged:
                    warnings.simplefilter("ignore")
                    arr = next(frames)
            except StopIteration:
                raise ImageReadError(path, f"pixel data ended after {i} of {n_frames} frames") from None
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as e:  # noqa: BLE001 - decoder panics (pylibjpeg-rle) are BaseExceptions
                crashed = ImageReadError(path, _decode_reason(e, meta, i, n_frames))
            if crashed is not None:  # raised outside the handler: no unpicklable PanicException as its context
                raise crashed
            bad = [m for m in logged if any(w in m.lower() for w in _CORRUPT_WARNINGS)]
            if bad:
                where = f"frame {i}: " if n_frames > 1 else ""
                raise ImageReadError(path, f"compressed pixel data damaged ({where}{' '.join(bad[0].split())})")
            if palette:
                arr = apply_color_lut(arr, ds)
                if arr.dtype != np.uint8:
                    # 16-bit LUT entries normally span 0-65535; some writers store 8-bit values in them.
                    small = palette_8bit if palette_8bit is not None else arr.max() <= 255
                    arr = arr.astype(np.uint8) if small else np.floor(arr / 257.0 + 0.5).astype(np.uint8)
            elif arr.ndim == 2 and monochrome:
                if frame_rescale[i] is not None:
                    slope, intercept = frame_rescale[i]
                    arr = arr.astype(np.float64) * slope + intercept
                elif rescale:
                    arr = apply_rescale(arr, ds)
                if voi_lut:
                    arr = apply_voi_lut(arr, ds, index=0, prefer_lut=True)
            yield arr

    if n_frames > 1 and not voi_lut and not palette and (
        int(ds.get("BitsAllocated", 8) or 8) > 8 or rescale or any(frame_rescale)
        or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    ):
        # One scale per file (as NIfTI volumes): the range of every frame after rescale, from a first pass.
        lo = hi = None
        for arr in decoded():
            if arr.ndim == 3:  # >8-bit colour: the range of the luma that to_gray255 scales
                arr = arr[..., :3].astype(np.float64) @ LUMA
            finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
            if finite.size:
                a, b = float(finite.min()), float(finite.max())
                lo = a if lo is None else min(lo, a)
                hi = b if hi is None else max(hi, b)
        meta["range"] = (lo, hi) if lo is not None else None
    for i, arr in enumerate(decoded()):
        frame_meta = dict(meta)
        if windows[i] is not None:
            frame_meta["window"], frame_meta["voi_function"] = windows[i]
        yield Frame(np.ascontiguousarray(arr), i if n_frames > 1 else None, frame_meta)


def _decode_reason(e: BaseException, meta: dict, i: int, n: int) -> str:
    msg = " ".join(f"{type(e).__name__}: {e}".split())
    low = msg.lower()
    where = f" (frame {i} of {n})" if n > 1 else ""
    ts = meta["transfer_syntax"]
    if not isinstance(e, Exception):
        return f"compressed pixel data ({ts}) is damaged: the decoder crashed{where} ({msg})"
    if "exceptions were raised by all available plugins" in low:
        return f"compressed pixel data ({ts}) is damaged or non-conformant{where}: {msg}"
    if "plugin" in low or "missing required dependencies" in low or "no pixel data handler" in low:
        return f"cannot decode pixel data ({ts}); {_FIX} ({msg})"
    return f"cannot decode pixel data ({ts}){where}: {msg}"
