"""Every format medgap reads, on files the tests write (exact pixels for lossless formats) and on the real
files that pydicom, pydicom-data and ../shared/data carry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from medgap.io import Frame, ImageReadError, item_id, parse_item_id, read_frames, to_gray255

RNG = np.random.default_rng(0)
PYDICOM_FILES = Path(importlib.util.find_spec("pydicom").origin).parent / "data" / "test_files"
PYDICOM_DATA = Path(importlib.util.find_spec("data_store").origin).parent / "data"


def dcm(name: str) -> Path:
    for folder in (PYDICOM_FILES, PYDICOM_DATA):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(name)


def only(path, **kw) -> Frame:
    frames = list(read_frames(path, **kw))
    assert len(frames) == 1
    return frames[0]


# --- raster formats written here --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_8bit_gray_and_rgb(tmp_path, suffix):
    gray = RNG.integers(0, 256, (37, 53), dtype=np.uint8)
    rgb = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / f"g{suffix}"), gray)
    cv2.imwrite(str(tmp_path / f"c{suffix}"), rgb[..., ::-1])  # OpenCV writes BGR
    np.testing.assert_array_equal(only(tmp_path / f"g{suffix}").pixels, gray)
    f = only(tmp_path / f"c{suffix}")
    np.testing.assert_array_equal(f.pixels, rgb)  # RGB order
    assert f.frame is None and f.meta["bits"] == 8


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_kept_and_min_max_scaled(tmp_path, suffix):
    img = RNG.integers(1000, 40000, (20, 30), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / f"x{suffix}"), img)
    f = only(tmp_path / f"x{suffix}")
    np.testing.assert_array_equal(f.pixels, img)
    g = to_gray255(f)
    expected = (img.astype(float) - img.min()) * 255.0 / (img.max() - img.min())
    np.testing.assert_allclose(g, expected, rtol=0, atol=1e-9)


def test_jpeg_decodes_close_to_source(tmp_path):
    img = cv2.GaussianBlur(RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8), (5, 5), 2)
    cv2.imwrite(str(tmp_path / "x.jpg"), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
    f = only(tmp_path / "x.jpg")
    assert f.meta["format"] == "jpeg" and f.pixels.shape == (64, 80, 3)
    assert np.abs(f.pixels.astype(int) - img).mean() < 6  # chroma subsampling of a noisy image


def test_multipage_tiff_gives_frames(tmp_path):
    import tifffile

    pages = RNG.integers(0, 65535, (3, 16, 24), dtype=np.uint16)
    for page in pages:
        tifffile.imwrite(tmp_path / "s.tiff", page, photometric="minisblack", append=True)
    frames = list(read_frames(tmp_path / "s.tiff"))
    assert [f.frame for f in frames] == [0, 1, 2]
    np.testing.assert_array_equal(frames[2].pixels, pages[2])


def _write_video(path: Path, frames: np.ndarray, codec: str, fps: int = 10) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.parametrize("suffix, codec", [(".mp4", "h264"), (".avi", "mpeg4"), (".mov", "h264"), (".gif", "gif")])
def test_video_frames_and_stride(tmp_path, suffix, codec):
    n = 12
    base = np.linspace(0, 255, 64 * 48, dtype=np.float64).reshape(48, 64)
    frames = np.stack([np.repeat(((base + 10 * k) % 256).astype(np.uint8)[..., None], 3, axis=2) for k in range(n)])
    path = tmp_path / f"v{suffix}"
    _write_video(path, frames, codec)
    all_frames = list(read_frames(path))
    assert len(all_frames) == n and all_frames[0].pixels.shape == (48, 64, 3)
    strided = list(read_frames(path, video_stride=5))
    assert [f.frame for f in strided] == [0, 5, 10]
    # lossy codecs: the decoded frame is close to what was encoded (GIF: 3-3-2 bit palette of rgb8)
    assert np.abs(strided[1].pixels.astype(int) - frames[5]).mean() < (25 if codec == "gif" else 12)


def test_nifti_slices_share_the_volume_range(tmp_path):
    import nibabel as nib

    vol = RNG.normal(100, 30, (20, 24, 5)).astype(np.float32)
    vol[..., 0] = 0
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    frames = list(read_frames(tmp_path / "v.nii.gz"))
    assert len(frames) == 5 and frames[0].pixels.shape == (24, 20)
    np.testing.assert_array_equal(frames[3].pixels, np.flipud(vol[..., 3].T))
    assert frames[0].meta["range"] == (float(vol.min()), float(vol.max()))
    g = to_gray255(frames[0])  # the all-zero slice is scaled with the volume's range, not its own
    np.testing.assert_allclose(g, (0 - vol.min()) * 255 / (vol.max() - vol.min()))
    assert len(list(read_frames(tmp_path / "v.nii.gz", nifti_axis=0))) == 20


# --- DICOM: every photometric interpretation and compression that pydicom and pydicom-data ship -------------

# (compressed or re-encoded file, its uncompressed twin, max mean abs difference allowed)
TWINS = [
    ("MR2_J2KR.dcm", "MR2_UNCR.dcm", 0),
    ("MR2_J2KI.dcm", "MR2_UNCI.dcm", 20),
    ("RG1_J2KR.dcm", "RG1_UNCR.dcm", 0),
    ("RG3_J2KR.dcm", "RG3_UNCR.dcm", 0),
    ("US1_J2KR.dcm", "US1_UNCR.dcm", 0),
    ("US1_J2KI.dcm", "US1_UNCI.dcm", 3),
    ("OBXXXX1A_rle.dcm", "OBXXXX1A.dcm", 0),
    ("OBXXXX1A_expb.dcm", "OBXXXX1A.dcm", 0.05),  # the big-endian copy differs in a few pixels
    ("SC_rgb_rle.dcm", "SC_rgb.dcm", 0),
    ("SC_rgb_expb.dcm", "SC_rgb.dcm", 0),
    ("SC_rgb_rle_16bit.dcm", "SC_rgb_16bit.dcm", 0),
    ("SC_rgb_rle_32bit.dcm", "SC_rgb_32bit.dcm", 0),
    ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb.dcm", 0),  # JPEG lossless
    ("SC_rgb_gdcm_KY.dcm", "SC_rgb.dcm", 0),  # JPEG 2000 lossless
    ("SC_rgb_jpeg_dcmtk.dcm", "SC_rgb.dcm", 6),  # JPEG baseline, YBR_FULL
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb.dcm", 6),  # JPEG baseline, YBR_FULL_422
    ("SC_rgb_jls_lossy_sample.dcm", "SC_rgb.dcm", 6),  # JPEG-LS near-lossless
    ("SC_ybr_full_uncompressed.dcm", "SC_rgb.dcm", 2),
    ("emri_small_RLE.dcm", "emri_small.dcm", 0),
    ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm", 0),
    ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm", 0),
    ("emri_small_big_endian.dcm", "emri_small.dcm", 0),
    ("MR_small_RLE.dcm", "MR_small.dcm", 0),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm", 0),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm", 0),
    ("MR_small_implicit.dcm", "MR_small.dcm", 0),
    ("MR_small_bigendian.dcm", "MR_small.dcm", 0),
]


@pytest.mark.parametrize("encoded, twin, tol", TWINS, ids=[t[0] for t in TWINS])
def test_dicom_encodings_decode_like_their_uncompressed_twin(encoded, twin, tol):
    a, b = list(read_frames(dcm(encoded))), list(read_frames(dcm(twin)))
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        assert fa.pixels.shape == fb.pixels.shape
        diff = np.abs(fa.pixels.astype(np.float64) - fb.pixels.astype(np.float64)).mean()
        assert diff <= tol, (encoded, diff)


def test_every_pydicom_data_image_decodes():
    """The brief: every compressed file of pydicom-data decodes (none is deliberately broken there)."""
    n = 0
    for f in sorted(PYDICOM_DATA.glob("*.dcm")):
        if "too_short" in f.name:  # deliberately truncated: must fail with a reason instead
            with pytest.raises(ImageReadError, match="truncated"):
                list(read_frames(f))
            continue
        frames = list(read_frames(f))
        assert frames and all(np.isfinite(to_gray255(fr)).all() for fr in frames), f.name
        n += 1
    assert n >= 60


def test_monochrome1_is_inverted_after_windowing():
    f = only(dcm("RG1_UNCR.dcm"))
    assert f.meta["monochrome1"] and f.meta["photometric"] == "MONOCHROME1"
    c, w = f.meta["window"]
    g = to_gray255(f)
    # independent: pydicom's VOI LUT with the same window, scaled to 0-255, then inverted
    from pydicom import dcmread
    from pydicom.pixels import apply_voi_lut

    ds = dcmread(dcm("RG1_UNCR.dcm"))
    ref = apply_voi_lut(ds.pixel_array.astype(np.float64), ds, index=0)  # output range 0 .. 2**BitsStored - 1
    ref = 255.0 - ref / (2.0 ** ds.BitsStored - 1) * 255.0
    np.testing.assert_allclose(g, ref, atol=1e-9)
    # bone (low stored values in MONOCHROME1) is bright after the inversion
    assert g[f.pixels < np.percentile(f.pixels, 5)].mean() > g[f.pixels > np.percentile(f.pixels, 95)].mean()


def test_palette_color_gives_rgb():
    f = only(dcm("OBXXXX1A.dcm"))
    assert f.pixels.shape == (600, 800, 3) and f.pixels.dtype == np.uint8
    from pydicom import dcmread
    from pydicom.pixels import apply_color_lut

    ds = dcmread(dcm("OBXXXX1A.dcm"))
    ref = apply_color_lut(ds.pixel_array, ds)  # 16-bit LUT entries (0-65535)
    np.testing.assert_array_equal(f.pixels, np.floor(ref / 257.0 + 0.5).astype(np.uint8))
    f16 = only(dcm("gdcm-US-ALOKA-16.dcm"))  # 16-bit palette entries map onto 0-255
    assert f16.pixels.dtype == np.uint8 and f16.pixels.max() > 200


def test_ybr_becomes_rgb_close_to_the_rgb_original():
    ybr, rgb = only(dcm("SC_rgb_jpeg_dcmtk.dcm")), only(dcm("SC_rgb.dcm"))
    assert ybr.pixels.shape == rgb.pixels.shape == (100, 100, 3)
    assert np.abs(ybr.pixels.astype(int) - rgb.pixels).mean() < 6


def test_multiframe_gives_one_frame_each_with_ids():
    frames = list(read_frames(dcm("examples_ybr_color.dcm")))
    assert len(frames) == 30 and [f.frame for f in frames[:3]] == [0, 1, 2]
    assert item_id("/a/b.dcm", 7) == "/a/b.dcm#frame=7" and parse_item_id("/a/b.dcm#frame=7") == ("/a/b.dcm", 7)
    assert parse_item_id("/a/b.png") == ("/a/b.png", None)


def test_rescale_gives_hounsfield_units():
    f = only(dcm("CT_small.dcm"))
    from pydicom import dcmread

    ds = dcmread(dcm("CT_small.dcm"))
    np.testing.assert_allclose(f.pixels, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))


def test_window_from_header_is_used(shared_data):
    path = next((shared_data / "ct").glob("*.dcm"))
    f = only(path)
    c, w = f.meta["window"]
    x = f.pixels.astype(np.float64)
    expected = np.clip(((x - (c - 0.5)) / (w - 1) + 0.5), 0, 1) * 255  # PS3.3 C.11.2.1.2.1
    np.testing.assert_allclose(to_gray255(f), expected)
    assert "PatientName" not in f.meta and "PatientID" not in f.meta


def test_rgb_gray_rule_is_matlab_rgb2gray():
    rgb = RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    expected = np.floor(0.298936021293775 * r + 0.587043074451121 * g + 0.114020904255103 * b + 0.5)
    np.testing.assert_array_equal(to_gray255(Frame(rgb, None, {})), expected)


def test_constant_and_nonfinite_frames():
    assert (to_gray255(Frame(np.full((8, 8), 700, np.uint16), None, {})) == 0).all()
    x = np.ones((8, 8), np.float32)
    x[0, 0] = np.nan
    x[1, 1] = 3
    g = to_gray255(Frame(x, None, {}))
    assert np.isnan(g[0, 0]) and g[1, 1] == 255 and g[2, 2] == 0


# --- shared real data --------------------------------------------------------------------------------------


def test_shared_videos_of_every_container(shared_data):
    videos = sorted((shared_data / "pocus" / "videos").rglob("*.*"))
    suffixes = {v.suffix.lower() for v in videos}
    assert {".mp4", ".avi", ".gif"} <= suffixes
    for v in videos:
        frames = list(read_frames(v, video_stride=25))
        assert frames and frames[0].pixels.ndim == 3 and frames[0].meta["format"] in ("video", "gif"), v


# --- bad input --------------------------------------------------------------------------------------------


def _bad_files(tmp: Path) -> dict[str, Path]:
    good = np.zeros((32, 32), np.uint8)
    cv2.imwrite(str(tmp / "ok.png"), good)
    cv2.imwrite(str(tmp / "ok.jpg"), RNG.integers(0, 256, (64, 64), dtype=np.uint8))
    files = {
        "empty": tmp / "empty.png",
        "text as png": tmp / "notes.png",
        "corrupt jpeg": tmp / "corrupt.jpg",
        "truncated png": tmp / "trunc.png",
        "truncated jpeg": tmp / "trunc.jpg",
        "garbage dicom": tmp / "garbage.dcm",
        "garbage nifti": tmp / "garbage.nii.gz",
        "garbage video": tmp / "garbage.mp4",
        "unknown suffix": tmp / "table.xyz",
    }
    files["empty"].write_bytes(b"")
    files["text as png"].write_text("this is not an image\n")
    files["corrupt jpeg"].write_bytes(b"\xff\xd8\xff\xe0" + bytes(RNG.integers(0, 256, 500, dtype=np.uint8)) + b"\xff\xd9")
    files["truncated png"].write_bytes((tmp / "ok.png").read_bytes()[:60])
    files["truncated jpeg"].write_bytes((tmp / "ok.jpg").read_bytes()[:300])
    files["garbage dicom"].write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage" * 10)
    files["garbage nifti"].write_bytes(b"\x1f\x8b not really gzip")
    files["garbage video"].write_bytes(bytes(RNG.integers(0, 256, 2000, dtype=np.uint8)))
    files["unknown suffix"].write_text("a,b\n")
    return files


@pytest.mark.parametrize(
    "case",
    ["empty", "text as png", "corrupt jpeg", "truncated png", "truncated jpeg", "garbage dicom", "garbage nifti",
     "garbage video", "unknown suffix"],
)
def test_bad_files_raise_one_clear_error(tmp_path, case):
    path = _bad_files(tmp_path)[case]
    with pytest.raises(ImageReadError) as err:
        list(read_frames(path))
    assert str(err.value).startswith(str(path)) and err.value.reason


@pytest.mark.parametrize(
    "name, reason",
    [
        ("MR_truncated.dcm", "less than expected"),
        ("rtplan.dcm", "no pixel data"),
        ("reportsi.dcm", "no pixel data"),
        ("JPEG-lossy.dcm", "damaged or non-conformant"),
    ],
)
def test_bad_dicom_from_pydicom_raise_with_reason(name, reason):
    with pytest.raises(ImageReadError, match=reason):
        list(read_frames(dcm(name)))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        list(read_frames(tmp_path / "nope.png"))
    with pytest.raises(ImageReadError, match="is a folder"):
        list(read_frames(tmp_path))
