"""Issue 8 (hardening) for the decoders: damaged files become one ImageReadError with a reason (decoder panics
included, picklable back from worker processes), corrupt JPEG data and DICOM frame counts are checked, a pixel
budget refuses bombs before decoding, and multi-page/multi-frame files are read with one frame in memory. The
damaged files are made here from real files (pydicom's, scikit-image's, ../shared's)."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import multiprocessing
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from medgap.io import (
    DEFAULT_MAX_PIXELS,
    CollectionError,
    ImageReadError,
    collect,
    read_frames,
    read_manifest,
    scan_folder,
)

PYDICOM_FILES = Path(importlib.util.find_spec("pydicom").origin).parent / "data" / "test_files"
PYDICOM_DATA = Path(importlib.util.find_spec("data_store").origin).parent / "data"
SKIMAGE_DATA = Path(importlib.util.find_spec("skimage").origin).parent / "data"
REPO = Path(__file__).resolve().parents[2]

# Bytes of MR_small_RLE.dcm (7790 bytes) flipped (xor 0xFF): 20 positions in its last two-thirds, drawn once
# with numpy.random.default_rng(1). pylibjpeg-rle's Rust decoder panics on them ("index out of bounds"): pyo3's
# PanicException derives from BaseException, so `except Exception` let it through and it killed the reader
# thread (a hang) or failed to pickle back from a worker (a crash).
RLE_FLIPS = (2739, 2776, 3041, 3342, 3887, 3929, 4012, 4212, 4719, 4791, 5044, 5245, 5449, 5938, 6505, 6859, 6890,
             7101, 7511, 7517)


def damaged_rle(tmp: Path) -> Path:
    raw = bytearray((PYDICOM_FILES / "MR_small_RLE.dcm").read_bytes())
    for p in RLE_FLIPS:
        raw[p] ^= 0xFF
    out = tmp / "damaged_rle.dcm"
    out.write_bytes(bytes(raw))
    return out


def _list_frames(path: str) -> int:  # module level: runs in a worker process
    return len(list(read_frames(path)))


# --- defect 1: one guard around every decoder ---------------------------------------------------------------


def test_rle_decoder_panic_becomes_a_read_error(tmp_path):
    bad = damaged_rle(tmp_path)
    with pytest.raises(ImageReadError) as err:
        list(read_frames(bad))
    e = err.value
    assert e.path == str(bad) and "RLE Lossless" in e.reason and "PanicException" in e.reason
    assert "damaged" in e.reason
    back = pickle.loads(pickle.dumps(e))  # worker processes send it back pickled
    assert type(back) is ImageReadError and (back.path, back.reason, str(back)) == (e.path, e.reason, str(e))
    # the decoder is usable afterwards: the intact file still decodes
    assert len(list(read_frames(PYDICOM_FILES / "MR_small_RLE.dcm"))) == 1


def test_panic_comes_back_from_a_worker_process_as_a_read_error(tmp_path):
    bad = damaged_rle(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        good = pool.submit(_list_frames, str(PYDICOM_FILES / "MR_small.dcm"))
        failed = pool.submit(_list_frames, str(bad))
        assert good.result(timeout=120) == 1
        with pytest.raises(ImageReadError, match="decoder crashed"):
            failed.result(timeout=120)


def test_interrupts_pass_through_the_guard(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4), np.uint8))
    frames = read_frames(tmp_path / "a.png")
    frames.close()  # GeneratorExit is not turned into a read error
    gen = read_frames(tmp_path / "a.png")
    next(gen)
    with pytest.raises(KeyboardInterrupt):
        gen.throw(KeyboardInterrupt())


# --- defect 5: corrupt JPEG data that keeps its end-of-image marker ------------------------------------------


def _corrupt_middle(raw: bytes, how: str) -> bytes:
    sos, eoi = raw.rfind(b"\xff\xda"), raw.rfind(b"\xff\xd9")
    mid = (sos + eoi) // 2
    b = bytearray(raw)
    if how == "zeros":
        b[mid : mid + 64] = bytes(64)
    else:  # a lost run of bytes, as in a damaged transfer
        del b[mid : mid + 500]
    assert bytes(b).endswith(b"\xff\xd9")
    return bytes(b)


@pytest.mark.parametrize("how", ["zeros", "cut"])
def test_corrupt_jpeg_data_with_eoi_is_refused(tmp_path, how):
    """OpenCV decodes these with libjpeg's "Corrupt JPEG data" on stderr only (checked: the previous reader
    returned a 427 x 640 x 3 frame for both)."""
    bad = tmp_path / "rocket.jpg"
    bad.write_bytes(_corrupt_middle((SKIMAGE_DATA / "rocket.jpg").read_bytes(), how))
    assert cv2.imdecode(np.fromfile(bad, np.uint8), cv2.IMREAD_UNCHANGED) is not None  # what OpenCV accepts
    with pytest.raises(ImageReadError, match="corrupt JPEG data: ") as err:
        list(read_frames(bad))
    assert "re-download" in err.value.reason


def _opencv_rgb(path: Path) -> np.ndarray:
    img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    return img if img.ndim == 2 else img[..., ::-1]


def test_good_jpegs_decode_bit_identical_to_opencv(tmp_path):
    gray = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (50, 70), dtype=np.uint8), (5, 5), 2)
    cv2.imwrite(str(tmp_path / "gray.jpg"), gray)
    cv2.imwrite(str(tmp_path / "progressive.jpg"), cv2.imread(str(SKIMAGE_DATA / "rocket.jpg")),
                [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    for path in (SKIMAGE_DATA / "rocket.jpg", tmp_path / "gray.jpg", tmp_path / "progressive.jpg"):
        (f,) = read_frames(path)
        ref = _opencv_rgb(path)
        assert f.pixels.dtype == ref.dtype and np.array_equal(f.pixels, ref), path


def test_shared_jpegs_decode_bit_identical_to_opencv(shared_data):
    files = sorted((shared_data / "natural").glob("*.JPEG"))[:60] + sorted((shared_data / "cxr").glob("*.jp*g"))[:30]
    files = [f for f in files if f.read_bytes()[:2] == b"\xff\xd8"]  # some .jpg there are PNGs
    assert len(files) > 60
    for path in files:
        (f,) = read_frames(path)
        assert np.array_equal(f.pixels, _opencv_rgb(path)), path


# --- defect 6: DICOM frames against the header --------------------------------------------------------------


def _mr_small(tmp: Path, name: str, *, repeat: int = 1, frames: int | None = None) -> Path:
    import pydicom

    ds = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    ds.PixelData = ds.PixelData * repeat
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.save_as(tmp / name)
    return tmp / name


def test_dicom_holding_more_frames_than_declared_is_refused(tmp_path):
    """The previous reader scored MR_small with three frames' data (no Number of Frames) as one 3 x 64 x 64
    'image'."""
    with pytest.raises(ImageReadError, match=r"holds 3 frames of 64 x 64, the header declares 1 \(no Number"):
        list(read_frames(_mr_small(tmp_path, "x3.dcm", repeat=3)))
    with pytest.raises(ImageReadError, match=r"holds 6 frames .* declares 2 \(\(0028,0008\) Number of Frames"):
        list(read_frames(_mr_small(tmp_path, "x6.dcm", repeat=6, frames=2)))


def test_dicom_holding_fewer_frames_than_declared_is_refused(tmp_path):
    with pytest.raises(ImageReadError, match=r"less than expected .* holds 1 complete frame.* declares 3"):
        list(read_frames(_mr_small(tmp_path, "x13.dcm", frames=3)))


@pytest.mark.parametrize("name", ["emri_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm"])
def test_encapsulated_frame_count_is_checked(tmp_path, name):
    import pydicom

    ds = pydicom.dcmread(PYDICOM_DATA / name)
    assert ds.NumberOfFrames == 10
    ds.NumberOfFrames = 5
    ds.save_as(tmp_path / "five.dcm")
    with pytest.raises(ImageReadError, match=r"holds 10 frames .*declares 5"):
        list(read_frames(tmp_path / "five.dcm"))
    ds.NumberOfFrames = 12
    ds.save_as(tmp_path / "twelve.dcm")
    with pytest.raises(ImageReadError, match=r"declares 12"):
        list(read_frames(tmp_path / "twelve.dcm"))


# --- defect 7: pixel budget, refused before decoding ----------------------------------------------------------


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def black_rgb_png(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit RGB PNG of zeros written without holding the image: one deflate block of 80 rows (ending in
    a full flush, so it references nothing before it) repeated."""
    assert height % 80 == 0
    rows = bytes(1 + 3 * width) * 80
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(rows) + c.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    adler = 1
    for _ in range(height // 80):
        adler = zlib.adler32(rows, adler)
    idat = b"\x78\xda" + block * (height // 80) + end + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


_PEAK = """
import resource, sys
from medgap.io import read_frames, ImageReadError


def status(key):  # kB from /proc/self/status (Linux)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


warm, big = sys.argv[1], sys.argv[2]
for _ in read_frames(warm):
    pass
startup = status("VmHWM")  # this process's own peak so far (imports, the warm-up read)
try:
    # Reset the peak to the current size: imports (numba compiling, say) can peak above what reading takes.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset, base = True, status("VmRSS")
except OSError:
    reset, base = False, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    n = sum(1 for _ in read_frames(big))
    print("DECODED", n)
except ImageReadError as e:
    print("REFUSED", e.reason)
# Lifetime peak from VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so under pytest it
# reported the parent worker's 1.1 GB (torch loaded by earlier tests) instead of this process's own peak.
peak = status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lifetime = max(startup, status("VmHWM"))
print("MB", base / 1024, peak / 1024, lifetime / 1024)
"""


def peak_memory(warm: Path, big: Path) -> tuple[str, float, float, float]:
    """Reading ``big`` in a fresh process after a warm-up read of ``warm``: (first output line, resident MB
    before, peak resident MB while reading (VmHWM after resetting it), the process's lifetime peak MB incl.
    imports (VmHWM))."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", _PEAK, str(warm), str(big)], capture_output=True, text=True,
                         timeout=300, env=env, check=True).stdout.splitlines()
    _, base, peak, maxrss = out[-1].split()
    return out[0], float(base), float(peak), float(maxrss)


def test_20000_square_png_is_refused_within_1_gb(tmp_path):
    """The previous reader decoded it: 2.6 GB peak on this machine."""
    bomb = black_rgb_png(tmp_path / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 2_000_000
    warm = black_rgb_png(tmp_path / "small.png", 100, 80)
    line, _, _, lifetime = peak_memory(warm, bomb)
    assert line.startswith("REFUSED") and "20000 x 20000 pixels" in line
    assert "100,000,000" in line and "--max-pixels" in line and "max_pixels=" in line
    assert lifetime < 1024, f"peak {lifetime:.0f} MB (VmHWM, imports included)"


def test_budget_applies_to_every_format(tmp_path):
    import av
    import nibabel as nib
    import tifffile

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((40, 50, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a.bmp"), np.zeros((40, 50), np.uint8))
    black_rgb_png(tmp_path / "a.png", 50, 80)
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((2, 40, 50), np.uint8), photometric="minisblack")
    nib.save(nib.Nifti1Image(np.zeros((50, 40, 3), np.float32), np.eye(4)), tmp_path / "a.nii.gz")
    with av.open(str(tmp_path / "a.mp4"), "w") as out:
        s = out.add_stream("h264", rate=5)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for packet in s.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
            out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    expected = {"a.jpg": "50 x 40", "a.bmp": "50 x 40", "a.png": "50 x 80", "a.tif": "TIFF page 0 of 50 x 40",
                "a.nii.gz": "slice along axis 2 of 50 x 40", "a.mp4": "video frame of 64 x 48"}
    for name, size in expected.items():
        with pytest.raises(ImageReadError, match="exceeds the pixel budget of 1,000 pixels") as err:
            list(read_frames(tmp_path / name, max_pixels=1000))
        assert size in err.value.reason, err.value.reason
        assert list(read_frames(tmp_path / name)) and list(read_frames(tmp_path / name, max_pixels=None)), name
    with pytest.raises(ImageReadError, match="64 x 64 pixels"):
        list(read_frames(PYDICOM_FILES / "MR_small.dcm", max_pixels=4095))
    assert len(list(read_frames(PYDICOM_FILES / "MR_small.dcm", max_pixels=4096))) == 1
    assert DEFAULT_MAX_PIXELS == 100_000_000


def test_arguments_are_checked_when_called(tmp_path):
    missing = tmp_path / "nope.nii"  # checked before any file access
    for kw in ({"nifti_axis": 3}, {"nifti_axis": -4}, {"video_stride": 0}, {"video_stride": 1.5},
               {"max_pixels": 0}, {"max_pixels": -5}):
        with pytest.raises(ValueError):
            read_frames(missing, **kw)
    read_frames(missing, nifti_axis=-3, video_stride=3, max_pixels=None)  # valid: nothing raised until iterated


# --- defect 7: frame by frame, bounded memory ---------------------------------------------------------------


def test_300_page_tiff_is_read_page_by_page(tmp_path):
    """300 pages of 1000 x 1000 (0.4 MB on disk): the previous reader decoded them all at once (+566 MB over the
    baseline here); page by page the peak grows by about one page."""
    import tifffile

    def pages():
        for i in range(300):
            yield np.full((1000, 1000), i % 256, np.uint8)

    tifffile.imwrite(tmp_path / "p.tif", pages(), shape=(300, 1000, 1000), dtype=np.uint8, photometric="minisblack",
                     compression="zlib", compressionargs={"level": 1})
    tifffile.imwrite(tmp_path / "w.tif", np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    line, base, peak, _ = peak_memory(tmp_path / "w.tif", tmp_path / "p.tif")
    assert line == "DECODED 300"
    assert peak - base < 100, f"baseline {base:.0f} MB, peak {peak:.0f} MB"
    frames = read_frames(tmp_path / "p.tif")
    assert [int(f.pixels[0, 0]) for f, _ in zip(frames, range(3))] == [0, 1, 2]


@pytest.mark.parametrize("kind", ["dicom", "nifti", "nifti.gz"])
def test_multiframe_dicom_and_nifti_are_read_frame_by_frame(tmp_path, kind):
    """120 frames of 512 x 512 int16 (60 MB decoded): the previous reader held them all (+126 MB over the
    baseline for DICOM: the pixel data and its array; NIfTI likewise); now the peak grows by a few MB."""
    import nibabel as nib
    import pydicom

    # non-zero everywhere: pages of zeros may never be resident, and would hide a whole-volume read
    vol = np.random.default_rng(0).integers(1, 3000, (512, 512, 1), dtype=np.int16) + np.arange(120, dtype=np.int16)
    if kind == "dicom":
        ds = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
        ds.Rows = ds.Columns = 512
        ds.NumberOfFrames = 120
        ds.PixelData = np.ascontiguousarray(vol.transpose(2, 0, 1)).tobytes()
        big, warm = tmp_path / "mf.dcm", PYDICOM_FILES / "MR_small.dcm"
        ds.save_as(big)
    else:
        suffix = ".nii" if kind == "nifti" else ".nii.gz"
        big, warm = tmp_path / f"v{suffix}", tmp_path / f"w{suffix}"
        nib.save(nib.Nifti1Image(vol, np.eye(4)), big)
        nib.save(nib.Nifti1Image(vol[:8, :8, :2], np.eye(4)), warm)
    del vol
    line, base, peak, _ = peak_memory(warm, big)
    assert line == "DECODED 120"
    assert peak - base < 30, f"baseline {base:.0f} MB, peak {peak:.0f} MB"


def test_nifti_slices_stream_and_keep_the_volume_range(tmp_path):
    """Slice by slice (memory-mapped .nii, one forward pass per pass over .nii.gz): the values, the whole-volume
    range and the frame order are those of the volume loaded whole."""
    import nibabel as nib

    rng = np.random.default_rng(3)
    i16 = rng.integers(-1000, 3000, (16, 18, 5), dtype=np.int16)
    img = nib.Nifti1Image(i16, np.eye(4))
    img.header.set_slope_inter(0.5, -20)
    for suffix in (".nii", ".nii.gz"):
        nib.save(img, tmp_path / f"v{suffix}")
        vol = np.asanyarray(nib.load(tmp_path / f"v{suffix}").dataobj)
        for axis in (0, 1, 2):
            frames = list(read_frames(tmp_path / f"v{suffix}", nifti_axis=axis))
            assert len(frames) == vol.shape[axis]
            for k, f in enumerate(frames):
                np.testing.assert_array_equal(f.pixels, np.flipud(np.take(vol, k, axis=axis).T))
                assert f.pixels.dtype == vol.dtype and f.meta["range"] == (float(vol.min()), float(vol.max()))


def test_multiframe_dicom_frames_equal_pydicoms_whole_array():
    from pydicom import dcmread

    ds = dcmread(PYDICOM_DATA / "emri_small_RLE.dcm")
    whole = ds.pixel_array
    frames = list(read_frames(PYDICOM_DATA / "emri_small_RLE.dcm"))
    assert [f.frame for f in frames] == list(range(10))
    for f, ref in zip(frames, whole):
        np.testing.assert_array_equal(f.pixels, ref)


# --- defect 14 (io part): reasons that do not mislead, folders that are not skipped silently -----------------


def test_symlink_loop_is_named(tmp_path):
    loop = tmp_path / "loop.png"
    os.symlink(loop.name, loop)
    with pytest.raises(ImageReadError, match="symbolic link loop"):
        list(read_frames(loop))
    dangling = tmp_path / "gone.png"
    os.symlink("missing.png", dangling)
    with pytest.raises(ImageReadError, match="broken symbolic link"):
        list(read_frames(dangling))


def test_random_bytes_named_dcm_are_not_dicom(tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageReadError, match="not a DICOM file"):
        list(read_frames(junk))
    text = tmp_path / "notes.dcm"
    text.write_text("hello, this is text\n" * 50)
    with pytest.raises(ImageReadError, match="not a DICOM file"):
        list(read_frames(text))


_UNREADABLE = """
import sys
from medgap.io import CollectionError, collect
try:
    collect([sys.argv[1]])
    print("SKIPPED SILENTLY")
except CollectionError as e:
    print("ERROR", e)
"""


def test_unreadable_subfolder_is_an_error(tmp_path):
    """The previous scan left the locked folder's files out without a word. Root reads every folder, so as root
    the scan runs in a subprocess without the capabilities that override file permissions (setpriv)."""
    import shutil

    root = tmp_path / "collection"
    (root / "a").mkdir(parents=True)
    (root / "locked").mkdir()
    cv2.imwrite(str(root / "a" / "x.png"), np.zeros((4, 4), np.uint8))
    cv2.imwrite(str(root / "locked" / "y.png"), np.zeros((4, 4), np.uint8))
    os.chmod(root / "locked", 0o000)
    try:
        if os.geteuid() != 0:
            with pytest.raises(CollectionError, match=r"locked: cannot list this folder .*chmod"):
                collect([root])
            return
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a folder unreadable")
        cmd = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c",
               _UNREADABLE, str(root)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        assert out.stdout.startswith("ERROR"), (out.stdout, out.stderr[-500:])
        assert "locked: cannot list this folder (Permission denied)" in out.stdout and "chmod" in out.stdout
    finally:
        os.chmod(root / "locked", 0o755)


def test_missing_folder_in_a_walk_is_reported(tmp_path):
    # os.walk's own root error (a file passed as a group folder is handled by collect; a vanished root is not)
    with pytest.raises(CollectionError, match="cannot list this folder"):
        scan_folder(tmp_path / "vanished")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"path,group\na.png,x\nb.png,y,z,w\n", r"malformed CSV manifest \(Expected 2 fields in line 3, saw 4\)"),
        (b"path,group\na.png,x\nb\xe9.png,y\n", r"not UTF-8 text at line 3"),
        (b"", r"empty manifest"),
        (b'path,group\n"a.png,x\nb.png,y\n', r"malformed CSV manifest"),
    ],
    ids=["extra fields", "latin-1", "empty", "open quote"],
)
def test_malformed_manifest_is_a_collection_error(tmp_path, content, reason):
    csv = tmp_path / "manifest.csv"
    csv.write_bytes(content)
    with pytest.raises(CollectionError, match=reason) as err:
        read_manifest(csv)
    assert str(err.value).startswith(str(csv))
    with pytest.raises(CollectionError):
        collect(manifest=csv)


def test_a_panic_read_error_pickles_after_dask_distributed_is_imported(tmp_path):
    """Importing distributed installs tblib's pickling of exception chains; a read error whose context was the
    decoder's PanicException then failed to pickle (found when the suite ran the Dask tests first)."""
    pytest.importorskip("distributed")
    import distributed  # noqa: F401

    with pytest.raises(ImageReadError) as err:
        list(read_frames(damaged_rle(tmp_path)))
    assert err.value.__context__ is None and err.value.__cause__ is None
    back = pickle.loads(pickle.dumps(err.value))
    assert (back.path, back.reason) == (err.value.path, err.value.reason)
