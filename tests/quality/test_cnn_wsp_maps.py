"""Weight maps of the learned quality model (issue 12, item 4): the relative map against an independent bilinear
resize (OpenCV) and its normalisation, a model whose weight convolution is set by hand to favour bright cells
peaks where the image is bright, the map comes from the same pass as the metric's score, the overlay files
(figure and image-sized overlay) and ``weightmaps.csv``, ``medgap train-quality`` writing ``weightmaps/``, and
the study report's section when cnn-wsp is among the metrics."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from medgap.models.wsp import QualityNet, relative_weight_map  # noqa: E402
from medgap.quality.cnn_wsp import _make_cnn_wsp, load_quality_model, weight_maps  # noqa: E402
from medgap.report.weight_maps import (  # noqa: E402
    FIGURE_DPI,
    figure_size,
    overlay_rgb,
    weight_summary,
    write_weight_maps,
)
from medgap.train.quality import TrainQualityConfig, train_quality  # noqa: E402


def test_relative_map_is_a_bilinear_upsampling_divided_by_its_mean():
    """Against OpenCV's INTER_LINEAR (half-pixel centres, as align_corners=False) in float64: the map's mean is
    1 (its sum H x W), a map of zeros stays zero (no NaN)."""
    rng = np.random.default_rng(0)
    w = np.maximum(rng.normal(size=(2, 1, 5, 7)), 0.0)
    got = relative_weight_map(torch.from_numpy(w), (33, 50)).numpy()
    for n in range(2):
        up = cv2.resize(w[n, 0], (50, 33), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(got[n], up / up.mean(), rtol=1e-5, atol=1e-6)
        assert got[n].sum() == pytest.approx(33 * 50, rel=1e-5)
    zero = relative_weight_map(torch.zeros(1, 1, 4, 4), (8, 9)).numpy()
    assert zero.shape == (1, 8, 9) and not zero.any()


class _CellMeans(nn.Module):
    """A parameter-free backbone: each channel's mean over 8x8 cells (a 64-px input gives an 8x8 feature map)."""

    num_features = 3

    def forward_features(self, x):
        return F.avg_pool2d(x, 8)


def _brightness_model():
    """The weight map is ReLU(sum of the channels' cell means): bright cells weigh most."""
    net = QualityNet(_CellMeans(), "wsp").eval()
    with torch.no_grad():
        net.pool.conv.weight.fill_(1.0)
        net.pool.conv.bias.fill_(-0.3)  # dark cells (mean 10/255 per channel) get no weight at all
        net.pool.bn.running_mean.fill_(0.0)
        net.pool.bn.running_var.fill_(1.0)
    meta = {"image_size": 64, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "mos_min": 0.0, "mos_max": 100.0,
            "pooling": "wsp", "backbone": "cells"}
    return net, meta


@pytest.mark.parametrize("rows, cols", [(slice(0, 16), slice(64, 96)), (slice(48, 64), slice(0, 32))])
def test_a_map_set_by_hand_peaks_on_the_region_it_favours(rows, cols):
    image = np.full((64, 96, 3), 10.0)
    image[rows, cols] = 250.0
    wm = weight_maps(_brightness_model(), [image])[0]
    assert wm.weights.shape == (64, 96) and wm.raw.shape == (8, 8)
    assert wm.weights.mean() == pytest.approx(1.0, rel=1e-5)
    inside = np.zeros((64, 96), bool)
    inside[rows, cols] = True
    py, px = np.unravel_index(np.argmax(wm.weights), wm.weights.shape)
    assert inside[py, px]
    assert wm.weights[inside].sum() / wm.weights.sum() > 0.8  # the bright sixth of the image holds the weight
    s = weight_summary(wm.weights)
    assert inside[int(s["peak_y"] * 64), int(s["peak_x"] * 96)] and s["zero_fraction"] > 0.5
    assert 1.0 <= wm.score <= 5.0 and wm.score_mos == pytest.approx((wm.score - 1) * 25)


def test_weight_summary_of_a_uniform_map():
    s = weight_summary(np.ones((40, 60)))
    assert s["centre_share"] == pytest.approx(0.25) and s["top10_share"] == pytest.approx(0.1)
    assert s["zero_fraction"] == 0.0
    assert np.isnan(weight_summary(np.zeros((4, 4)))["centre_share"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A briefly trained run (timm's test EfficientNet from scratch, 32 px, 1 epoch) on 12 images of several
    sizes, with 3 weight maps."""
    folder = tmp_path_factory.mktemp("maps")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (30 + 2 * i, 40, 3)).astype(np.uint8)).save(folder / f"im{i}.png")
        rows.append({"path": f"im{i}.png", "mos": float(rng.uniform(5, 95)), "mos_std": 12.0})
    pd.DataFrame(rows).to_csv(folder / "mos.csv", index=False)
    cfg = TrainQualityConfig(ratings=folder / "mos.csv", out=folder / "run", backbone="test_efficientnet",
                             init="scratch", trainable_stages=0, image_size=32, epochs=1, batch_size=4,
                             split=0.34, device="cpu", weight_maps=3)
    train_quality(cfg, log=lambda s: None)
    return folder, cfg


def test_the_map_and_score_come_from_the_metrics_own_pass(run):
    """weight_maps' score is the metric's cnn-wsp (same preprocessing, same logits as forward)."""
    folder, _ = run
    from medgap.io import read_frames, to_rgb255

    frames = [to_rgb255(next(iter(read_frames(folder / f"im{i}.png")))) for i in (0, 5, 11)]
    maps = weight_maps(folder / "run", frames)
    scored = _make_cnn_wsp(model=str(folder / "run"))
    for frame, wm in zip(frames, maps):
        assert wm.score == pytest.approx(scored(frame)["cnn-wsp"], rel=1e-5)
        assert wm.weights.shape == frame.shape[:2] and (wm.weights >= 0).all()
    net, _ = load_quality_model(folder / "run/fold_0/model.pt")
    assert maps[0].raw.shape == tuple(net.weight_map(torch.zeros(1, 3, 32, 32)).shape[-2:])


def test_train_quality_writes_held_out_overlays(run):
    folder, cfg = run
    table = pd.read_csv(folder / "run/weightmaps/weightmaps.csv")
    held = pd.read_csv(folder / "run/fold_0/heldout_ratings.csv")
    assert len(table) == 3 and set(table.path) <= set(held.path)
    assert table.mos.min() == held.mos.min() and table.mos.max() == held.mos.max()  # spread from lowest to highest
    for name in (*table.figure, *table.overlay):
        assert (folder / "run/weightmaps" / name).is_file()
    # a run written before --weight-maps existed resumes (it does not change the models)
    config = json.loads((folder / "run/config.json").read_text())
    del config["weight_maps"]
    (folder / "run/config.json").write_text(json.dumps(config))
    train_quality(cfg, log=lambda s: None)


def test_write_weight_maps_files(run, tmp_path):
    """The figure is figure_size x FIGURE_DPI pixels, the overlay has the image's size and is the blend the
    function returns; the table opens in pandas with a row per image."""
    folder, _ = run
    paths = [folder / "im2.png", folder / "im9.png"]
    table = write_weight_maps(folder / "run", paths, tmp_path, mos=[20.0, 80.0])
    assert list(table.path) == [str(p) for p in paths] and table["mos"].tolist() == [20.0, 80.0]
    assert pd.read_csv(tmp_path / "weightmaps.csv").shape == table.shape
    for p, r in zip(paths, table.itertuples()):
        image = np.asarray(Image.open(p).convert("RGB"), np.float64)
        fig = Image.open(tmp_path / r.figure)
        w, h = figure_size(image.shape)
        assert fig.size == (round(w * FIGURE_DPI), round(h * FIGURE_DPI))
        overlay = np.asarray(Image.open(tmp_path / r.overlay).convert("RGB"))
        assert overlay.shape == image.shape
        wm = weight_maps(folder / "run", [image])[0]
        np.testing.assert_array_equal(overlay, overlay_rgb(image, wm.weights))
        assert r.score == pytest.approx(wm.score)


def test_overlay_refuses_a_map_of_another_size():
    with pytest.raises(ValueError, match="differ in size"):
        overlay_rgb(np.zeros((10, 12)), np.ones((10, 10)))


def test_avg_pooling_writes_no_maps_and_weighs_alike(tmp_path):
    folder = tmp_path
    rng = np.random.default_rng(4)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)).save(folder / f"a{i}.png")
    pd.DataFrame({"path": [f"a{i}.png" for i in range(8)], "mos": np.linspace(10, 90, 8)}).to_csv(
        folder / "mos.csv", index=False)
    cfg = TrainQualityConfig(ratings=folder / "mos.csv", out=folder / "run", backbone="test_efficientnet",
                             init="scratch", trainable_stages=0, image_size=32, epochs=1, batch_size=4,
                             pooling="avg", device="cpu")
    train_quality(cfg, log=lambda s: None)
    assert not (folder / "run/weightmaps").exists()
    wm = weight_maps(folder / "run", [rng.uniform(0, 255, (20, 30, 3))])[0]
    np.testing.assert_allclose(wm.weights, 1.0, rtol=1e-6)


def test_the_study_report_shows_weight_maps_only_with_cnn_wsp(run, tmp_path):
    from medgap.report.study import write_study_report
    from medgap.stats import compare_metrics

    folder, _ = run
    metric = _make_cnn_wsp(model=str(folder / "run"))
    from medgap.io import read_frames, to_rgb255

    rows = []
    for i in range(12):
        path = folder / f"im{i}.png"
        rows.append({"item_id": str(path), "path": str(path), "frame": np.nan, "group": "a" if i < 6 else "b",
                     "cnn-wsp": metric(to_rgb255(next(iter(read_frames(path)))))["cnn-wsp"], "error": None})
    scores = pd.DataFrame(rows)
    result = compare_metrics(scores, ["cnn-wsp"], "a", n_boot=50)
    config = {"quality": {"metrics": [f"cnn-wsp:model={folder / 'run'}"]}}
    doc = write_study_report(tmp_path / "with", scores, result, config=config, n_examples=1).read_text()
    assert 'id="weight-maps"' in doc and 'href="#weight-maps"' in doc
    assert len(list((tmp_path / "with/figures").glob("figure_*_cnn_wsp_weight_maps.png"))) == 1
    doc = write_study_report(tmp_path / "without", scores, result, config={}, n_examples=1).read_text()
    assert "weight-maps" not in doc
    broken = {"quality": {"metrics": [f"cnn-wsp:model={tmp_path / 'nothing'}"]}}
    doc = write_study_report(tmp_path / "broken", scores, result, config=broken, n_examples=1).read_text()
    assert "could not be loaded" in doc


def test_medgap_weight_maps_draws_a_folder_and_names_unreadable_files(run, tmp_path):
    """The command: a figure and an overlay per readable image, weightmaps.csv, exit 1 when a file failed."""
    from typer.testing import CliRunner

    from medgap.cli import app

    folder, _ = run
    images = tmp_path / "images"
    images.mkdir()
    for i in (1, 4):
        (images / f"im{i}.png").write_bytes((folder / f"im{i}.png").read_bytes())
    (images / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "maps"
    result = CliRunner().invoke(app, ["weight-maps", str(images), "--model", str(folder / "run"), "--out", str(out),
                                      "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert "broken.png" in result.output and "2 of 3 images" in result.output
    table = pd.read_csv(out / "weightmaps.csv")
    assert table["error"].notna().sum() == 1 and table["score"].notna().sum() == 2
    assert sorted(p.name for p in out.glob("*.png")) == ["im1_overlay.png", "im1_weightmap.png", "im4_overlay.png",
                                                        "im4_weightmap.png"]
    result = CliRunner().invoke(app, ["weight-maps", str(images), "--model", str(tmp_path)])
    assert result.exit_code == 2 and "medgap train-quality" in result.output
