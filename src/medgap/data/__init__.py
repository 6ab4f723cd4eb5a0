"""Labelled image datasets for training: items from a folder tree or a manifest, decoded through medgap.io,
patient-grouped splits, and the predictions schema of a run directory (:mod:`medgap.data.predictions`).

Lazy: ``medgap.data.predictions`` (no torch, no scikit-learn) imports alone, so :mod:`medgap.evaluation` reads
runs without PyTorch; the rest loads on first use."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BALANCE_MODES": "medgap.data.balance",
    "balance_weights": "medgap.data.balance",
    "LabelledItem": "medgap.data.items",
    "items_from_folder": "medgap.data.items",
    "items_from_manifest": "medgap.data.items",
    "load_items": "medgap.data.items",
    "grouped_folds": "medgap.data.splits",
    "inner_validation": "medgap.data.splits",
    "decode_items": "medgap.data.tensors",
    "make_loader": "medgap.data.tensors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'medgap.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
