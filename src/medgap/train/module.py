"""The LightningModule: a timm classifier, cross-entropy, AdamW over the trainable parameters with a smaller
learning rate for pretrained layers than for the new head, linear warm-up then cosine decay per step."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from medgap.models.strategies import frozen_modules_in_eval


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear from 1/warmup to 1 over ``warmup`` steps, then cosine down to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


class Classifier(L.LightningModule):
    """Batches are ``(image, target, weight)``. Training loss is a plain mean (class/patient balance comes from
    the sampler); validation loss, which early stopping and checkpointing watch, is weighted by the items'
    balance weights, so one long clip does not decide when to stop: ``sum(w * loss) / sum(w)`` over the whole
    epoch (and over every DDP process), accumulated in float64. Logging each batch's weighted mean instead
    would let Lightning average those by batch size, keeping only part of the balancing."""

    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 1e-4,
                 backbone_lr_scale: float = 0.1, warmup_fraction: float = 0.1, label_smoothing: float = 0.1,
                 freeze_bn_stats: bool = False):
        super().__init__()
        self.model = model
        self.lr, self.weight_decay = lr, weight_decay
        self.backbone_lr_scale, self.warmup_fraction = backbone_lr_scale, warmup_fraction
        self.label_smoothing = label_smoothing
        self.freeze_bn_stats = freeze_bn_stats

    def forward(self, x):
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        # frozen BatchNorm keeps its ImageNet statistics; with freeze_bn_stats every BatchNorm does
        frozen_modules_in_eval(self.model, all_batchnorm=self.freeze_bn_stats)

    def _step(self, batch, stage: str):
        x, y, w = batch
        logits = self(x)
        per_item = F.cross_entropy(logits, y, reduction="none", label_smoothing=self.label_smoothing)
        acc = (logits.argmax(1) == y).float().mean()
        # sync_dist: under DDP every process sees the same values, so early stopping and the best checkpoint
        # agree across processes
        self.log(f"{stage}_acc", acc, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y), sync_dist=True)
        if stage == "train":
            loss = per_item.mean()
            self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y),
                     sync_dist=True)
            return loss
        w = w.to(self._val_sums.dtype)
        self._val_sums += torch.stack([(per_item.detach().to(w.dtype) * w).sum(), w.sum()])
        return None

    def training_step(self, batch, _):
        return self._step(batch, "train")

    def on_validation_epoch_start(self) -> None:
        # sum(w * loss), sum(w); float64 where the device has it (Apple's MPS has not)
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self._val_sums = torch.zeros(2, dtype=dtype, device=self.device)

    def validation_step(self, batch, _):
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        # the sums of every process, then one ratio: each process logs the same value (no sync_dist averaging)
        wsum, total = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        self.log("val_loss", (wsum / total).to(torch.float32), prog_bar=True, on_epoch=True, on_step=False,
                 sync_dist=False)

    def configure_optimizers(self):
        head = {id(p) for p in self.model.get_classifier().parameters()}
        groups = [
            {"params": [p for p in self.model.parameters() if p.requires_grad and id(p) not in head],
             "lr": self.lr * self.backbone_lr_scale},
            {"params": [p for p in self.model.parameters() if p.requires_grad and id(p) in head], "lr": self.lr},
        ]
        opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, round(self.warmup_fraction * total))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, total, warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
