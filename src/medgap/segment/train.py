"""``train_segmentation``: a U-Net (:mod:`medgap.segment.model`) trained on image/mask pairs with k-fold
cross-validation grouped by patient (or one held-out split), evaluated per held-out image at the image's
original size (Dice, IoU, HD95; :mod:`medgap.segment.metrics`) with patient-bootstrap CIs.

The loop is this module's own (plain PyTorch, as :mod:`medgap.train.quality`'s): :func:`medgap.train.run.run_cv`
decodes images without masks and builds timm classifiers. It keeps the run's habits: ``config.json`` (resuming
needs the same one), ``versions.json``, ``preprocessing.json``, ``split.csv`` (image, mask, patient, fold, role),
``fold_<k>/`` with ``last.pt`` (every epoch: model, optimiser, scheduler, history; an interrupted fold continues
from it and ends as an uninterrupted one would: every epoch reseeds with ``seed + k`` and the epoch number),
``model.pt`` (the weights of the epoch with the best Dice on the fold's inner validation patients),
``history.csv``, ``per_image.csv``, ``overlays/`` (each held-out image with the prediction outlined in yellow,
the reference in cyan) and ``metrics.json`` (written last: the fold is finished); then the run's
``per_image.csv`` (every held-out image once) and ``metrics.csv`` (mean, patient-bootstrap CI, median of each
metric). Loss: soft Dice + binary cross-entropy on the logits (smp's ``DiceLoss`` and torch's
``BCEWithLogitsLoss``, equal weights). Held-out images never choose the epoch."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from medgap._options import check_choices, check_resumable, write_run_config
from medgap.segment.config import SegmentTrainConfig
from medgap.segment.errors import SegmentError
from medgap.segment.masks import MaskPair, is_annotated, read_mask, read_pairs, region
from medgap.segment.metrics import image_metrics, summarise

MODEL_FILE = "model.pt"
LAST_FILE = "last.pt"
PREPROCESSING_FILE = "preprocessing.json"


def check_config(cfg: SegmentTrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise SegmentError(message)

    check_choices(cfg, SegmentError)
    need(cfg.folds == 0 or cfg.folds >= 2, f"--folds {cfg.folds}: 0 (one --split) or at least 2 folds")
    need(cfg.folds != 0 or 0 < cfg.split < 1, f"--split {cfg.split}: the held-out fraction must be in (0, 1)")
    need(cfg.image_size >= 32 and cfg.image_size % 32 == 0,
         f"--image-size {cfg.image_size}: a multiple of 32 (the U-Net halves the size 5 times), e.g. 128")
    need(cfg.epochs >= 1, f"--epochs {cfg.epochs}: train at least 1 epoch")
    need(cfg.batch_size >= 2, f"--batch-size {cfg.batch_size}: at least 2 (BatchNorm)")
    need(cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr {cfg.lr}: a positive learning rate")
    need(0 < cfg.mask_threshold <= 255, f"--mask-threshold {cfg.mask_threshold}: in 1..255")
    need(cfg.bootstrap >= 100, f"--bootstrap {cfg.bootstrap}: at least 100 resamples")


def to_input(frame, size: int) -> np.ndarray:
    """A frame as the network's input: RGB 0-255 (gray replicated), resized to size x size, uint8 (3, S, S)."""
    from medgap.data.tensors import to_square_uint8

    return to_square_uint8(frame, size).transpose(2, 0, 1)


def _first_frame(path: Path):
    from medgap.io import ImageReadError, read_frames

    try:
        return next(iter(read_frames(path)))
    except ImageReadError as e:
        raise SegmentError(f"{path}: {e.reason}") from None


def load_pairs(cfg: SegmentTrainConfig, log: Callable[[str], None]) -> tuple[list[MaskPair], list[np.ndarray]]:
    """The annotated pairs (all-zero masks left out, counted in the log) and their boolean regions at the
    original size; a mask whose size differs from its image's is refused."""
    pairs = read_pairs(cfg.pairs, image_column=cfg.image_column, mask_column=cfg.mask_column,
                       patient_column=cfg.patient_column, manifest=cfg.manifest, log=log)
    kept, regions, skipped = [], [], []
    for p in pairs:
        mask = read_mask(p.mask)
        if not is_annotated(mask):
            skipped.append(p)
            continue
        regions.append(region(mask, cfg.mask_threshold))
        kept.append(p)
    log(f"{len(kept)} annotated pairs of {len(pairs)}; {len(skipped)} masks are 0 everywhere (not annotated) and "
        f"are left out of training and evaluation" + (f", e.g. {skipped[0].mask}" if skipped else ""))
    if len({p.patient for p in kept}) < 2:
        raise SegmentError(f"{cfg.pairs}: {len(kept)} annotated pairs from fewer than 2 patients; training and a "
                           "held-out evaluation need at least 2 patients")
    return kept, regions






def assign_folds(patients: list[str], cfg: SegmentTrainConfig) -> np.ndarray:
    """Fold (0..k-1) of each pair, grouped by patient; with --folds 0, 0 = held out (about --split of the
    patients), -1 = training only."""
    from medgap.data.splits import grouped_folds, inner_validation

    groups = np.asarray(patients)
    same = np.zeros(len(groups), int)  # no classes to stratify by
    n = len(set(patients))
    if cfg.folds:
        if cfg.folds > n:
            raise SegmentError(f"--folds {cfg.folds}: more folds than patients ({n}); use --folds {n} or fewer")
        return grouped_folds(same, groups, cfg.folds, cfg.seed)
    held = inner_validation(same, groups, cfg.seed, fraction=cfg.split)
    return np.where(held, 0, -1)


class PairDataset(torch.utils.data.Dataset):
    """Normalised images and their 0/1 masks (float (1, S, S)); ``augment``: one draw moves both
    (:meth:`medgap.data.tensors.TrainAugmentation.pair`)."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, mean, std, augment: bool):
        from medgap.data.tensors import TrainAugmentation

        self.images, self.masks = images, masks
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255
        self.augment = TrainAugmentation(images.shape[-1]) if augment else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        if self.augment is None:
            img, mask = self.images[i].float(), self.masks[i]
        else:
            img, mask = self.augment.pair(self.images[i], self.masks[i])
        return (img - self.mean) / self.std, mask[None].float()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice (smp, over the batch) + binary cross-entropy, both on logits."""
    from segmentation_models_pytorch.losses import DiceLoss

    return DiceLoss(mode="binary", from_logits=True)(logits, target) + \
        torch.nn.functional.binary_cross_entropy_with_logits(logits, target)


def predict_probabilities(models: list[torch.nn.Module], x: torch.Tensor, device: torch.device,
                          batch_size: int = 8) -> np.ndarray:
    """Mean sigmoid of ``models`` over normalised inputs (N, 3, S, S) -> (N, S, S) float32."""
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device)
            prob = torch.stack([torch.sigmoid(m.to(device).eval()(xb)) for m in models]).mean(0)
            out.append(prob[:, 0].float().cpu())
    return torch.cat(out).numpy()


def to_original(prob: np.ndarray, height: int, width: int, threshold: float = 0.5) -> np.ndarray:
    """A probability map at the network's size -> the boolean mask at the image's size (bilinear, then the
    threshold)."""
    return cv2.resize(prob.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= threshold


def train_segmentation(cfg: SegmentTrainConfig, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Train and evaluate every fold; returns the metrics summary (also ``metrics.csv`` in the run)."""
    from medgap.data.splits import inner_validation
    from medgap.environment import environment
    from medgap.segment.model import create_unet, normalisation, pick_device

    check_config(cfg)
    out = Path(cfg.out)
    check_resumable(out, cfg, error=SegmentError)
    device = pick_device(cfg.device)
    pairs, regions = load_pairs(cfg, log)
    create_unet(cfg.encoder, cfg.init)  # the encoder and its weights exist, before anything is written
    norm = normalisation(cfg.encoder)
    inputs = []
    for p, r in zip(pairs, regions):
        frame = _first_frame(p.image)
        if (frame.height, frame.width) != r.shape:
            raise SegmentError(f"{p.mask}: mask {r.shape[1]}x{r.shape[0]} but its image {p.image} is "
                               f"{frame.width}x{frame.height}; a mask must have its image's size")
        inputs.append(to_input(frame, cfg.image_size))
    images = torch.from_numpy(np.stack(inputs))
    masks = torch.from_numpy(np.stack([cv2.resize(r.astype(np.uint8), (cfg.image_size, cfg.image_size),
                                                  interpolation=cv2.INTER_NEAREST) for r in regions]))
    patients = [p.patient for p in pairs]
    fold = assign_folds(patients, cfg)
    out.mkdir(parents=True, exist_ok=True)
    write_run_config(out, cfg)
    (out / "versions.json").write_text(json.dumps(environment(
        packages=("medgap", "numpy", "torch", "timm", "segmentation-models-pytorch", "monai", "opencv-python-headless",
                  "pydicom", "highdicom", "nibabel")), indent=1))
    (out / PREPROCESSING_FILE).write_text(json.dumps(
        {"image_size": cfg.image_size, "channels": 3, **norm, "encoder": cfg.encoder, "init": cfg.init,
         "mask_threshold": cfg.mask_threshold}, indent=1))
    n_folds = cfg.folds or 1
    split_rows, per_image = [], []
    for k in range(n_folds):
        seed_k = cfg.seed + k
        test = fold == k
        train_all = ~test
        val = np.zeros(len(pairs), bool)
        val[np.flatnonzero(train_all)[inner_validation(np.zeros(int(train_all.sum())),
                                                        np.asarray(patients)[train_all], seed_k)]] = True
        train = train_all & ~val
        assert not {patients[i] for i in np.flatnonzero(test)} & {patients[i] for i in np.flatnonzero(train_all)}
        split_rows += [{"image": str(p.image), "mask": str(p.mask), "patient": p.patient, "fold": k,
                        "role": "test" if test[i] else "val" if val[i] else "train"} for i, p in enumerate(pairs)]
        fold_dir = out / f"fold_{k}"
        fold_dir.mkdir(exist_ok=True)
        done = fold_dir / "metrics.json"
        if done.exists() and (fold_dir / "per_image.csv").exists():
            log(f"fold {k}: finished earlier, reusing {fold_dir}")
            per_image.append(pd.read_csv(fold_dir / "per_image.csv"))
            continue
        log(f"fold {k}: train {int(train.sum())} images ({len(set(np.asarray(patients)[train]))} patients), "
            f"validation {int(val.sum())}, test {int(test.sum())} ({len(set(np.asarray(patients)[test]))} patients)")
        started = time.monotonic()
        model = _fit_fold(cfg, k, images, masks, train, val, norm, fold_dir, device, log)
        mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1) * 255
        std = torch.tensor(norm["std"]).view(1, 3, 1, 1) * 255
        idx = np.flatnonzero(test)
        prob = predict_probabilities([model], (images[idx].float() - mean) / std, device)
        rows = []
        from medgap.segment.predict import output_stems, write_overlay

        stems = output_stems([Path(pairs[i].image.name) for i in idx])
        for j, i in enumerate(idx):
            truth = regions[i]
            pred = to_original(prob[j], *truth.shape)
            # what to look at: the held-out prediction (yellow) over the reference (cyan)
            write_overlay(fold_dir / "overlays" / f"{stems[j]}.png", _first_frame(pairs[i].image), pred, truth)
            rows.append({"image": str(pairs[i].image), "mask": str(pairs[i].mask), "patient": pairs[i].patient,
                         "fold": k, "height": truth.shape[0], "width": truth.shape[1], **image_metrics(pred, truth)})
        table = pd.DataFrame(rows)
        table.to_csv(fold_dir / "per_image.csv", index=False)
        fold_metrics = {"dice_mean": float(table["dice"].mean()), "iou_mean": float(table["iou"].mean()),
                        "hd95_mean": float(table["hd95"].mean()), "n_test": len(table), "seed": seed_k,
                        "seconds": round(time.monotonic() - started, 1)}
        done.write_text(json.dumps(fold_metrics, indent=1))
        per_image.append(table)
        log(f"fold {k}: held-out Dice {fold_metrics['dice_mean']:.3f}, IoU {fold_metrics['iou_mean']:.3f}, "
            f"HD95 {fold_metrics['hd95_mean']:.1f} px on {len(table)} images ({fold_metrics['seconds']:.0f} s)")
    pd.DataFrame(split_rows).to_csv(out / "split.csv", index=False)
    everything = pd.concat(per_image, ignore_index=True)
    everything.to_csv(out / "per_image.csv", index=False)
    summary = summarise(everything, n_boot=cfg.bootstrap, seed=cfg.seed)
    summary.to_csv(out / "metrics.csv", index=False)
    (out / "metrics.json").write_text(json.dumps(
        {"unit": "image (held-out), CI by patient bootstrap", "metrics": summary.to_dict(orient="records")}, indent=1))
    return summary


def _fit_fold(cfg: SegmentTrainConfig, k: int, images: torch.Tensor, masks: torch.Tensor, train: np.ndarray,
              val: np.ndarray, norm: dict, fold_dir: Path, device: torch.device, log) -> torch.nn.Module:
    """Train one fold (resuming from last.pt); returns the model with the best validation Dice's weights."""
    from medgap.models.checkpoints import load_checkpoint_file
    from medgap.segment.model import create_unet

    seed_k = cfg.seed + k
    torch.manual_seed(seed_k)
    model = create_unet(cfg.encoder, cfg.init).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.epochs)
    history: list[dict] = []
    best = -1.0
    last = fold_dir / LAST_FILE
    fix = f"delete {fold_dir} to train fold {k} again"
    if last.exists():
        blob = load_checkpoint_file(last, fix)
        model.load_state_dict(blob["model"])
        optimiser.load_state_dict(blob["optimiser"])
        scheduler.load_state_dict(blob["scheduler"])
        history, best = blob["history"], blob["best"]
        log(f"fold {k}: resuming from {last} ({len(history)} epoch(s) done)")
    train_idx = torch.from_numpy(np.flatnonzero(train))
    data = PairDataset(images, masks, norm["mean"], norm["std"], cfg.augment)
    val_data = PairDataset(images[torch.from_numpy(np.flatnonzero(val))], masks[torch.from_numpy(np.flatnonzero(val))],
                           norm["mean"], norm["std"], False)
    for epoch in range(len(history), cfg.epochs):
        torch.manual_seed(seed_k * 100_003 + epoch)  # order and augmentation of this epoch, the same after a resume
        order = train_idx[torch.randperm(len(train_idx))]
        model.train()
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start:start + cfg.batch_size]
            if len(batch) < 2:  # BatchNorm needs two
                continue
            xs, ys = zip(*(data[int(i)] for i in batch))
            x, y = torch.stack(xs).to(device), torch.stack(ys).to(device)
            loss = segmentation_loss(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        scheduler.step()
        model.eval()
        with torch.no_grad():
            dices = []
            for start in range(0, len(val_data), cfg.batch_size):
                xs, ys = zip(*(val_data[i] for i in range(start, min(start + cfg.batch_size, len(val_data)))))
                pred = torch.sigmoid(model(torch.stack(xs).to(device))) >= 0.5
                truth = torch.stack(ys).to(device) >= 0.5
                inter = (pred & truth).flatten(1).sum(1).float()
                total = (pred.flatten(1).sum(1) + truth.flatten(1).sum(1)).float()
                dices += torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total)).tolist()
        val_dice = float(np.mean(dices))
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_dice": val_dice})
        if val_dice > best:
            best = val_dice
            torch.save(model.state_dict(), fold_dir / MODEL_FILE)
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(), "history": history, "best": best}, last)
        log(f"fold {k} epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]['train_loss']:.3f}, validation Dice "
            f"{val_dice:.3f}")
    pd.DataFrame(history).to_csv(fold_dir / "history.csv", index=False)
    model.load_state_dict(load_checkpoint_file(fold_dir / MODEL_FILE, fix))
    return model
