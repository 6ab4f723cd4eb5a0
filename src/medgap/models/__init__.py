"""Backbones through timm, with offline ImageNet weights where a package ships them, and fine-tuning
strategies (which parameters train)."""

from medgap.models.checkpoints import CheckpointError, load_checkpoint_file
from medgap.models.backbones import PretrainedUnavailable, create_model, load_checkpoint, preprocessing
from medgap.models.strategies import STRATEGIES, apply_strategy, trainable_parameter_names

__all__ = [
    "STRATEGIES",
    "CheckpointError",
    "PretrainedUnavailable",
    "apply_strategy",
    "create_model",
    "load_checkpoint",
    "load_checkpoint_file",
    "preprocessing",
    "trainable_parameter_names",
]
