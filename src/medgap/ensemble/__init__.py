"""Ensembles across input scales (issue 14): per-class softmax weights over the scales' predictions, fitted on
validation predictions only (:func:`fit_stacking`); ``medgap resolution`` trains one model per input size and
stacks them (:mod:`medgap.ensemble.resolution`)."""

from medgap.ensemble.errors import EnsembleError
from medgap.ensemble.stacking import StackingWeights, combine, fit_stacking

__all__ = ["EnsembleError", "StackingWeights", "combine", "fit_stacking"]
