"""Backbones through timm, with offline ImageNet weights where a package ships them, and fine-tuning
strategies (which parameters train)."""

from medgap.models.backbones import PretrainedUnavailable, create_model, load_checkpoint, preprocessing
from medgap.models.strategies import STRATEGIES, apply_strategy, trainable_parameter_names

__all__ = [
    "STRATEGIES",
    "PretrainedUnavailable",
    "apply_strategy",
    "create_model",
    "load_checkpoint",
    "preprocessing",
    "trainable_parameter_names",
]
