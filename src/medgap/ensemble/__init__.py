"""Ensembles across input scales (issue 14): per-class softmax weights over the scales' predictions, fitted on
validation predictions only (:func:`fit_stacking`); ``medgap resolution`` trains one model per input size and
stacks them (:func:`run_resolution`). Names load lazily: ``medgap.ensemble.config`` stays free of NumPy and torch
for the command line."""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "config": ["ResolutionConfig"],
        "errors": ["EnsembleError"],
        "resolution": ["ResolutionResult", "run_resolution", "stack_runs"],
        "stacking": ["StackingWeights", "combine", "fit_stacking"],
    },
)
