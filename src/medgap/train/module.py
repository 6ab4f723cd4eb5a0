"""The LightningModule: a timm model whose task (:mod:`medgap.train.tasks`) gives the loss and metrics, AdamW
over the trainable parameters with a smaller learning rate for pretrained layers than for the new head, linear
warm-up then cosine decay per step."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn

from medgap.models.strategies import frozen_modules_in_eval


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear from 1/warmup to 1 over ``warmup`` steps, then cosine down to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


class TaskModule(L.LightningModule):
    """One LightningModule for every task (:mod:`medgap.train.tasks`): the task gives the loss, the metrics and
    the predictions. Batches are ``(image, target, weight)``. Training loss is the task's plain mean (class/
    patient balance comes from the sampler); validation loss, which early stopping and checkpointing watch, is
    weighted by the items' balance weights, so one long clip does not decide when to stop:
    ``sum(w * loss) / sum(w)`` over the whole epoch (and over every DDP process), accumulated in float64 (a
    multi-label item contributes each known finding's loss with its weight, see :class:`medgap.train.tasks.Task`).
    Logging each batch's weighted mean instead would let Lightning average those by batch size, keeping only
    part of the balancing."""

    def __init__(self, model: nn.Module, task, lr: float = 1e-3, weight_decay: float = 1e-4,
                 backbone_lr_scale: float = 0.1, warmup_fraction: float = 0.1, freeze_bn_stats: bool = False):
        super().__init__()
        self.model = model
        self.task = task
        self.lr, self.weight_decay = lr, weight_decay
        self.backbone_lr_scale, self.warmup_fraction = backbone_lr_scale, warmup_fraction
        self.freeze_bn_stats = freeze_bn_stats
        from medgap.train.tasks.base import Task

        self._epoch_metrics = type(task).epoch_metrics is not Task.epoch_metrics

    def forward(self, x):
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        # frozen BatchNorm keeps its ImageNet statistics; with freeze_bn_stats every BatchNorm does
        frozen_modules_in_eval(self.model, all_batchnorm=self.freeze_bn_stats)

    def _step(self, batch, stage: str):
        x, y, w = batch
        output = self(x)
        # sync_dist: under DDP every process sees the same values, so early stopping and the best checkpoint
        # agree across processes
        for name, value in self.task.batch_metrics(output, y).items():
            self.log(f"{stage}_{name}", value, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y),
                     sync_dist=True)
        if stage == "train":
            loss = self.task.training_loss(output, y)
            self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y),
                     sync_dist=True)
            return loss
        loss_sum, count = self.task.loss(output, y)
        w = w.to(self._val_sums.dtype)
        self._val_sums += torch.stack([(loss_sum.detach().to(w.dtype) * w).sum(), (count.to(w.dtype) * w).sum()])
        if self._epoch_metrics:
            self._val_outputs.append((output.detach().float().cpu(), y.detach().cpu()))
        return None

    def training_step(self, batch, _):
        return self._step(batch, "train")

    def on_validation_epoch_start(self) -> None:
        # sum(w * loss), sum(w); float64 where the device has it (Apple's MPS has not)
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self._val_sums = torch.zeros(2, dtype=dtype, device=self.device)
        self._val_outputs = []

    def validation_step(self, batch, _):
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        # the sums of every process, then one ratio: each process logs the same value (no sync_dist averaging)
        wsum, total = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        self.log("val_loss", (wsum / total).to(torch.float32), prog_bar=True, on_epoch=True, on_step=False,
                 sync_dist=False)
        if self._epoch_metrics and self._val_outputs:
            out = torch.cat([o for o, _ in self._val_outputs]).numpy()
            y = torch.cat([t for _, t in self._val_outputs]).numpy()
            for name, value in self.task.epoch_metrics(out, y).items():
                self.log(f"val_{name}", float(value), on_epoch=True, on_step=False, sync_dist=True)
        self._val_outputs = []

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


class Classifier(TaskModule):
    """The classification module (cross-entropy with ``label_smoothing``): :class:`TaskModule` with the
    ``classify`` task."""

    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 1e-4,
                 backbone_lr_scale: float = 0.1, warmup_fraction: float = 0.1, label_smoothing: float = 0.1,
                 freeze_bn_stats: bool = False):
        from types import SimpleNamespace

        from medgap.train.tasks import ClassifyTask

        super().__init__(model, ClassifyTask(SimpleNamespace(label_smoothing=label_smoothing)), lr, weight_decay,
                         backbone_lr_scale, warmup_fraction, freeze_bn_stats)
        self.label_smoothing = label_smoothing
