"""The task seam: what a training objective supplies to the run (:func:`medgap.train.run.run_cv`).

A task turns a decoded data set into targets, builds the head's size, the per-item loss and the metrics, and
says how outputs become predictions and predictions.csv columns. The run owns everything else: folds and seeds
(fold k seeds with seed + k), the inner validation split, early stopping on the weighted validation loss,
checkpoints, resume and the run directory. A new task (contrastive pretraining, segmentation) subclasses
:class:`Task`, sets ``name`` and registers itself in :data:`medgap.train.tasks.TASKS`.

The loss is returned per item as ``(loss_sum, count)``: the item's summed loss and how many terms it holds
(1 for one class or one score; the observed findings for a multi-label item). The validation loss that early
stopping watches is ``sum(w * loss_sum) / sum(w * count)`` over the whole epoch, ``w`` the items' balance
weights: with count = 1 that is ``sum(w * loss) / sum(w)``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch


class Task:
    """Base class of the training tasks; the methods below are the whole seam."""

    name: ClassVar[str] = ""
    supports_features: ClassVar[bool] = False
    """Whether the ``features`` strategy (frozen embeddings + a scikit-learn classifier) applies."""

    outputs: list[str]
    """Output names, in order: classes, findings, or the target column (the run's classes.json)."""

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self.outputs = []

    # -- data -----------------------------------------------------------------------------------------------
    def check_items(self, items, folds: int) -> None:
        """Refuse, before decoding anything, items this task cannot learn (default: accept)."""

    def prepare(self, ds) -> np.ndarray:
        """Set ``outputs`` from the decoded set ``ds`` (:class:`medgap.data.tensors.DecodedSet`) and return the
        targets, one per item (an array whose first axis is the items)."""
        raise NotImplementedError

    def check(self, ds, targets: np.ndarray, folds: int) -> None:
        """Refuse data this task cannot learn (a CollectionError naming the problem and the fix)."""

    def strata(self, targets: np.ndarray) -> np.ndarray:
        """A label per item for stratifying the patient-grouped folds (and class balance)."""
        raise NotImplementedError

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    # -- model ----------------------------------------------------------------------------------------------
    def init_head(self, ctx, model: torch.nn.Module) -> dict | None:
        """Start the head before a fold's fine-tuning (``ctx``: :class:`medgap.train.run.FoldContext`); what it
        returns goes into the fold's metrics.json. Default: leave timm's random head."""

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per item: (summed loss, number of terms)."""
        raise NotImplementedError

    def training_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss a training batch minimises: its mean per term (balance comes from the sampler)."""
        loss_sum, count = self.loss(output, target)
        return loss_sum.sum() / count.sum().clamp_min(1)

    def batch_metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Metrics averaged over batches by batch size (logged as ``train_<m>`` and ``val_<m>``)."""
        return {}

    def epoch_metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Metrics of the whole validation epoch (logged as ``val_<m>``; under DDP, each process's share
        averaged over the processes)."""
        return {}

    # -- predictions ----------------------------------------------------------------------------------------
    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Network output -> what predictions.csv records (probabilities, or the score)."""
        raise NotImplementedError

    def prediction_columns(self, pred: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        """The held-out rows' ``pred`` and task columns (see :mod:`medgap.data.predictions`)."""
        raise NotImplementedError

    def score(self, table) -> dict[str, float]:
        """The summary of held-out predictions (a fold's or the run's predictions.csv rows) for metrics.json
        and the log line; the first key is the one printed."""
        raise NotImplementedError
