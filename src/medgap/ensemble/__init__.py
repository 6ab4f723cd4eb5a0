"""Ensembles across input scales (issue 14): per-class softmax weights over the scales' predictions, fitted on
validation predictions only (:func:`fit_stacking`); ``medgap resolution`` trains one model per input size and
stacks them (:func:`run_resolution`). Names load lazily: ``medgap.ensemble.config`` stays free of NumPy and torch
for the command line."""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "EnsembleError": "medgap.ensemble.errors",
    "StackingWeights": "medgap.ensemble.stacking",
    "combine": "medgap.ensemble.stacking",
    "fit_stacking": "medgap.ensemble.stacking",
    "ResolutionConfig": "medgap.ensemble.config",
    "ResolutionResult": "medgap.ensemble.resolution",
    "run_resolution": "medgap.ensemble.resolution",
    "stack_runs": "medgap.ensemble.resolution",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'medgap.ensemble' has no attribute {name!r}")
