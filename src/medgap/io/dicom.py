"""DICOM through pydicom and its pixel-data plugins (pylibjpeg: JPEG baseline/extended/lossless, JPEG-LS,
JPEG 2000, RLE; deflate is native)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from medgap.io.errors import ImageReadError
from medgap.io.frame import Frame

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
                return pydicom.dcmread(path)
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


def read_dicom(path: Path) -> Iterator[Frame]:
    from pydicom.pixels import apply_color_lut, apply_rescale, apply_voi_lut

    ds = _open(path)
    if len(ds) == 0:
        raise ImageReadError(path, "no DICOM elements could be read (truncated, or not a DICOM file)")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if "Rows" in ds and "Columns" in ds:
            raise ImageReadError(
                path, f"pixel data missing or truncated (the header describes a {ds.Rows}x{ds.Columns} image)"
            )
        sop = ds.get("SOPClassUID")
        what = getattr(sop, "name", None) or str(ds.get("Modality", "")) or "this object"
        raise ImageReadError(path, f"no pixel data ({what} holds no image)")
    _ensure_transfer_syntax(ds)
    meta = header_summary(ds)
    photometric = meta["photometric"]
    meta["monochrome1"] = photometric == "MONOCHROME1"
    meta["window"] = None
    meta["range"] = None
    if "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            meta["window"] = (_first(ds.WindowCenter), _first(ds.WindowWidth))
            meta["voi_function"] = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
        except (TypeError, ValueError):
            meta["window"] = None
    voi_lut = meta["window"] is None and "VOILUTSequence" in ds
    n_frames = meta["frames"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array  # YBR_FULL(_422) -> RGB (as_rgb), J2K YBR_ICT/RCT -> RGB by the decoder
    except Exception as e:
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        low = msg.lower()
        if "exceptions were raised by all available plugins" in low:
            reason = f"compressed pixel data ({meta['transfer_syntax']}) is damaged or non-conformant: {msg}"
        elif "plugin" in low or "missing required dependencies" in low or "no pixel data handler" in low:
            reason = f"cannot decode pixel data ({meta['transfer_syntax']}); {_FIX} ({msg})"
        else:
            reason = f"cannot decode pixel data ({meta['transfer_syntax']}): {msg}"
        raise ImageReadError(path, reason) from None
    if n_frames == 1:
        arr = arr[None]
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        if arr.dtype != np.uint8:
            # 16-bit LUT entries normally span 0-65535; some writers store 8-bit values in them.
            arr = arr.astype(np.uint8) if arr.max() <= 255 else np.floor(arr / 257.0 + 0.5).astype(np.uint8)
        meta["photometric"] = "PALETTE COLOR -> RGB"
    elif arr.ndim == 3 and photometric.startswith("MONOCHROME"):
        if "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds:
            arr = apply_rescale(arr, ds)
        if voi_lut:
            arr = apply_voi_lut(arr, ds, index=0)
            bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
            meta["range"] = (0.0, float(2**bits - 1))
    for i in range(arr.shape[0]):
        yield Frame(np.ascontiguousarray(arr[i]), i if n_frames > 1 else None, dict(meta))
