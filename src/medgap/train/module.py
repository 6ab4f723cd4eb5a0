"""The LightningModule: a timm classifier, cross-entropy, AdamW over the trainable parameters."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from medgap.models.strategies import frozen_modules_in_eval


class Classifier(L.LightningModule):
    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 1e-4):
        super().__init__()
        self.model = model
        self.lr, self.weight_decay = lr, weight_decay
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        frozen_modules_in_eval(self.model)  # frozen BatchNorm keeps its ImageNet statistics

    def _step(self, batch, stage: str):
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log(f"{stage}_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y))
        self.log(f"{stage}_acc", acc, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y))
        return loss

    def training_step(self, batch, _):
        return self._step(batch, "train")

    def validation_step(self, batch, _):
        self._step(batch, "val")

    def predict_step(self, batch, _):
        return torch.softmax(self(batch[0]), dim=1)

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
