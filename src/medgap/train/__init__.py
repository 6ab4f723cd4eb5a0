"""Fine-tuning on Lightning with patient-grouped cross-validation and a self-describing run directory;
``load_run`` reloads a finished run as (model, transform, classes). What a run learns is a task
(:mod:`medgap.train.tasks`: classify, multilabel, regress); ``run_cv`` is the run every task shares.

Lazy: ``medgap.train.config`` (the options, no torch) imports without PyTorch; the rest loads on first use."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ConfigError": "medgap.train.config",
    "FinetuneConfig": "medgap.train.config",
    "LoadedRun": "medgap.train.load",
    "RunLoadError": "medgap.train.load",
    "load_run": "medgap.train.load",
    "run_finetune": "medgap.train.run",
    "run_cv": "medgap.train.run",
    "FoldContext": "medgap.train.run",
    "Task": "medgap.train.tasks",
    "TASKS": "medgap.train.tasks",
    "create_task": "medgap.train.tasks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'medgap.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
