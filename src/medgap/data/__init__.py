"""Labelled image datasets for training: items from a folder tree or a manifest, decoded through medgap.io,
patient-grouped splits, and the predictions schema of a run directory (:mod:`medgap.data.predictions`).

Lazy: ``medgap.data.predictions`` (no torch, no scikit-learn) imports alone, so :mod:`medgap.evaluation` reads
runs without PyTorch; the rest loads on first use."""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "balance": ["BALANCE_MODES", "balance_weights"],
        "items": ["LabelledItem", "items_from_folder", "items_from_manifest", "load_items"],
        "splits": ["grouped_folds", "inner_validation"],
        "tensors": ["decode_items", "make_loader"],
    },
)
