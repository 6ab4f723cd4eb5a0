"""medgap train-quality (medgap.train.quality): bin targets against hand computations, the Huber loss against
its definition, presets, the run directory, checks of the options, and resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from medgap.train.quality import (  # noqa: E402
    PRESETS,
    QualityConfigError,
    TrainQualityConfig,
    bin_targets,
    mos_to_bins_scale,
    quality_loss,
    train_quality,
)


def _ratings(folder, n=16, seed=0):
    """n small photos-like images (smooth noise, more blur for lower MOS) and their ratings CSV."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        img = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
        Image.fromarray(img).save(folder / f"im{i}.png")
        rows.append({"path": f"im{i}.png", "mos": float(rng.uniform(5, 95)), "mos_std": float(rng.uniform(5, 20))})
    pd.DataFrame(rows).to_csv(folder / "mos.csv", index=False)
    return folder / "mos.csv"


def _tiny(csv, out, **kw):
    """A config that trains in about a second: timm's 0.1M-parameter test EfficientNet from scratch, 32 px."""
    base = dict(ratings=csv, out=out, backbone="test_efficientnet", init="scratch", trainable_stages=0,
                image_size=32, epochs=2, batch_size=4, device="cpu")
    return TrainQualityConfig(**{**base, **kw})


def test_mos_maps_linearly_onto_the_bins():
    assert mos_to_bins_scale([0, 25, 50, 100]).tolist() == [1.0, 2.0, 3.0, 5.0]
    assert mos_to_bins_scale([1, 3], mos_min=1, mos_max=3).tolist() == [1.0, 5.0]


def test_bin_targets_by_hand():
    """MOS 62.5 (SD 20) on 0-100 is 3.5 (SD 0.8) on 1..5: a normal over the edges 1.5, 2.5, 3.5, 4.5 gives
    Phi(-2.5) = 0.0062097, Phi(-1.25) - Phi(-2.5) = 0.1056498 - 0.0062097, 0.5 - 0.1056498, and the mirror
    image (normal table values). Without an SD, 57.5 -> 3.3: 0.7 on bin 3 and 0.3 on bin 4."""
    got = bin_targets([62.5, 57.5, 100.0, 0.0], [20.0, np.nan, np.nan, 0.0])
    np.testing.assert_allclose(got[0], [0.0062097, 0.0994401, 0.3943502, 0.3943502, 0.0994401 + 0.0062097],
                               atol=2e-7)
    np.testing.assert_allclose(got[1], [0, 0, 0.7, 0.3, 0], atol=1e-12)
    np.testing.assert_allclose(got[2], [0, 0, 0, 0, 1])
    np.testing.assert_allclose(got[3], [1, 0, 0, 0, 0])  # SD 0: the two-bin rule
    np.testing.assert_allclose(got.sum(1), 1.0)
    assert bin_targets([57.5])[0] @ np.arange(1, 6) == pytest.approx(3.3)  # the two-bin target's mean is the score


def test_huber_loss_by_definition():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0, 0.0]])
    dist = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    # distribution: sum over bins of 0.5 d^2 (|d| < 1)
    p = np.exp(np.array([10.0, 0, 0, 0, 0])) / np.exp(np.array([10.0, 0, 0, 0, 0])).sum()
    expected0 = 0.5 * (4 * 0.2 ** 2 + 0.8 ** 2)
    expected1 = 0.5 * ((p - np.array([0, 0, 0, 0, 1.0])) ** 2).sum()
    got = quality_loss(logits, dist, torch.tensor([3.0, 5.0]), "distribution")
    np.testing.assert_allclose(got.numpy(), [expected0, expected1], rtol=1e-5)
    # score: the expected bins are 3 and ~1; |3 - 3.5| < 1 -> 0.5 * 0.25, |1 - 5| >= 1 -> 4 - 0.5
    got = quality_loss(logits, dist, torch.tensor([3.5, 5.0]), "score")
    np.testing.assert_allclose(got.numpy(), [0.125, (5 - p @ np.arange(1, 6)) - 0.5], rtol=1e-4)


def test_presets_fill_only_what_is_left_out(tmp_path):
    paper = TrainQualityConfig(ratings=tmp_path, out=tmp_path, preset="paper").resolved()
    assert (paper.backbone, paper.optimizer, paper.lr, paper.momentum, paper.epochs, paper.image_size) == (
        "resnet101", "sgd", 0.1, 0.9, 100, 0)
    cpu = TrainQualityConfig(ratings=tmp_path, out=tmp_path, epochs=3).resolved()
    assert cpu.backbone == "efficientnet_lite0" and cpu.epochs == 3 and cpu.lr == PRESETS["cpu"]["lr"]


def test_options_that_cannot_work_are_refused_before_reading(tmp_path):
    with pytest.raises(QualityConfigError, match="--folds 1"):
        train_quality(_tiny(tmp_path / "none.csv", tmp_path / "run", folds=1))
    with pytest.raises(QualityConfigError, match="--pooling 'max'.*wsp, avg"):
        train_quality(_tiny(tmp_path / "none.csv", tmp_path / "run", pooling="max"))
    with pytest.raises(QualityConfigError, match="--mos-min"):
        train_quality(_tiny(tmp_path / "none.csv", tmp_path / "run", mos_min=5, mos_max=5))


def test_a_run_directory_resumes_after_an_interruption_as_if_never_stopped(tmp_path):
    """Stopped after epoch 1 of 2 (a KeyboardInterrupt from the log, after last.pt is written), the rerun
    continues from last.pt and ends with the uninterrupted run's predictions and history; another config is
    refused in that directory."""
    csv = _ratings(tmp_path)
    whole = train_quality(_tiny(csv, tmp_path / "whole"), log=lambda s: None)

    def stop_after_first_epoch(line):
        if "epoch 1/2" in line:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_quality(_tiny(csv, tmp_path / "cut"), log=stop_after_first_epoch)
    assert (tmp_path / "cut" / "fold_0" / "last.pt").exists() and not (tmp_path / "cut/fold_0/model.pt").exists()
    lines = []
    resumed = train_quality(_tiny(csv, tmp_path / "cut"), log=lines.append)
    assert any("resuming" in s and "1 epoch(s) done" in s for s in lines)
    pd.testing.assert_frame_equal(resumed, whole)
    a = pd.read_csv(tmp_path / "whole/fold_0/predictions.csv")
    b = pd.read_csv(tmp_path / "cut/fold_0/predictions.csv")
    np.testing.assert_allclose(a["pred"], b["pred"], rtol=1e-5)
    h = pd.read_csv(tmp_path / "cut/fold_0/history.csv")
    assert h["epoch"].tolist() == [1, 2] and {"val_srocc", "val_plcc", "val_rmse", "val_loss"} <= set(h)
    with pytest.raises(QualityConfigError, match="another configuration.*pooling"):
        train_quality(_tiny(csv, tmp_path / "cut", pooling="avg"))


def test_k_folds_cover_every_image_once_and_write_the_results_table(tmp_path):
    csv = _ratings(tmp_path, n=12)
    results = train_quality(_tiny(csv, tmp_path / "run", folds=3, epochs=1, pooling="avg"), log=lambda s: None)
    assert results["fold"].astype(str).tolist() == ["0", "1", "2", "all"]
    split = pd.read_csv(tmp_path / "run/split.csv")
    held = split[split.role == "test"]
    assert sorted(held.path) == sorted(f"im{i}.png" for i in range(12)) and held.path.is_unique
    preds = pd.read_csv(tmp_path / "run/predictions.csv")
    assert len(preds) == 12 and preds["pred"].between(1, 5).all()
    # pred_mos is pred on the 0-100 scale: 1 -> 0, 5 -> 100
    np.testing.assert_allclose(preds["pred_mos"], (preds["pred"] - 1) * 25)
    assert json.loads((tmp_path / "run/config.json").read_text())["pooling"] == "avg"
    assert pd.read_csv(tmp_path / "run/results.csv").shape[0] == 4
    rated = pd.read_csv(tmp_path / "run/fold_1/heldout_ratings.csv")  # what medgap validate reads
    assert sorted(Path(p).name for p in rated["path"]) == sorted(held[held.fold == 1].path)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in rated["path"])
