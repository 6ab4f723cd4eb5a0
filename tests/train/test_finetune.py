"""Grouped splits and a real (tiny) Lightning fine-tuning: predictions for every item once, resume."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from medgap.data import grouped_folds, inner_validation
from medgap.train import FinetuneConfig, run_finetune


def test_grouped_folds_never_leak_and_are_reproducible():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"p{i}" for i in range(30)], rng.integers(1, 6, 30))
    labels = np.array([hash(g) % 3 for g in groups])
    fold = grouped_folds(labels, groups, 5, seed=1)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1
    assert set(fold) == set(range(5))
    np.testing.assert_array_equal(fold, grouped_folds(labels, groups, 5, seed=1))
    train = fold != 0
    val = inner_validation(labels[train], groups[train], seed=1)
    assert not set(groups[train][val]) & set(groups[train][~val])
    with pytest.raises(ValueError, match="folds"):
        grouped_folds(labels, groups, 31, seed=1)


@pytest.fixture()
def tiny_tree(tmp_path):
    """3 classes x 8 images: a class is a dominant colour, so a scratch model can learn something in 2 epochs."""
    rng = np.random.default_rng(0)
    for c, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
        d = tmp_path / "data" / f"class{c}"
        d.mkdir(parents=True)
        for i in range(8):
            img = np.clip(rng.normal(colour, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(d / f"{i}.png"), img[..., ::-1])
    return tmp_path / "data"


def test_finetune_writes_a_complete_run_and_resumes(tiny_tree, tmp_path):
    out = tmp_path / "run"
    cfg = FinetuneConfig(data=tiny_tree, out=out, init="scratch", folds=2, epochs=1, image_size=64, batch_size=8,
                         patience=5)
    preds = run_finetune(cfg, log=lambda s: None)
    assert len(preds) == 24 and preds.item_id.is_unique  # each item held out exactly once
    for name in ("config.json", "versions.json", "classes.json", "split.csv", "metrics.json", "predictions.csv"):
        assert (out / name).exists()
    assert json.loads((out / "classes.json").read_text()) == ["class0", "class1", "class2"]
    assert np.allclose(preds.filter(like="prob_").sum(axis=1), 1, atol=1e-5)
    step1 = torch.load(out / "fold_0" / "last.ckpt", weights_only=False)["global_step"]
    cfg.epochs = 2  # rerun: continues from last.ckpt instead of starting over
    run_finetune(cfg, log=lambda s: None)
    ckpt = torch.load(out / "fold_0" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 2 * step1
    split = pd.read_csv(out / "split.csv")
    assert set(split.role) == {"train", "val", "test"}


def test_features_strategy_with_logistic_regression(tiny_tree, tmp_path):
    cfg = FinetuneConfig(data=tiny_tree, out=tmp_path / "feat", init="scratch", strategy="features", folds=2,
                         image_size=64, batch_size=8)
    preds = run_finetune(cfg, log=lambda s: None)
    assert len(preds) == 24 and (preds.label == preds.pred).mean() > 0.5
