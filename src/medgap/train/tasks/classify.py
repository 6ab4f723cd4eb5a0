"""``classify``: one class per item, softmax over the classes, cross-entropy with label smoothing."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from medgap.data.predictions import prob_column
from medgap.train.tasks.base import Task


class ClassifyTask(Task):
    """Multi-class classification. ``outputs`` are the sorted class names; predictions.csv has ``prob_<c>``
    (softmax) per class and ``pred`` their argmax. With a pretrained backbone and ``--head-init logreg`` the
    head starts from a logistic regression fitted on the frozen features of the training part
    (:func:`medgap.train.linear_head.fit_head`)."""

    name = "classify"
    supports_features = True

    def prepare(self, ds) -> np.ndarray:
        self.outputs = sorted(set(ds.labels))
        return np.array([self.outputs.index(c) for c in ds.labels])

    def check_items(self, items, folds):
        from medgap.train.run import check_classes

        check_classes([it.label for it in items], [it.group_id for it in items], folds)

    def check(self, ds, targets, folds):
        from medgap.train.run import check_classes

        check_classes(ds.labels, ds.groups, folds, ds.failures)

    def strata(self, targets):
        return targets

    def init_head(self, ctx, model):
        if self.cfg.head_init == "logreg" and str(self.cfg.init) != "scratch":
            from medgap.train.linear_head import fit_head

            return fit_head(ctx, model)
        return None

    def loss(self, output, target):
        per_item = F.cross_entropy(output, target, reduction="none", label_smoothing=self.cfg.label_smoothing)
        return per_item, torch.ones_like(per_item)

    def training_loss(self, output, target):
        return self.loss(output, target)[0].mean()

    def batch_metrics(self, output, target):
        return {"acc": (output.argmax(1) == target).float().mean()}

    def predict(self, output):
        return torch.softmax(output, dim=1)

    def prediction_columns(self, pred, targets):
        cols = {"pred": [self.outputs[int(i)] for i in pred.argmax(1)]}
        cols.update({prob_column(c): pred[:, j].astype(float) for j, c in enumerate(self.outputs)})
        return cols

    def score(self, table):
        return {"accuracy": float((table.label == table.pred).mean())}
