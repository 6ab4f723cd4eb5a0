"""The Lightning module of contrastive pretraining: a timm backbone (pooled features), a projection head for
NT-Xent and a linear classifier for the labelled videos (:class:`medgap.pretrain.loss.USCLLoss`)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from medgap.pretrain.loss import USCLLoss


def projection_head(in_features: int, out_features: int) -> nn.Module:
    """SimCLR's (and USCL's) MLP: Linear(d, d), ReLU, Linear(d, out)."""
    return nn.Sequential(nn.Linear(in_features, in_features), nn.ReLU(inplace=True),
                         nn.Linear(in_features, out_features))


class ContrastiveModule(L.LightningModule):
    """Batches are ``(view_i, view_j, target, index)``. Training minimises :class:`USCLLoss`; validation
    computes NT-Xent alone over the held-out videos (no gathering: every process validates all of them) and
    logs ``val_loss = sum(batch loss * batch size) / videos``, which checkpointing watches. Adam with cosine
    decay per epoch, as USCL."""

    def __init__(self, backbone: nn.Module, n_classes: int = 0, projection_dim: int = 128, temperature: float = 0.5,
                 ce_weight: float = 0.0, lr: float = 3e-4, weight_decay: float = 1e-4,
                 gather_distributed: bool = False):
        super().__init__()
        self.backbone = backbone
        d = int(backbone.num_features)
        self.projector = projection_head(d, projection_dim)
        self.classifier = nn.Linear(d, n_classes) if n_classes > 0 and ce_weight > 0 else None
        self.loss = USCLLoss(temperature, ce_weight if self.classifier is not None else 0.0, gather_distributed)
        self.val_loss_fn = USCLLoss(temperature, 0.0, gather_distributed=False)
        self.lr, self.weight_decay = lr, weight_decay

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        h = self.backbone(x)
        return h, self.projector(h), None if self.classifier is None else self.classifier(h)

    def training_step(self, batch, _):
        x_i, x_j, y, _idx = batch
        _, z_i, c_i = self(x_i)
        _, z_j, c_j = self(x_j)
        parts = self.loss(z_i, z_j, c_i, c_j, y)
        n = len(y)
        for name in ("loss", "ntxent", "ce"):
            if name in parts:
                self.log(f"train_{name}", parts[name], prog_bar=name == "loss", on_epoch=True, on_step=False,
                         batch_size=n, sync_dist=True)
        return parts["loss"]

    def on_validation_epoch_start(self) -> None:
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self._val_sums = torch.zeros(2, dtype=dtype, device=self.device)

    def validation_step(self, batch, _):
        x_i, x_j, _y, _idx = batch
        if len(x_i) < 2:  # one video has no negative: NT-Xent is 0 and says nothing
            return
        _, z_i, _ = self(x_i)
        _, z_j, _ = self(x_j)
        loss = self.val_loss_fn(z_i, z_j)["ntxent"]
        self._val_sums += torch.stack([loss.detach().to(self._val_sums.dtype) * len(x_i),
                                       torch.tensor(float(len(x_i)), dtype=self._val_sums.dtype, device=self.device)])

    def on_validation_epoch_end(self) -> None:
        total, n = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        self.log("val_loss", (total / n.clamp_min(1)).to(torch.float32), prog_bar=True, on_epoch=True,
                 on_step=False, sync_dist=False)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(self.trainer.max_epochs or 1)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
