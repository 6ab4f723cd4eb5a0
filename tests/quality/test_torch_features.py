"""The batched torch backend of BRISQUE and NIQE (medgap.quality.torch_features) against the NumPy/numba path:
features within 1e-6 (relative), scores within 1e-4, the same errors word for word; images of mixed sizes in one
call; synthetic edge cases (constant patches, the smallest sizes, odd sizes, one-sided products); the scoring
engine's --device path; and no torch import without a device."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from medgap.io import read_frames, to_gray255  # noqa: E402
from medgap.quality import create_metric, get_metric_info, list_metrics  # noqa: E402
from medgap.quality.brisque import brisque_features, default_model  # noqa: E402
from medgap.quality.niqe import _niqe_from_features, niqe_features  # noqa: E402
from medgap.quality.niqe import default_model as niqe_model  # noqa: E402
from medgap.quality.torch_features import (  # noqa: E402
    brisque_features_torch,
    imresize_half_torch,
    niqe_features_torch,
)

MODALITIES = ("natural", "cxr", "ct", "mr", "pocus")


def _numpy(fn, images):
    out = []
    for g in images:
        try:
            out.append(fn(g))
        except ValueError as e:
            out.append(e)
    return out


def _assert_brisque_equal(images, names):
    got = brisque_features_torch(images)
    want = _numpy(brisque_features, images)
    worst = 0.0
    for name, a, b in zip(names, got, want):
        if isinstance(b, ValueError):
            assert isinstance(a, ValueError) and str(a) == str(b), name
            continue
        assert not isinstance(a, BaseException), (name, a)
        (fa, flat_a), (fb, flat_b) = a, b
        np.testing.assert_allclose(fa, fb, rtol=1e-6, atol=1e-12, err_msg=name)
        assert flat_a == flat_b, name
        score_a, score_b = default_model().predict_release(fa), default_model().predict_release(fb)
        assert abs(score_a - score_b) <= 1e-4, name
        worst = max(worst, float(np.max(np.abs(fa - fb) / np.maximum(np.abs(fb), 1e-12))))
    return worst


def _assert_niqe_equal(images, names):
    got = niqe_features_torch(images)
    want = _numpy(lambda g: niqe_features(g)[0], images)
    for name, a, b in zip(names, got, want):
        if isinstance(b, ValueError):
            assert isinstance(a, ValueError) and str(a) == str(b), name
            continue
        assert a.shape == b.shape and (np.isnan(a) == np.isnan(b)).all(), name  # the same empty sides
        ok = ~np.isnan(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-6, atol=1e-12, err_msg=name)
        try:
            sb = _niqe_from_features(b, niqe_model())[0]
        except ValueError as e:
            with pytest.raises(ValueError, match="undefined"):
                _niqe_from_features(a, niqe_model())
            continue
        assert abs(_niqe_from_features(a, niqe_model())[0] - sb) <= 1e-4, name


def _real(shared_data, per_modality: int | None):
    manifest = pd.read_csv(shared_data / "MANIFEST.csv")
    names = []
    for m in MODALITIES:
        paths = list(manifest.path[manifest.modality == m])
        names += paths if per_modality is None else paths[:per_modality]
    return [to_gray255(next(read_frames(shared_data / p))) for p in names], names


def test_real_images_of_mixed_sizes_in_one_call(shared_data):
    """Ten real images of five modalities (several sizes: batches by size) in one call each."""
    images, names = _real(shared_data, 2)
    assert len({g.shape for g in images}) > 2
    _assert_brisque_equal(images, names)
    _assert_niqe_equal(images, names)


def _synthetic():
    rng = np.random.default_rng(7)
    noise = rng.normal(128, 30, (120, 150)).clip(0, 255)
    bordered = noise.copy()
    bordered[:, :40] = 0.0  # a black border: constant windows of zeros
    bordered[:30, 60:] = 200.0  # and a constant non-zero patch
    nearly = noise.copy()
    nearly[40:90, 50:110] = 50.0 + 1e-9 * rng.random((50, 60))  # constant within 1e-9: flat, not a cancellation
    stepped = np.kron(rng.integers(0, 4, (20, 25)), np.ones((6, 6))) * 60.0  # flat tiles with steps
    return {
        "noise": noise,
        "constant patches": bordered,
        "flat tiles": stepped,
        "nearly constant patch": nearly,
        "smallest (16x16)": rng.integers(0, 256, (16, 16)).astype(float),
        "odd size (17x23)": rng.integers(0, 256, (17, 23)).astype(float),
        "odd size (97x131)": rng.normal(100, 20, (97, 131)),
        "constant": np.full((40, 40), 9.0),
        "too small (15x40)": rng.integers(0, 256, (15, 40)).astype(float),
        "NaN": np.where(rng.random((40, 40)) < 0.01, np.nan, 50.0 + rng.random((40, 40))),
        "two values": np.tile([[0.0, 255.0]], (24, 12)),  # stripes: no negative products along a row shift
        "same size as noise": rng.normal(90, 10, (120, 150)),  # batched with "noise"
    }


def test_synthetic_edge_cases_match_including_errors():
    cases = _synthetic()
    _assert_brisque_equal(list(cases.values()), list(cases))
    big = {k: v for k, v in cases.items() if min(v.shape) >= 96 or "small" in k or k == "NaN"}
    big["niqe odd (193x250)"] = np.random.default_rng(3).normal(120, 25, (193, 250))
    big["niqe black half"] = np.hstack([np.zeros((192, 96)), np.random.default_rng(4).normal(120, 25, (192, 96))])
    _assert_niqe_equal(list(big.values()), list(big))


def test_half_scale_resize_matches_numpy():
    from medgap.quality._matlab import imresize_half

    rng = np.random.default_rng(1)
    imgs = [rng.normal(0, 50, s) for s in ((33, 47), (8, 9), (200, 3))]
    for img in imgs:
        got = imresize_half_torch(torch.from_numpy(img)[None])[0].numpy()
        np.testing.assert_allclose(got, imresize_half(img), rtol=0, atol=1e-10)


def test_metric_info_says_which_metrics_accept_a_device():
    on_device = list_metrics(accepts_device=True)
    assert {"brisque", "niqe", "cnn-wsp"} <= set(on_device)
    assert "piqe" not in on_device and not get_metric_info("piqe").accepts_device
    assert get_metric_info("brisque").torch_backend and not get_metric_info("brisque").network
    m = create_metric("brisque").on_device()
    assert m.network and m.version == create_metric("brisque").version and m.info.columns[0] == "brisque"
    with pytest.raises(ValueError, match="no torch backend"):
        create_metric("piqe").on_device()


def test_scoring_with_a_device_gives_the_numpy_rows(shared_data, tmp_path):
    """medgap.score with device='cpu' (the network path, batched) vs without (numba in the engine)."""
    import medgap

    manifest = pd.read_csv(shared_data / "MANIFEST.csv")
    paths = [shared_data / p for m in MODALITIES for p in list(manifest.path[manifest.modality == m])[:2]]
    a = medgap.score(paths, ["brisque", "niqe"])
    b = medgap.score(paths, ["brisque", "niqe"], device="cpu", batch_size=4)
    assert list(a.columns) == list(b.columns) and (a.item_id == b.item_id).all()
    for c in ("brisque", "brisque_flat_fraction", "niqe", "niqe_nan_block_fraction"):
        np.testing.assert_allclose(b[c].to_numpy(float), a[c].to_numpy(float), rtol=0, atol=1e-4, err_msg=c)
    assert (a.error.isna() == b.error.isna()).all()


def test_no_torch_without_a_device(tmp_path):
    """Scoring BRISQUE and NIQE without a device never imports torch (it is an optional dependency)."""
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.random.default_rng(0).integers(0, 256, (100, 120), dtype=np.uint8))
    code = textwrap.dedent(f"""
        import sys, medgap
        df = medgap.score({str(tmp_path / 'a.png')!r}, ["brisque", "niqe"])
        assert df.error.isna().all(), df.error
        print("torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.slow  # every image of ../shared/data through both paths (minutes on 2 cores)
@pytest.mark.parametrize("modality", MODALITIES)
def test_every_shared_image_matches(shared_data, modality):
    manifest = pd.read_csv(shared_data / "MANIFEST.csv")
    names = list(manifest.path[manifest.modality == modality])
    images = [to_gray255(next(read_frames(shared_data / p))) for p in names]
    worst = _assert_brisque_equal(images, names)
    _assert_niqe_equal(images, names)
    print(f"{modality}: {len(images)} images, worst BRISQUE feature rel. difference {worst:.1e}")
