"""Training tasks: the loss, head size, metrics and predictions of a run (see :class:`Task`); the run itself
(folds, seeds, early stopping, checkpoints, resume, run directory) is :func:`medgap.train.run.run_cv`.

``classify`` (cross-entropy with label smoothing), ``multilabel`` (masked BCE, per-finding AUC), ``regress``
(MSE or Huber on a score; MAE, RMSE, Spearman). A later task subclasses :class:`Task` and is added to
:data:`TASKS`."""

from __future__ import annotations

from medgap.train.tasks.base import Task
from medgap.train.tasks.classify import ClassifyTask
from medgap.train.tasks.multilabel import MultilabelTask, masked_bce
from medgap.train.tasks.regress import RegressTask, regression_metrics

TASKS: dict[str, type[Task]] = {t.name: t for t in (ClassifyTask, MultilabelTask, RegressTask)}
"""Task name (``--task``) -> class."""


def create_task(cfg) -> Task:
    """The task of a fine-tuning config (``cfg.task``)."""
    return TASKS[cfg.task](cfg)


__all__ = ["ClassifyTask", "MultilabelTask", "RegressTask", "TASKS", "Task", "create_task", "masked_bce",
           "regression_metrics"]
