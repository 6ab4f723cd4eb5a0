"""DICOM display rules (issue 10, item 5): colour is never windowed, enhanced multi-frame files give each frame
its functional groups' rescale and window, a VOI LUT Sequence wins over a window (pydicom's precedence), and a
multi-frame file (DICOM, multi-page TIFF) is min-max scaled over the whole file, as NIfTI volumes are.
Expected values are computed from pydicom's own elements and functions, or restated in float64 here."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from medgap.io import read_frames, to_gray255

# pydicom-data (the data_store package) holds these files locally; pydicom.data.get_testdata_file would download
PYDICOM_DATA = Path(importlib.util.find_spec("data_store").origin).parent / "data"
RNG = np.random.default_rng(10)


def _new(photometric: str, arr: np.ndarray, bits: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.set_pixel_data(arr, photometric, bits)
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _matlab_luma(rgb: np.ndarray) -> np.ndarray:
    y = 0.298936021293775 * rgb[..., 0] + 0.587043074451121 * rgb[..., 1] + 0.114020904255103 * rgb[..., 2]
    return np.floor(y.astype(np.float64) + 0.5)


def test_colour_dicom_with_a_window_is_converted_as_colour(tmp_path):
    rgb = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    ds = _new("RGB", rgb, 8)
    ds.WindowCenter, ds.WindowWidth = 10, 20  # would saturate almost everything if it were applied
    frame = next(iter(read_frames(_save(ds, tmp_path / "rgb.dcm"))))
    assert frame.meta["window"] is None and "colour" in frame.meta["note"]
    np.testing.assert_array_equal(frame.pixels, rgb)
    np.testing.assert_array_equal(to_gray255(frame), _matlab_luma(rgb))


def test_multiframe_without_window_scales_over_the_whole_file(tmp_path):
    # three frames with different ranges: one scale for the file, as NIfTI slices share their volume's
    frames = np.stack([RNG.integers(100, 200, (16, 20)), RNG.integers(500, 4000, (16, 20)),
                       RNG.integers(1000, 1500, (16, 20))]).astype(np.uint16)
    ds = _new("MONOCHROME2", frames, 12)
    got = list(read_frames(_save(ds, tmp_path / "mf.dcm")))
    lo, hi = float(frames.min()), float(frames.max())
    assert [f.frame for f in got] == [0, 1, 2]
    for f, raw in zip(got, frames):
        assert f.meta["range"] == (lo, hi)
        np.testing.assert_allclose(to_gray255(f), (raw.astype(np.float64) - lo) * 255.0 / (hi - lo), atol=1e-9)


def test_voi_lut_sequence_wins_over_window(tmp_path):
    """pydicom's apply_voi_lut(prefer_lut=True): with both a VOI LUT Sequence and a window, the LUT is used."""
    ds = pydicom.dcmread(PYDICOM_DATA / "vlut_04.dcm")
    ds.WindowCenter, ds.WindowWidth = 100, 50
    frame = next(iter(read_frames(_save(ds, tmp_path / "both.dcm"))))
    from pydicom.pixels import apply_voi

    ref = apply_voi(ds.pixel_array, ds, index=0)  # the LUT alone, no window
    assert frame.meta["window"] is None
    np.testing.assert_array_equal(frame.pixels, ref)
    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
    np.testing.assert_allclose(to_gray255(frame), ref.astype(np.float64) * 255.0 / (2**bits - 1), atol=1e-9)


def _group(**elements) -> Dataset:
    item = Dataset()
    for k, v in elements.items():
        setattr(item, k, v)
    return item


def test_enhanced_ct_reads_rescale_and_window_of_each_frame(tmp_path):
    """eCT_Supplemental.dcm (pydicom's enhanced CT) keeps its rescale and window only in the shared functional
    groups; here frame 1 gets its own in a per-frame group, which must win over the shared one."""
    ds = pydicom.dcmread(PYDICOM_DATA / "eCT_Supplemental.dcm")
    assert "RescaleIntercept" not in ds and "WindowCenter" not in ds
    shared = ds.SharedFunctionalGroupsSequence[0]
    s_slope = float(shared.PixelValueTransformationSequence[0].RescaleSlope)
    s_icpt = float(shared.PixelValueTransformationSequence[0].RescaleIntercept)
    s_win = (float(shared.FrameVOILUTSequence[0].WindowCenter), float(shared.FrameVOILUTSequence[0].WindowWidth))
    raw = ds.pixel_array.astype(np.float64)

    frames = list(read_frames(PYDICOM_DATA / "eCT_Supplemental.dcm"))
    for f, r in zip(frames, raw):
        np.testing.assert_array_equal(f.pixels, r * s_slope + s_icpt)
        assert f.meta["window"] == s_win
    # the shared window applied as PS3.3 C.11.2.1.2.1 LINEAR says, restated here
    c, w = s_win
    hu = raw[0] * s_slope + s_icpt
    np.testing.assert_allclose(to_gray255(frames[0]), np.clip((hu - (c - 0.5)) / (w - 1) + 0.5, 0, 1) * 255, atol=1e-9)

    per = copy.deepcopy(ds)
    per.PerFrameFunctionalGroupsSequence[1].FrameVOILUTSequence = [_group(WindowCenter=300, WindowWidth=1500)]
    per.PerFrameFunctionalGroupsSequence[1].PixelValueTransformationSequence = [
        _group(RescaleSlope=2, RescaleIntercept=-1000, RescaleType="HU")]
    f0, f1 = read_frames(_save(per, tmp_path / "perframe.dcm"))
    assert f0.meta["window"] == s_win and f1.meta["window"] == (300.0, 1500.0)
    np.testing.assert_array_equal(f0.pixels, raw[0] * s_slope + s_icpt)
    np.testing.assert_array_equal(f1.pixels, raw[1] * 2.0 - 1000.0)


def test_shared_ct_dicom_is_in_hounsfield_units(shared_data):
    path = sorted((shared_data / "ct").glob("*.dcm"))[0]
    frame = next(iter(read_frames(path)))
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(frame.pixels, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert frame.meta["rescaled"] and frame.meta["modality"] == "CT"


def test_multipage_16bit_tiff_scales_over_the_whole_file(tmp_path):
    import tifffile

    pages = np.stack([RNG.integers(0, 300, (8, 12)), RNG.integers(2000, 60000, (8, 12))]).astype(np.uint16)
    for page in pages:
        tifffile.imwrite(tmp_path / "s.tiff", page, photometric="minisblack", append=True)
    lo, hi = float(pages.min()), float(pages.max())
    for f, raw in zip(read_frames(tmp_path / "s.tiff"), pages):
        np.testing.assert_allclose(to_gray255(f), (raw.astype(np.float64) - lo) * 255.0 / (hi - lo), atol=1e-9)
