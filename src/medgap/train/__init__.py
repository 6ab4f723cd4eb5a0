"""Fine-tuning on Lightning with patient-grouped cross-validation and a self-describing run directory;
``load_run`` reloads a finished run as (model, transform, classes). What a run learns is a task
(:mod:`medgap.train.tasks`: classify, multilabel, regress); ``run_cv`` is the run every task shares.

Lazy: ``medgap.train.config`` (the options, no torch) imports without PyTorch; the rest loads on first use."""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "config": ["ConfigError", "FinetuneConfig"],
        "load": ["LoadedRun", "RunLoadError", "load_run"],
        "run": ["FoldContext", "run_cv", "run_finetune"],
        "tasks": ["TASKS", "Task", "create_task"],
    },
)
