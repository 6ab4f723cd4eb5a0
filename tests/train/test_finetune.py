"""Grouped splits and a real (tiny) Lightning fine-tuning: predictions for every item once, resume."""

from __future__ import annotations

import json
import subprocess
import sys
import time

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


def test_finetune_writes_a_complete_run_and_a_rerun_reuses_it(tiny_tree, tmp_path):
    out = tmp_path / "run"
    cfg = FinetuneConfig(data=tiny_tree, out=out, init="scratch", folds=2, epochs=1, image_size=64, batch_size=8,
                         patience=5)
    preds = run_finetune(cfg, log=lambda s: None)
    assert len(preds) == 24 and preds.item_id.is_unique  # each item held out exactly once
    for name in ("config.json", "versions.json", "classes.json", "split.csv", "metrics.json", "predictions.csv"):
        assert (out / name).exists()
    assert json.loads((out / "classes.json").read_text()) == ["class0", "class1", "class2"]
    assert np.allclose(preds.filter(like="prob_").sum(axis=1), 1, atol=1e-5)
    split = pd.read_csv(out / "split.csv")
    assert set(split.role) == {"train", "val", "test"}
    ckpt_mtime = (out / "fold_0" / "last.ckpt").stat().st_mtime_ns
    said = []
    again = run_finetune(cfg, log=said.append)  # finished folds are reused, not retrained
    assert sum("finished earlier" in s for s in said) == 2
    assert (out / "fold_0" / "last.ckpt").stat().st_mtime_ns == ckpt_mtime
    pd.testing.assert_frame_equal(again, preds, check_dtype=False)
    cfg.lr = 0.01
    with pytest.raises(ValueError, match=r"another configuration \(lr: 0.001 -> 0.01\)"):
        run_finetune(cfg, log=lambda s: None)


def test_killed_training_resumes_from_its_last_checkpoint(tiny_tree, tmp_path):
    """kill -9 in the middle of fold 0, then the same command again: fold 0 continues from last.ckpt (its epoch
    count goes on, it does not restart) and the run completes with every item held out once."""
    out = tmp_path / "run"
    args = ["finetune", "--data", str(tiny_tree), "--out", str(out), "--init", "scratch", "--folds", "2",
            "--epochs", "6", "--patience", "100", "--image-size", "32", "--batch-size", "8"]
    proc = subprocess.Popen([sys.executable, "-c", "from medgap.cli import main; main()", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "fold_0" / "last.ckpt"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and torch.load(last, weights_only=True)["epoch"] >= 1:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    if not last.exists() or (out / "fold_0" / "metrics.json").exists():
        pytest.fail("fold 0 finished or never checkpointed before the kill; cannot test an interruption")
    killed_at = torch.load(last, weights_only=True)["epoch"]
    said = []
    cfg = FinetuneConfig(data=tiny_tree, out=out, init="scratch", folds=2, epochs=6, patience=100, image_size=32,
                         batch_size=8)
    preds = run_finetune(cfg, log=said.append)
    assert any(s.startswith("fold 0: resuming") for s in said), said
    resumed = pd.concat(pd.read_csv(f) for f in sorted((out / "fold_0" / "logs").glob("version_*/metrics.csv")))
    epochs = resumed.epoch.dropna().astype(int)
    assert epochs.max() == 5 and killed_at < 5
    assert len(preds) == 24 and preds.item_id.is_unique


def test_schedule_and_learning_rates_per_layer(tiny_tree, tmp_path):
    from medgap.models import apply_strategy, create_model
    import lightning as L

    from medgap.data import make_loader
    from medgap.train.module import Classifier, warmup_cosine

    total, warm = 100, 10
    f = [warmup_cosine(s, total, warm) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert f[55] == pytest.approx(0.5 * (1 + np.cos(np.pi * 45 / 90)))
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    model = apply_strategy(create_model("efficientnet_lite0", "scratch", num_classes=3), "partial", 1)
    module = Classifier(model, lr=1e-3, backbone_lr_scale=0.1)

    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    loader = make_loader(images, np.arange(16) % 3, np.arange(16), (0.5,) * 3, (0.5,) * 3, batch_size=4,
                         training=True)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, loader)  # a real fit: 2 epochs x 4 batches = 8 scheduler steps
    opt = trainer.optimizers[0]
    backbone, head = opt.param_groups
    assert head["initial_lr"] == pytest.approx(1e-3) and backbone["initial_lr"] == pytest.approx(1e-4)
    factor = warmup_cosine(8, 8, 1)  # after the last step: the end of the cosine
    assert head["lr"] == pytest.approx(1e-3 * factor, abs=1e-12) and backbone["lr"] == pytest.approx(1e-4 * factor,
                                                                                                      abs=1e-12)
    head_ids = {id(p) for p in model.get_classifier().parameters()}
    assert {id(p) for p in head["params"]} == head_ids
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in backbone["params"]} == trainable - head_ids


def test_features_strategy_with_logistic_regression(tiny_tree, tmp_path):
    cfg = FinetuneConfig(data=tiny_tree, out=tmp_path / "feat", init="scratch", strategy="features", folds=2,
                         image_size=64, batch_size=8)
    preds = run_finetune(cfg, log=lambda s: None)
    assert len(preds) == 24 and (preds.label == preds.pred).mean() > 0.5


def test_ddp_on_two_cpu_processes_shards_training_and_predicts_every_item(tiny_tree, tmp_path):
    """--ddp --devices 2 --accelerator cpu: Lightning starts a second process (gloo); each trains on half of the
    training part (half the optimiser steps of one process), the run directory is written once and every item is
    predicted exactly once."""
    out = tmp_path / "ddp"
    # python -m medgap (not -c): Lightning starts the second process by rerunning this command line
    r = subprocess.run([sys.executable, "-m", "medgap", "finetune", "--data",
                        str(tiny_tree), "--out", str(out), "--init", "scratch", "--folds", "2", "--epochs", "2",
                        "--image-size", "32", "--batch-size", "4", "--ddp", "--devices", "2", "--accelerator", "cpu"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (r.stdout + r.stderr).count("held-out accuracy") == 1  # printed by the first process only
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 24 and preds.item_id.is_unique
    split = pd.read_csv(out / "split.csv")
    for k in (0, 1):
        n_train = int(((split.fold == k) & (split.role == "train")).sum())
        per_process = -(-n_train // 2)  # DistributedSampler: ceil(n / processes) items each
        steps = torch.load(out / f"fold_{k}" / "last.ckpt", weights_only=True)["global_step"]
        assert steps == 2 * (per_process // 4), (k, n_train, steps)
        assert steps < 2 * (n_train // 4)  # what one process alone would step
