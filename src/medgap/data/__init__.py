"""Labelled image datasets for training: items from a folder tree or a manifest, decoded through medgap.io,
and patient-grouped splits."""

from medgap.data.balance import BALANCE_MODES, balance_weights
from medgap.data.items import LabelledItem, items_from_folder, items_from_manifest, load_items
from medgap.data.splits import grouped_folds, inner_validation
from medgap.data.tensors import decode_items, make_loader

__all__ = [
    "BALANCE_MODES",
    "balance_weights",
    "LabelledItem",
    "decode_items",
    "grouped_folds",
    "inner_validation",
    "items_from_folder",
    "items_from_manifest",
    "load_items",
    "make_loader",
]
