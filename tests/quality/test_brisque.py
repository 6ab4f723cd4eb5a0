"""BRISQUE against the authors' release: MATLAB anchor values, a float64 restatement of the formulas
(tests/quality/brisque_reference.py, which decides exact zeros of MSCN on its own terms) on images with flat
areas at both scales and on every image of ../shared/data (slow), and the release's model files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import brisque_reference as ref
from medgap.quality import create_metric
from medgap.quality.brisque import (
    MIN_SIDE,
    _mscn,
    brisque,
    brisque_features,
    default_model,
    load_model,
    matlab_gray,
    matlab_imresize_half,
)
from medgap.quality.brisque.model import ModelFileError

DATA = Path(__file__).resolve().parents[2] / "src" / "medgap" / "quality" / "brisque" / "data"


def test_packaged_model_is_the_release(shared_reference):
    """The shipped allmodel/allrange/notice are byte-identical to the release (checksums in SOURCE.md)."""
    source = (shared_reference / "brisque_release" / "SOURCE.md").read_text()
    sums = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})\s+(\S+)$", source, re.M))
    for name, packaged in [("allmodel", "allmodel"), ("allrange", "allrange"), ("readme.txt", "NOTICE-UT-Austin.txt")]:
        assert hashlib.sha256((DATA / packaged).read_bytes()).hexdigest() == sums[name]
    m = default_model()
    assert m.support_vectors.shape == (774, 36) and m.gamma == 0.05 and m.rho == -153.591


# MATLAB runs of the release (../shared/reference/matlab_anchors). goldhill, I01 and I04 have no flat pixels and
# must match to 1e-3. I03 (1.5% flat pixels), I06, I08 and I19 contain constant areas where MATLAB's MSCN is
# rounding noise; medgap's policy (MSCN = 0 there) gives the documented differences (docs/brisque.md). I03 is
# -0.0016 (-0.0013 with the former fixed 1e-8 floor, which also zeroed one genuine half-scale deviation of
# 8.5e-9; keeping it moves one AGGD shape by a grid step, 3e-4 points).
ANCHOR_TOL = {
    "piq_goldhill.gif": 1e-3,
    "piq_I01.BMP": 1e-3,
    "pyiqa_dist_I04.bmp": 1e-3,
    "pyiqa_dist_I03.bmp": 2e-3,
    "pyiqa_dist_I06.bmp": 5e-3,
    "pyiqa_dist_I08.bmp": 0.6,
    "pyiqa_dist_I19.bmp": 2.2,
}


@pytest.mark.parametrize("name", sorted(ANCHOR_TOL))
def test_matlab_anchor(shared_reference, name):
    table = pd.read_csv(shared_reference / "matlab_anchors" / "brisque_matlab.csv").set_index("file")
    img = np.array(Image.open(shared_reference / "matlab_anchors" / name))  # gif: palette indices, as MATLAB imread
    result = brisque(img)
    assert result.score == pytest.approx(table.loc[name, "matlab_brisque"], abs=ANCHOR_TOL[name])
    assert (result.flat_fraction > 0) == (ANCHOR_TOL[name] > 1e-3)


def test_reference_pipeline_reproduces_anchor(shared_reference):
    """The slow restatement reaches the same MATLAB value, so it is a valid yardstick for the fast path."""
    img = np.array(Image.open(shared_reference / "matlab_anchors" / "piq_I01.BMP"))
    feats, _ = ref.features(ref.rgb2gray_uint8(img))
    s = ref.score(feats, (DATA / "allmodel").read_text(), (DATA / "allrange").read_text())
    assert s == pytest.approx(10.259409019043119, abs=1e-3)


def test_gray_rule_matches_rgb2gray():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    np.testing.assert_array_equal(matlab_gray(rgb), ref.rgb2gray_uint8(rgb))
    # float colour goes through uint8() first (round half away from zero, saturate)
    f = rgb.astype(np.float64) + 0.4
    np.testing.assert_array_equal(matlab_gray(f), ref.rgb2gray_uint8(rgb))


def test_resize_matches_reference():
    rng = np.random.default_rng(1)
    for shape in [(17, 16), (64, 33), (101, 200)]:
        img = rng.random(shape) * 255
        np.testing.assert_allclose(matlab_imresize_half(img), ref.imresize_half(img), rtol=1e-12, atol=1e-10)


# Images of ../shared/data with flat areas (black borders, background): in manifest order, per modality, files with
# at least 2% constant-window pixels and sides up to 800 px, evenly spaced; plus the photo where the former fixed
# floor (|I - mu| <= 1e-8) zeroed 69 genuine half-scale deviations and moved the score by 0.35.
FLAT_IMAGES = [
    "cxr/000001-2.jpg",
    "cxr/000002-11-b.jpg",
    "cxr/000002-16.jpg",
    "cxr/000002-2.jpg",
    "cxr/000010-5.jpg",
    "cxr/000017-1.jpg",
    "cxr/16724_1_1.jpg",
    "ct/16745_5_2.png",
    "ct/ID_0009_AGE_0048_CONTRAST_1_CT.dcm",
    "ct/ID_0021_AGE_0067_CONTRAST_1_CT.dcm",
    "ct/ID_0031_AGE_0039_CONTRAST_1_CT.dcm",
    "ct/ID_0042_AGE_0071_CONTRAST_1_CT.dcm",
    "ct/ID_0058_AGE_0082_CONTRAST_0_CT.dcm",
    "ct/ID_0079_AGE_0071_CONTRAST_0_CT.dcm",
    "ct/ID_0091_AGE_0072_CONTRAST_0_CT.dcm",
    "mr/cheng2017_0196_meningioma.jpg",
    "mr/cheng2017_0619_meningioma.jpg",
    "mr/cheng2017_0939_pituitary.jpg",
    "mr/cheng2017_1597_pituitary.jpg",
    "mr/cheng2017_2077_glioma.jpg",
    "mr/cheng2017_2545_glioma.jpg",
    "mr/cheng2017_2869_glioma.jpg",
    "pocus/images/covid/Cov_combatting_Image3_frame0.jpg",
    "pocus/images/pneumonia/Pneu_Avi_Video_002_frame0.jpg",
    "pocus/images/pneumonia/Pneu_liftl_pneu_case3_clip3_frame0.jpg",
    "pocus/images/pneumonia/Pneu_northumbria_0409_set6_vid2_frame0.jpg",
    "pocus/images/regular/Reg_Avi_Image010.jpg",
    "pocus/images/regular/Reg_Image_182106_crop_frame0.jpg",
    "pocus/images/regular/Reg_pat1Image_133232_frame0.jpg",
    "natural/n04332243_strainer.JPEG",
]


def _gray(path):
    from medgap.io import read_frames, to_gray255

    return to_gray255(next(read_frames(path)))


def test_agrees_with_release_restatement_at_both_scales(shared_data):
    """Issue 10's done-when: on 30 images with flat areas, each scale's 18 features agree with the restatement
    (median over images of the worst relative feature difference <= 1e-4, worst <= 1e-3), and so do the scores.

    With the former fixed floor (|I - mu| <= 1e-8) this fails at the half scale: feature median 7.8e-4, max 0.035;
    scores median 4.7e-3, max 0.35 (the strainer); its full scale agreed. Measured now: features 1.5e-13 (full)
    and 2.4e-13 (half) median, scores 6e-12 median, 2.5e-11 max."""
    text_model, text_range = (DATA / "allmodel").read_text(), (DATA / "allrange").read_text()
    model = default_model()
    worst = {"full": [], "half": [], "score": []}
    for path in FLAT_IMAGES:
        gray = _gray(shared_data / path)
        fast, flat = brisque_features(gray)
        slow, flat_ref = ref.features(gray)
        assert flat == flat_ref > 0.01, path
        rel = np.abs(fast - slow) / np.maximum(np.abs(slow), 1e-6)
        worst["full"].append(rel[:18].max())
        worst["half"].append(rel[18:].max())
        worst["score"].append(abs(model.predict_release(fast) - ref.score(slow, text_model, text_range)))
    summary = {k: (float(np.median(v)), float(np.max(v))) for k, v in worst.items()}
    print("median, max:", summary)
    for key, (median, top) in summary.items():
        assert median <= 1e-4 and top <= 1e-3, (key, median, top)


def test_exact_zeros_match_the_reference_pixel_for_pixel(shared_data):
    """The pixels whose MSCN is set to 0 (constant windows by a range tolerance, exact cancellations by a rounding
    tolerance on I - mu) are exactly those the restatement finds with its own tests (window range from sliding
    windows; I - mu = 0 decided from the data by distance classes), at both scales; the strainer's half scale has
    69 genuine deviations under 1e-8 that must keep their value."""
    from scipy.signal import correlate2d

    for path, minimum_cancelled in [("natural/n04332243_strainer.JPEG", 0), ("mr/cheng2017_2077_glioma.jpg", 50)]:
        img = _gray(shared_data / path)
        for scale in range(2):
            m, _ = _mscn(np.ascontiguousarray(img))
            flat = ref.flat_mask(img)
            exact = ref.exact_zero_mask(img)
            np.testing.assert_array_equal(m == 0, flat | exact, err_msg=f"{path} scale {scale + 1}")
            if scale == 0:
                assert (exact & ~flat).sum() >= minimum_cancelled  # symmetric steps (rows 0 0 1 1 1 2 2) in MR
            if scale == 1 and path.startswith("natural"):
                d = np.abs(img - correlate2d(img, ref.fspecial_gaussian(), mode="same"))
                assert ((d <= 1e-8) & (m != 0)).sum() == 69
            img = matlab_imresize_half(img)


def test_exact_zero_rule_on_constructed_windows():
    """Constant areas and exact cancellations give MSCN 0; a genuine deviation under 1e-8 does not (the defect
    of the former fixed floor)."""
    img = np.random.default_rng(7).random((64, 64)) * 255
    img[5:25, 5:25] = 3.0  # constant, non-zero
    img[10:17, 40:47] = np.array([0, 0, 1, 1, 1, 2, 2], float)[:, None]  # symmetric step: I - mu = 0 at (13, 43)
    img[40:47, 40:47] = 3.0
    img[40, 40] += 5e-5  # the window around (43, 43) spans 5e-5; its corner weight makes I - mu about -8e-9
    m, nflat = _mscn(img)
    assert (m[8:22, 8:22] == 0).all() and nflat >= 14 * 14
    assert m[13, 43] == 0 and m[13, 42] != 0  # the neighbour's window is not symmetric
    d = img[43, 43] - (ref.fspecial_gaussian()[0, 0] * 5e-5 + 3.0)
    assert 1e-9 < abs(d) < 1e-8 and m[43, 43] != 0 and m[43, 43] < 0
    # the tolerances follow the image's scale: 16-bit values (and a negative offset) zero the same pixels
    for scaled in (img * 257.0, img * 257.0 - 30000.0):
        m16, nflat16 = _mscn(scaled)
        np.testing.assert_array_equal(m16 == 0, ref.flat_mask(scaled) | ref.exact_zero_mask(scaled))
        assert nflat16 == ref.flat_mask(scaled).sum()


MODALITIES = ["natural", "cxr", "ct", "mr", "pocus"]


@pytest.mark.slow  # 10-20 minutes: the restatement is slow on 785 images
@pytest.mark.parametrize("modality", MODALITIES)
def test_fast_path_matches_float64_reference_on_shared_data(shared_data, modality):
    """Every image of ../shared/data: features to 1e-5 relative, scores to 1e-3, flat fraction exactly."""
    from medgap.io import read_frames, to_gray255

    manifest = pd.read_csv(shared_data / "MANIFEST.csv")
    paths = manifest.path[manifest.modality == modality]
    text_model, text_range = (DATA / "allmodel").read_text(), (DATA / "allrange").read_text()
    model = default_model()
    worst_feat = worst_score = 0.0
    for path in paths:
        gray = to_gray255(next(read_frames(shared_data / path)))
        fast, flat = brisque_features(gray)
        slow, flat_ref = ref.features(gray)
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-12, err_msg=path)
        assert flat == flat_ref, path
        s_fast = model.predict_release(fast)
        s_ref = ref.score(slow, text_model, text_range)
        assert s_fast == pytest.approx(s_ref, abs=1e-3), path
        worst_feat = max(worst_feat, float(np.max(np.abs(fast - slow) / np.maximum(np.abs(slow), 1e-12))))
        worst_score = max(worst_score, abs(s_fast - s_ref))
    assert len(paths) > 90
    print(f"{modality}: {len(paths)} images, worst feature rel. diff {worst_feat:.2e}, worst score diff {worst_score:.2e}")


@pytest.mark.parametrize(
    "image, reason",
    [
        (np.full((64, 64), 100.0), "constant"),
        (np.zeros((64, 64)), "constant"),
        (np.random.default_rng(0).random((MIN_SIDE - 1, 64)) * 255, "at least 16 pixels"),
        (np.where(np.eye(64) > 0, np.nan, 10.0), "NaN or Inf"),
        (np.where(np.eye(64) > 0, np.inf, 10.0), "NaN or Inf"),
        (np.zeros((4, 4, 4, 4)), "expected a 2-D"),
    ],
)
def test_invalid_images_raise_with_reason(image, reason):
    with pytest.raises(ValueError, match=reason):
        brisque(image)


def test_smallest_accepted_image_scores():
    img = np.random.default_rng(3).random((MIN_SIDE, MIN_SIDE)) * 255
    assert np.isfinite(brisque(img).score)


def test_flat_fraction_counts_constant_background():
    rng = np.random.default_rng(4)
    img = np.full((128, 128), 80.0)
    img[:, 64:] = rng.random((128, 64)) * 255  # right half textured, left half flat at 80
    r = brisque(img)
    # flat pixels: columns whose 7x7 window stays in the constant part and off the zero padding
    expected = ref.flat_mask(img).mean()
    assert r.flat_fraction == expected and 0.3 < expected < 0.5


def test_custom_model_files(tmp_path):
    """A user's own LIBSVM model + range: loading path exercised with real files made here."""
    text = (DATA / "allmodel").read_text()
    shifted = text.replace("rho -153.591", "rho -143.591")
    (tmp_path / "model").write_text(shifted)
    (tmp_path / "range").write_text((DATA / "allrange").read_text())
    img = np.random.default_rng(5).random((96, 80)) * 255
    base = create_metric("brisque")(img)["brisque"]
    custom = create_metric("brisque", model=tmp_path / "model", range=tmp_path / "range")(img)["brisque"]
    assert custom == pytest.approx(base - 10.0, abs=1e-9)

    (tmp_path / "bad").write_text("not a model\n")
    with pytest.raises(ModelFileError, match="bad"):
        load_model(tmp_path / "bad", tmp_path / "range")
    with pytest.raises(ValueError, match="both"):
        create_metric("brisque", model=tmp_path / "model")
