"""BRISQUE against the authors' release: MATLAB anchor values, a float64 restatement of the formulas
(tests/quality/brisque_reference.py) on every image of ../shared/data, and the release's model files."""

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
from medgap.quality.brisque import MIN_SIDE, brisque, brisque_features, default_model, load_model, matlab_gray
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
# rounding noise; medgap's flat policy (MSCN = 0 there) gives the documented differences (docs/brisque.md).
ANCHOR_TOL = {
    "piq_goldhill.gif": 1e-3,
    "piq_I01.BMP": 1e-3,
    "pyiqa_dist_I04.bmp": 1e-3,
    "pyiqa_dist_I03.bmp": 1.5e-3,
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
    from medgap.quality.brisque import matlab_imresize_half

    for shape in [(17, 16), (64, 33), (101, 200)]:
        img = rng.random(shape) * 255
        np.testing.assert_allclose(matlab_imresize_half(img), ref.imresize_half(img), rtol=1e-12, atol=1e-10)


MODALITIES = ["natural", "cxr", "ct", "mr", "pocus"]


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
    expected = ref.flat_mask(img, 2.0**-20).mean()
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
