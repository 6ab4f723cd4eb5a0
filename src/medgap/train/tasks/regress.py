"""``regress``: one numeric score per item (a quality rating, a severity), MSE or Huber loss."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from medgap.data.predictions import TARGET_COLUMN
from medgap.io import CollectionError
from medgap.train.tasks.base import Task


def regression_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and Spearman's rho of predictions against targets (items as given)."""
    from scipy.stats import spearmanr

    err = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    rho = spearmanr(pred, target).statistic if np.ptp(pred) > 0 and np.ptp(target) > 0 else float("nan")
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())), "spearman": float(rho)}


class RegressTask(Task):
    """The score in ``--label-column`` (a number per row). The network outputs the score itself: its head
    starts with the bias at the training part's mean score and small weights, and the loss (``--loss mse`` or
    ``huber``) compares output and score in units of the training part's standard deviation, so a 0-100 rating
    and a 0-3 severity train alike. Epoch metrics: ``val_mae``, ``val_rmse``, ``val_spearman``.
    predictions.csv: ``target`` and ``pred`` (numbers); classes.json holds the target column's name."""

    name = "regress"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.scale = 1.0

    def prepare(self, ds):
        self.outputs = [self.cfg.label_column]
        values = np.empty(len(ds.labels), np.float32)
        for i, v in enumerate(ds.labels):
            try:
                values[i] = float(v)
            except ValueError:
                raise CollectionError(f"{ds.paths[i]}: score {v!r} in column {self.cfg.label_column!r} is not a "
                                      f"number; --task regress needs a numeric --label-column") from None
        if not np.isfinite(values).all():
            raise CollectionError(f"column {self.cfg.label_column!r}: scores must be finite numbers")
        return values

    def check(self, ds, targets, folds):
        if np.unique(targets).size < 2:
            raise CollectionError(f"column {self.cfg.label_column!r}: every item has the score {targets[0]:g}; "
                                  f"there is nothing to regress")

    def strata(self, targets):
        """Quartiles of the score (fewer bins when there are few distinct values)."""
        edges = np.unique(np.quantile(targets, [0.25, 0.5, 0.75]))
        return np.searchsorted(edges, targets, side="right")

    def init_head(self, ctx, model):
        train = ctx.train
        y, w = ctx.targets[train].astype(np.float64), ctx.weights(train)
        mean = float((w * y).sum() / w.sum())
        self.scale = float(np.sqrt((w * (y - mean) ** 2).sum() / w.sum())) or 1.0
        head = model.get_classifier()
        if isinstance(head, torch.nn.Linear):
            with torch.no_grad():
                head.bias.fill_(mean)
                head.weight.mul_(0.1 * self.scale)

    def loss(self, output, target):
        out, target = output[:, 0] / self.scale, target.to(output.dtype) / self.scale
        fn = F.huber_loss if self.cfg.loss == "huber" else F.mse_loss
        per_item = fn(out, target, reduction="none")
        return per_item, torch.ones_like(per_item)

    def epoch_metrics(self, output, target):
        return regression_metrics(output[:, 0], target)

    def predict(self, output):
        return output[:, :1]

    def prediction_columns(self, pred, targets):
        return {TARGET_COLUMN: targets.astype(float), "pred": pred[:, 0].astype(float)}

    def score(self, table):
        return regression_metrics(table["pred"].to_numpy(np.float64), table[TARGET_COLUMN].to_numpy(np.float64))
