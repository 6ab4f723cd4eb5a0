"""``train_quality``: a blind quality model (:mod:`medgap.models.wsp`) trained on human ratings.

Targets: each image's mean opinion score (MOS) is mapped linearly from ``[mos_min, mos_max]`` onto the five
opinion bins' scale 1..5 (:func:`mos_to_bins_scale`; CLIVE's 0-100 MOS: 0 -> 1, 100 -> 5) and turned into a
distribution over the bins (:func:`bin_targets`): with the ratings' standard deviation, a normal of that mean and
SD discretised over the bins (edges at 1.5, 2.5, 3.5, 4.5; the tails go to bins 1 and 5); without it, the two
bins around the score, interpolated linearly (3.3 -> 0.7 on bin 3, 0.3 on bin 4; its expectation is the score).

Loss (:func:`quality_loss`): the Huber loss (delta 1) between the predicted distribution (softmax of the five
logits) and the target distribution, summed over the bins (``loss_on="distribution"``, the default), or between
the expected score and the MOS on the 1..5 scale (``loss_on="score"``).

The loop is this module's own (a plain PyTorch loop), not :func:`medgap.train.run.run_cv`: run_cv builds timm
classifiers through ``create_model`` and groups folds by patient, and a quality model is a timm backbone with
another head, split by image. It keeps the run's habits: ``config.json`` (resuming needs the same one), a
``split.csv``, one folder per fold with ``last.pt`` (every epoch, to resume), ``model.pt`` (the final weights,
what the ``cnn-wsp`` metric loads), ``history.csv`` (held-out loss, SROCC, PLCC, RMSE each epoch),
``predictions.csv`` and ``heldout_ratings.csv`` (for ``medgap validate``), and ``results.csv``. No model
selection happens on the held-out images: the final epoch's model is kept, so the held-out numbers are honest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medgap._options import check_choices, check_resumable, option, write_run_config

PRESETS: dict[str, dict[str, Any]] = {
    # EfficientNet-Lite0 with its offline ImageNet weights, the last 3 of 7 stages and the head training, 224 px:
    # 30-50 s per epoch on 500 CLIVE images on 2 CPU cores (docs/quality_model.md).
    "cpu": dict(backbone="efficientnet_lite0", init="imagenet", trainable_stages=3, image_size=224, epochs=10,
                batch_size=16, optimizer="adamw", lr=1e-3, backbone_lr_scale=0.1, momentum=0.9, weight_decay=1e-4),
    # Su and Korhonen (ICIP 2020): ResNet-101 (ImageNet weights from the hub), layers up to layer3 frozen (layer4
    # trains), full-resolution input, SGD lr 0.1 momentum 0.9, 100 epochs. The batch size, weight decay and the
    # cosine decay of the learning rate are this module's choices (not from the summary of the paper).
    "paper": dict(backbone="resnet101", init="imagenet", trainable_stages=1, image_size=0, epochs=100,
                  batch_size=8, optimizer="sgd", lr=0.1, backbone_lr_scale=1.0, momentum=0.9, weight_decay=0.0),
}
OPTIMIZERS = ("sgd", "adamw")
LOSS_TARGETS = ("distribution", "score")
MODEL_FILE = "model.pt"
LAST_FILE = "last.pt"
WEIGHT_MAPS_DIR = "weightmaps"


class QualityConfigError(ValueError):
    """A train-quality option that cannot work; the message names the option and the fix."""


@dataclass
class TrainQualityConfig:
    ratings: Path = option(help="CSV with one row per image: its path (relative to the CSV, or to the nearest "
                                "folder above it holding every listed file), its MOS and, optionally, the ratings' "
                                "standard deviation.", metavar="CSV")
    out: Path = option(help="Run directory (rerunning with the same options resumes it).", flags=("-o",))
    preset: str = option("cpu", "Defaults of the options left out: cpu (EfficientNet-Lite0, offline ImageNet "
                                "weights, 224 px, 10 epochs, AdamW) or paper (ResNet-101, full resolution, SGD lr 0.1 "
                                "momentum 0.9, 100 epochs).", choices=tuple(PRESETS))
    pooling: str = option("wsp", "wsp (learned weighted spatial pooling) or avg (global average pooling, the "
                                 "ablation).", choices=("wsp", "avg"))
    folds: int = option(0, "k-fold cross-validation by image (k >= 2); 0: one held-out split (--split).")
    split: float = option(0.2, "Held-out fraction of the images when --folds is 0.")
    backbone: str | None = option(None, "Any timm model name (default: the preset's).")
    init: str | None = option(None, "scratch, imagenet, hub[:TAG] or a checkpoint file (default: the preset's).")
    trainable_stages: int | None = option(None, "Last backbone stages that train (0: all; default: the preset's).")
    image_size: int | None = option(None, "Square input size in pixels; 0: full resolution (every image one size; "
                                          "default: the preset's).")
    epochs: int | None = option(None, "Epochs (default: the preset's).")
    batch_size: int | None = option(None, "Images per batch (default: the preset's).")
    optimizer: str | None = option(None, "sgd or adamw (default: the preset's).", choices=OPTIMIZERS)
    lr: float | None = option(None, "Learning rate of the head (cosine decay; default: the preset's).")
    backbone_lr_scale: float | None = option(None, "Backbone layers learn at lr x this (default: the preset's).")
    momentum: float | None = option(None, "SGD momentum (default: the preset's).")
    weight_decay: float | None = option(None, "Weight decay (default: the preset's).")
    loss_on: str = option("distribution", "Huber loss on the 5-bin distribution or on the expected score.",
                          choices=LOSS_TARGETS)
    mos_min: float = option(0.0, "The MOS scale's lowest value (mapped to bin 1; CLIVE: 0).")
    mos_max: float = option(100.0, "The MOS scale's highest value (mapped to bin 5; CLIVE: 100).")
    path_column: str = option("path", "Ratings column holding the image path.")
    mos_column: str = option("mos", "Ratings column holding the mean opinion score.")
    std_column: str = option("mos_std", "Ratings column holding the ratings' standard deviation (used when "
                                        "present).")
    augment: bool = option(True, "Random horizontal flips and small rotations (+-5 degrees) while training.")
    seed: int = option(0, "Seed of the split, initialisation, order and augmentation (fold k: seed + k).")
    device: str = option("auto", "auto (CUDA when present), cpu, cuda or cuda:N.", resumable=True)
    weight_maps: int = option(6, "Held-out images of fold 0 (spread over their MOS) whose weight-map overlays "
                                 "are written to RUN/weightmaps/ (0: none; wsp pooling only).", resumable=True)

    def resolved(self) -> TrainQualityConfig:
        """This config with every option left out (None) taken from its preset."""
        check_choices(self, QualityConfigError)
        preset = PRESETS[self.preset]
        return replace(self, **{k: v for k, v in preset.items() if getattr(self, k) is None})


def check_config(cfg: TrainQualityConfig) -> None:
    """Every (resolved) option's value, before anything is read: a :class:`QualityConfigError` names it."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise QualityConfigError(message)

    check_choices(cfg, QualityConfigError)
    need(cfg.folds == 0 or cfg.folds >= 2, f"--folds {cfg.folds}: 0 (one --split) or at least 2 folds")
    need(cfg.folds != 0 or 0 < cfg.split < 1, f"--split {cfg.split}: the held-out fraction must be in (0, 1)")
    need(cfg.image_size == 0 or cfg.image_size >= 32,
         f"--image-size {cfg.image_size}: at least 32 pixels (the backbones downsample 32 times), or 0 for full "
         "resolution")
    need(cfg.epochs >= 1, f"--epochs {cfg.epochs}: train at least 1 epoch")
    need(cfg.batch_size >= 2, f"--batch-size {cfg.batch_size}: at least 2 (BatchNorm in the pooling head)")
    need(cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr {cfg.lr}: a positive learning rate")
    need(cfg.trainable_stages >= 0, f"--trainable-stages {cfg.trainable_stages}: 0 (all train) or more")
    need(cfg.weight_maps >= 0, f"--weight-maps {cfg.weight_maps}: 0 (none) or a number of held-out images")
    need(cfg.mos_max > cfg.mos_min, f"--mos-min {cfg.mos_min} / --mos-max {cfg.mos_max}: the scale's highest value "
                                    "must exceed its lowest")


# -- targets and loss ------------------------------------------------------------------------------------------

def mos_to_bins_scale(mos: Any, mos_min: float = 0.0, mos_max: float = 100.0) -> np.ndarray:
    """MOS on ``[mos_min, mos_max]`` -> the bins' scale 1..5 (linear: ``1 + 4 (mos - min) / (max - min)``)."""
    return 1.0 + 4.0 * (np.asarray(mos, np.float64) - mos_min) / (mos_max - mos_min)


def bins_scale_to_mos(score: Any, mos_min: float = 0.0, mos_max: float = 100.0) -> np.ndarray:
    """The inverse of :func:`mos_to_bins_scale`."""
    return mos_min + (np.asarray(score, np.float64) - 1.0) * (mos_max - mos_min) / 4.0


def bin_targets(mos: Any, std: Any = None, mos_min: float = 0.0, mos_max: float = 100.0) -> np.ndarray:
    """(N, 5) target distributions over the opinion bins (see the module docstring). ``std`` (the ratings' SD
    on the MOS scale) per image, or None; an image whose SD is missing, zero or not finite gets the two-bin
    interpolation."""
    from scipy.stats import norm

    s = np.clip(mos_to_bins_scale(mos, mos_min, mos_max), 1.0, 5.0)
    n = s.size
    out = np.zeros((n, 5))
    lower = np.minimum(np.floor(s), 4.0).astype(int)  # bins lower, lower+1 (1-based); s = 5 -> 4 and 5
    frac = s - lower
    out[np.arange(n), lower - 1] = 1.0 - frac
    out[np.arange(n), lower] += frac
    if std is not None:
        sigma = np.asarray(std, np.float64) * 4.0 / (mos_max - mos_min)
        ok = np.isfinite(sigma) & (sigma > 0)
        edges = np.array([-np.inf, 1.5, 2.5, 3.5, 4.5, np.inf])
        cdf = norm.cdf((edges[None, :] - s[ok, None]) / sigma[ok, None])
        out[ok] = np.diff(cdf, axis=1)
    return out


def quality_loss(logits, target_dist, target_score, loss_on: str = "distribution"):
    """Per image: the Huber loss (delta 1) between softmax(logits) and ``target_dist`` summed over the bins, or
    between the expected score and ``target_score`` (1..5 scale)."""
    import torch
    from torch.nn import functional as F

    from medgap.models.wsp import expected_score

    if loss_on == "score":
        return F.huber_loss(expected_score(logits), target_score, reduction="none", delta=1.0)
    return F.huber_loss(torch.softmax(logits, dim=1), target_dist, reduction="none", delta=1.0).sum(1)


def quality_metrics(pred_mos: np.ndarray, mos: np.ndarray) -> dict[str, float]:
    """SROCC, PLCC (linear, no fitted mapping) and RMSE (MOS units) of predictions against MOS, over images."""
    from scipy.stats import pearsonr, spearmanr

    pred_mos, mos = np.asarray(pred_mos, np.float64), np.asarray(mos, np.float64)
    varied = np.ptp(pred_mos) > 0 and np.ptp(mos) > 0
    return {"srocc": float(spearmanr(pred_mos, mos).statistic) if varied else float("nan"),
            "plcc": float(pearsonr(pred_mos, mos).statistic) if varied else float("nan"),
            "rmse": float(np.sqrt(np.mean((pred_mos - mos) ** 2)))}


# -- data -------------------------------------------------------------------------------------------------------

def read_quality_ratings(cfg: TrainQualityConfig) -> pd.DataFrame:
    """The ratings table (``file`` absolute, ``mos``, ``std`` or NaN), via :func:`medgap.validation.read_ratings`."""
    from medgap.validation import read_ratings

    table, _ = read_ratings(cfg.ratings, path_column=cfg.path_column, mos_column=cfg.mos_column)
    std = (pd.to_numeric(table[cfg.std_column], errors="coerce") if cfg.std_column in table.columns
           else pd.Series(np.nan, index=table.index))
    return pd.DataFrame({"file": table["file"], "path": table[cfg.path_column].astype(str),
                         "mos": table[cfg.mos_column].astype(np.float64), "std": std.astype(np.float64)})


def decode_images(files: list[str], size: int | None):
    """Each file's first frame as a 3 x size x size float32 tensor on the 0-255 scale (the metric's own
    preprocessing: :func:`medgap.io.to_rgb255`, :func:`medgap.models.wsp.resize255`)."""
    import torch

    from medgap.io import read_frames, to_rgb255
    from medgap.models.wsp import resize255

    out = []
    for f in files:
        frame = next(iter(read_frames(f)))
        out.append(resize255([to_rgb255(frame)], size)[0])
    shapes = {tuple(t.shape) for t in out}
    if len(shapes) > 1:
        raise QualityConfigError(f"--image-size 0 (full resolution) needs images of one size; these have "
                                 f"{len(shapes)} sizes (e.g. {sorted(shapes)[:2]}): give --image-size N")
    return torch.stack(out)


def _augment(x, gen):
    """Random horizontal flips and rotations within +-5 degrees (the paper's flips and small rotations)."""
    import torch
    from torch.nn import functional as F

    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(5)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


# -- the run ------------------------------------------------------------------------------------------------------

def _split(n: int, cfg: TrainQualityConfig) -> np.ndarray:
    """The held-out fold of each image (by image): k folds, or fold 0 = the held-out part and -1 = training."""
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(n)
    fold = np.full(n, -1)
    if cfg.folds:
        fold[order] = np.arange(n) % cfg.folds
    else:
        fold[order[:max(1, round(cfg.split * n))]] = 0
    return fold






def train_quality(cfg: TrainQualityConfig, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Train and evaluate every fold; returns the results table (one row per fold: held-out SROCC, PLCC, RMSE;
    with k folds also a row ``all`` over every held-out prediction), also written to ``out/results.csv``."""
    from medgap.models.backbones import preprocessing
    from medgap.quality.network import resolve_device

    cfg = cfg.resolved()
    check_config(cfg)
    out = Path(cfg.out)
    check_resumable(out, cfg, error=QualityConfigError)  # device, weight_maps are resumable: same models
    table = read_quality_ratings(cfg)
    size = cfg.image_size or None
    pre = preprocessing(cfg.backbone, cfg.init)
    log(f"decoding {len(table)} images at {size or 'full resolution'} px")
    images = decode_images(table["file"].tolist(), size)
    dist = bin_targets(table["mos"], table["std"], cfg.mos_min, cfg.mos_max)
    score = mos_to_bins_scale(table["mos"], cfg.mos_min, cfg.mos_max)
    fold = _split(len(table), cfg)
    out.mkdir(parents=True, exist_ok=True)
    write_run_config(out, cfg)
    device = resolve_device(cfg.device)
    n_folds = cfg.folds or 1
    split_rows, preds, rows = [], [], []
    for k in range(n_folds):
        test = fold == k
        split_rows += [{"path": p, "fold": k, "role": "test" if t else "train"} for p, t in zip(table["path"], test)]
        fold_dir = out / f"fold_{k}"
        fold_dir.mkdir(exist_ok=True)
        # the held-out images' ratings, for medgap validate --ratings fold_k/heldout_ratings.csv
        pd.DataFrame({"path": table["file"][test], "mos": table["mos"][test], "mos_std": table["std"][test]}).to_csv(
            fold_dir / "heldout_ratings.csv", index=False)
        pred_file = fold_dir / "predictions.csv"
        if not (fold_dir / MODEL_FILE).exists() or not pred_file.exists():
            _fit_fold(cfg, k, images, table["path"].to_numpy(), dist, score, table["mos"].to_numpy(), ~test, test,
                      pre, fold_dir, device, log)
        fold_pred = pd.read_csv(pred_file)
        preds.append(fold_pred)
        rows.append({"fold": k, "n_train": int((~test).sum()), "n_test": int(test.sum()),
                     **quality_metrics(fold_pred["pred_mos"], fold_pred["mos"])})
        log(f"fold {k}: held-out SROCC {rows[-1]['srocc']:.3f}, PLCC {rows[-1]['plcc']:.3f}, "
            f"RMSE {rows[-1]['rmse']:.2f} on {int(test.sum())} images")
    all_preds = pd.concat(preds, ignore_index=True)
    if n_folds > 1:
        rows.append({"fold": "all", "n_train": None, "n_test": len(all_preds),
                     **quality_metrics(all_preds["pred_mos"], all_preds["mos"])})
    results = pd.DataFrame(rows).astype({"n_train": "Int64"})  # the "all" row has no training count
    pd.DataFrame(split_rows).to_csv(out / "split.csv", index=False)
    all_preds.to_csv(out / "predictions.csv", index=False)
    results.to_csv(out / "results.csv", index=False)
    (out / "metrics.json").write_text(json.dumps({"unit": "image", **{f"fold_{r['fold']}": r for r in rows}},
                                                 indent=1, default=str))
    if cfg.weight_maps > 0 and cfg.pooling == "wsp" and not (out / WEIGHT_MAPS_DIR / "weightmaps.csv").exists():
        write_heldout_weight_maps(out, cfg.weight_maps, device=device)
        log(f"weight maps of {cfg.weight_maps} held-out images of fold 0: {out / WEIGHT_MAPS_DIR}")
    return results


def write_heldout_weight_maps(run_dir: str | Path, n: int = 6, *, fold: int = 0, device: Any = "cpu") -> pd.DataFrame:
    """Overlays of the pooling weight maps (:func:`medgap.report.weight_maps.write_weight_maps`) of ``n`` of
    fold ``fold``'s held-out images, chosen evenly along their MOS (lowest to highest), into
    ``run_dir/weightmaps/``; returns its ``weightmaps.csv``."""
    from medgap.report.weight_maps import write_weight_maps

    run_dir = Path(run_dir)
    held = pd.read_csv(run_dir / f"fold_{fold}" / "heldout_ratings.csv").sort_values("mos", kind="stable")
    pick = held.iloc[np.unique(np.round(np.linspace(0, len(held) - 1, min(n, len(held)))).astype(int))]
    return write_weight_maps(run_dir, pick["path"].tolist(), run_dir / WEIGHT_MAPS_DIR, fold=fold,
                             device=str(device), mos=pick["mos"].tolist())


def _fit_fold(cfg, k, images, paths, dist, score, mos, train, test, pre, fold_dir: Path, device, log) -> None:
    import torch

    from medgap.models.checkpoints import load_checkpoint_file
    from medgap.models.wsp import (create_quality_net, expected_score, freeze_stages, normalise, save_quality_model,
                                  train_mode)

    seed = cfg.seed + k
    torch.manual_seed(seed)
    net = create_quality_net(cfg.backbone, cfg.init, cfg.pooling)
    freeze_stages(net, cfg.trainable_stages or None)
    net.to(device)
    head = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    body = [p for n, p in net.named_parameters() if p.requires_grad and n.startswith("backbone.")]
    groups = [{"params": head, "lr": cfg.lr}, {"params": body, "lr": cfg.lr * cfg.backbone_lr_scale}]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    history: list[dict] = []
    start = 0
    last = fold_dir / LAST_FILE
    if last.exists():
        blob = load_checkpoint_file(last, f"delete {fold_dir} to train fold {k} again")
        net.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        start, history = int(blob["epoch"]) + 1, list(pd.read_csv(fold_dir / "history.csv").to_dict("records"))
        log(f"fold {k}: resuming from {last} ({start} epoch(s) done)")
    tr, te = np.flatnonzero(train), np.flatnonzero(test)
    dist_t = torch.tensor(dist, dtype=torch.float32)
    score_t = torch.tensor(score, dtype=torch.float32)

    def predict(idx):
        net.eval()
        outs = []
        with torch.no_grad():
            for b in range(0, len(idx), cfg.batch_size):
                x = normalise(images[idx[b:b + cfg.batch_size]].to(device), pre["mean"], pre["std"])
                outs.append(net(x).float().cpu())
        logits = torch.cat(outs)
        return logits, expected_score(logits).numpy()

    for epoch in range(start, cfg.epochs):
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)  # the same order and augmentation on resume
        order = tr[torch.randperm(len(tr), generator=gen).numpy()]
        train_mode(net)
        total, count = 0.0, 0
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b:b + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm of the weight map needs 2 images
                continue
            x = images[idx]
            if cfg.augment:
                x = _augment(x, gen)
            logits = net(normalise(x.to(device), pre["mean"], pre["std"]))
            loss = quality_loss(logits, dist_t[idx].to(device), score_t[idx].to(device), cfg.loss_on).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        sched.step()
        logits, s = predict(te)
        val_loss = float(quality_loss(logits, dist_t[te], score_t[te], cfg.loss_on).mean())
        m = quality_metrics(bins_scale_to_mos(s, cfg.mos_min, cfg.mos_max), mos[te])
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1), "val_loss": val_loss,
                        **{f"val_{n}": v for n, v in m.items()}})
        pd.DataFrame(history).to_csv(fold_dir / "history.csv", index=False)
        torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "epoch": epoch}, last)
        log(f"fold {k} epoch {epoch + 1}/{cfg.epochs}: train loss {history[-1]['train_loss']:.4f}, held-out "
            f"loss {val_loss:.4f}, SROCC {m['srocc']:.3f}, PLCC {m['plcc']:.3f}, RMSE {m['rmse']:.2f}")
    save_quality_model(net, fold_dir / MODEL_FILE, backbone=cfg.backbone, image_size=cfg.image_size,
                       mean=pre["mean"], std=pre["std"], mos_min=cfg.mos_min, mos_max=cfg.mos_max)
    _, s = predict(te)
    pd.DataFrame({"path": paths[te], "fold": k, "mos": mos[te], "pred": s,
                  "pred_mos": bins_scale_to_mos(s, cfg.mos_min, cfg.mos_max)}).to_csv(fold_dir / "predictions.csv",
                                                                                     index=False)
