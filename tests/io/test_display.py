"""Display options for the sensitivity analysis (issue 10, item 3): CT window presets in HU, MATLAB-style
resize to a common short side, foreground crop. References: pydicom's elements with the window formula
restated here, Pillow's bicubic resize (an independent C implementation of the same antialiased Keys kernel),
medgap.quality's imresize_half (separate code checked against the BRISQUE release), and drawn shapes."""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest
from PIL import Image

from medgap.io import Display, DisplayError, read_frames, to_gray255
from medgap.io.display import CT_WINDOWS, foreground_crop, foreground_mask, parse_window
from medgap.io.resize import imresize, resize_short

RNG = np.random.default_rng(3)


def _linear_window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    # DICOM PS3.3 C.11.2.1.2.1 LINEAR, mapped to 0-255
    return np.clip((x - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0) * 255.0


@pytest.fixture(scope="module")
def ct(shared_data):
    path = sorted((shared_data / "ct").glob("*.dcm"))[0]
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return next(iter(read_frames(path))), hu


def test_parse_window():
    assert parse_window("Lung") == "lung" and parse_window("file") == "file"
    assert parse_window("40,400") == (40.0, 400.0) and parse_window("-600, 1500") == (-600.0, 1500.0)
    with pytest.raises(DisplayError, match="Did you mean 'lung'"):
        parse_window("lnug")
    with pytest.raises(DisplayError, match="width"):
        parse_window("40,0")
    with pytest.raises(DisplayError):
        Display(window="soft")
    with pytest.raises(DisplayError, match="resize_short"):
        Display(resize_short=0)


@pytest.mark.parametrize("window", ["lung", "mediastinum", "bone", "brain", "-100,700"])
def test_ct_presets_are_applied_in_hounsfield_units(ct, window):
    frame, hu = ct
    center, width = CT_WINDOWS.get(window) or map(float, window.split(","))
    d = Display(window=window)
    assert d.note(frame) == ""
    np.testing.assert_allclose(d.prepare(frame), _linear_window(hu, center, width), atol=1e-9)


def test_file_and_minmax_on_ct(ct):
    frame, hu = ct
    np.testing.assert_array_equal(Display().prepare(frame), to_gray255(frame))
    c, w = frame.meta["window"]
    np.testing.assert_allclose(Display().prepare(frame), _linear_window(hu, c, w), atol=1e-9)
    expected = (hu - hu.min()) * 255.0 / (hu.max() - hu.min())
    np.testing.assert_allclose(Display(window="minmax").prepare(frame), expected, atol=1e-9)


def test_presets_leave_8bit_and_non_ct_images_alone(shared_data, tmp_path):
    jpeg_ct = next(iter(read_frames(sorted((shared_data / "ct").glob("*.jpg"))[0])))
    for window in ("lung", "40,400", "minmax"):
        d = Display(window=window)
        np.testing.assert_array_equal(d.prepare(jpeg_ct), to_gray255(jpeg_ct))
    assert "not a CT DICOM" in Display(window="lung").note(jpeg_ct)
    assert "not applied" in Display(window="40,400").note(jpeg_ct)
    # C,W numbers do apply to >8-bit gray data in its own units (a 16-bit PNG here)
    img = RNG.integers(0, 4000, (20, 30), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "x.png"), img)
    png = next(iter(read_frames(tmp_path / "x.png")))
    np.testing.assert_allclose(Display(window="2000,1000").prepare(png), _linear_window(img, 2000, 1000), atol=1e-9)
    assert "not a CT DICOM" in Display(window="lung").note(png)


def test_resize_matches_pillow_bicubic_inside_the_border():
    """Pillow's BICUBIC (a = -0.5, support widened by 1/scale when shrinking) on mode 'F' is the same filter;
    it renormalises truncated taps at the border where MATLAB mirrors, so compare away from the border."""
    img = cv2.GaussianBlur(RNG.uniform(0, 255, (157, 211)), (0, 0), 1.5)
    for n in (61, 100, 240):  # shrink by 0.39, by 0.64, enlarge by 1.53
        out = resize_short(img, n)
        rows, cols = out.shape
        assert rows == n and cols == int(np.ceil(n * 211 / 157))
        ref = np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize((cols, rows), Image.BICUBIC))
        m = int(np.ceil(3 * max(157 / n, 1)))
        assert np.abs(out[m:-m, m:-m] - ref[m:-m, m:-m]).max() < 2e-3  # float32 in Pillow


def test_resize_half_matches_the_brisque_imresize():
    from medgap.quality._matlab import imresize_half

    img = RNG.uniform(0, 255, (64, 90))
    np.testing.assert_allclose(imresize(img, (32, 45)), imresize_half(img), atol=1e-10)
    np.testing.assert_allclose(resize_short(img, 64), img)  # already the size: unchanged


def test_resize_colour_is_per_channel():
    rgb = RNG.uniform(0, 255, (40, 50, 3))
    out = resize_short(rgb, 20)
    assert out.shape == (20, 25, 3)
    np.testing.assert_allclose(out[..., 1], resize_short(rgb[..., 1], 20), atol=1e-12)


def _phantom() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    g = np.full((120, 160), 12.0) + RNG.normal(0, 1.0, (120, 160))  # noisy, near-constant surround
    g[30:90, 40:130] = RNG.uniform(0, 255, (60, 90))  # the imaged region, dark pixels included
    g[50:90, 70:100] = 12.0  # dark content touching the surround (a shadow) inside the convex region
    g[5:7, 5:7] = 200  # a speck, removed by the opening
    return g, (30, 90, 40, 130)


def test_foreground_crop_and_mask():
    g, box = _phantom()
    crop, got = foreground_crop(g)
    assert got == box and crop.shape == (60, 90)
    mask = foreground_mask(g)
    expected = np.zeros_like(mask)
    expected[30:90, 40:130] = True
    assert (mask != expected).sum() < 0.01 * expected.sum()  # texture pixels at the edge that match the surround
    photo = RNG.uniform(0, 255, (50, 70))  # no dominant border value: whole image
    assert foreground_crop(photo)[1] == (0, 50, 0, 70)
    assert foreground_crop(np.zeros((30, 40)))[1] == (0, 30, 0, 40)


def test_display_order_crop_then_resize(ct):
    frame, hu = ct
    d = Display(window="mediastinum", resize_short=128, foreground=True)
    _, (r0, r1, c0, c1) = foreground_crop(_linear_window(hu, 50, 350))
    out = d.prepare(frame)
    assert min(out.shape) == 128 and out.min() >= 0 and out.max() <= 255
    assert abs(out.shape[1] / out.shape[0] - (c1 - c0) / (r1 - r0)) < 0.02
    assert (r1 - r0) < hu.shape[0]  # the CT's air and table were cropped
    rgb = d.prepare_rgb(frame)
    assert rgb.shape == (*out.shape, 3)
    np.testing.assert_allclose(rgb[..., 0], out, atol=1e-9)
    assert Display().is_default and not d.is_default
    assert d.summary() == "window mediastinum (C 50, W 350); short side 128 px; foreground crop"


def test_display_fields_are_options_a_config_can_inherit():
    from dataclasses import dataclass, fields

    @dataclass
    class StudyLike(Display):
        unit: str = "patient"

    cfg = StudyLike(window="bone", resize_short=256)
    assert Display.from_config(cfg) == Display(window="bone", resize_short=256)
    assert {f.name: f.metadata["help"] != "" for f in fields(Display)} == {
        "window": True, "resize_short": True, "foreground": True}
    with pytest.raises(DisplayError):
        StudyLike(window="bones")
