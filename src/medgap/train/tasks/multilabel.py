"""``multilabel``: several findings per item (A-lines, B-lines, ...), one sigmoid output each, binary
cross-entropy masked where the manifest leaves a finding empty (unknown is not absent)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from medgap.data.predictions import label_column, prob_column
from medgap.io import CollectionError
from medgap.train.tasks.base import Task


def masked_bce(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per item: the sum of BCE-with-logits over its known findings, and how many are known. ``target`` holds
    1, 0 or NaN (unknown: no loss, no count)."""
    known = ~torch.isnan(target)
    terms = F.binary_cross_entropy_with_logits(output, torch.where(known, target, torch.zeros_like(target)),
                                               reduction="none")
    terms = torch.where(known, terms, torch.zeros_like(terms))
    return terms.sum(1), known.sum(1).to(terms.dtype)


def _finding_values(ds, findings: list[str]) -> np.ndarray:
    out = np.full((len(ds.labels), len(findings)), np.nan, dtype=np.float32)
    for i, values in enumerate(ds.values):
        for j, v in enumerate(values):
            if v == "":
                continue
            try:
                x = float(v)
            except ValueError:
                x = np.nan
            if x not in (0.0, 1.0):
                raise CollectionError(f"finding {findings[j]!r} of {ds.paths[i]}: {v!r}; a multi-label manifest "
                                      f"holds 1 (present), 0 (absent) or nothing (not known) in each "
                                      f"--label-columns column")
            out[i, j] = x
    return out


class MultilabelTask(Task):
    """One sigmoid output per finding (``--label-columns``). The loss of an item is its masked BCE; the
    validation loss is ``sum(w * BCE) / sum(w)`` over the known (item, finding) pairs of the epoch. Epoch
    metric: AUC per finding (``val_auc_<f>``, NaN when the validation part lacks a positive or a negative)
    and their mean (``val_auc``). predictions.csv: ``label_<f>`` and ``prob_<f>`` per finding."""

    name = "multilabel"

    def prepare(self, ds):
        self.outputs = list(self.cfg.label_column_list)
        if ds.values is None:
            raise CollectionError("--task multilabel needs a CSV manifest with one 0/1 column per finding "
                                  "(--label-columns A,B,...)")
        return _finding_values(ds, self.outputs)

    def check(self, ds, targets, folds):
        groups = np.asarray(ds.groups)
        for j, f in enumerate(self.outputs):
            pos = set(groups[targets[:, j] == 1])
            neg = set(groups[targets[:, j] == 0])
            if len(pos) < 2 or len(neg) < 2:
                raise CollectionError(f"finding {f!r}: {len(pos)} patient(s) with it and {len(neg)} without; "
                                      f"each finding needs at least 2 of each (drop it from --label-columns)")

    def strata(self, targets):
        codes = np.nan_to_num(targets, nan=0.5) @ (3.0 ** np.arange(targets.shape[1]))
        return np.unique(codes, return_inverse=True)[1]

    def loss(self, output, target):
        return masked_bce(output, target)

    def epoch_metrics(self, output, target):
        from sklearn.metrics import roc_auc_score

        out = {}
        for j, f in enumerate(self.outputs):
            known = ~np.isnan(target[:, j])
            y = target[known, j]
            out[f"auc_{f}"] = (float(roc_auc_score(y, output[known, j])) if 0 < y.sum() < y.size
                               else float("nan"))
        out["auc"] = float(np.nanmean(list(out.values()))) if any(np.isfinite(list(out.values()))) else float("nan")
        return out

    def predict(self, output):
        return torch.sigmoid(output)

    def prediction_columns(self, pred, targets):
        cols = {"pred": ["+".join(f for f, p in zip(self.outputs, row) if p >= 0.5) or "-" for row in pred]}
        for j, f in enumerate(self.outputs):
            cols[label_column(f)] = targets[:, j].astype(float)
            cols[prob_column(f)] = pred[:, j].astype(float)
        return cols

    def score(self, table):
        targets = table[[label_column(f) for f in self.outputs]].to_numpy(np.float64)
        aucs = self.epoch_metrics(table[[prob_column(f) for f in self.outputs]].to_numpy(np.float64), targets)
        return {"mean_auc": aucs.pop("auc"), **aucs}
