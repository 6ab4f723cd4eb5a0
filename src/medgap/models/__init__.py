"""Backbones through timm, initialised through a registry (scratch, offline ImageNet weights where a package
ships them, a checkpoint file, the hub, a pretraining run), with their preprocessing; and fine-tuning strategies (which
parameters train)."""

from medgap.models.checkpoints import CheckpointError, load_checkpoint_file
from medgap.models._registry import InitInfo, UnknownInit, list_inits, register_init, resolve_init
from medgap.models.backbones import (
    OFFLINE_IMAGENET,
    PretrainedUnavailable,
    create_model,
    create_model_and_transform,
    is_known_backbone,
    load_checkpoint,
    preprocessing,
    resolve_arch,
    resolve_preprocessing,
)
from medgap.models.pretrained_run import PretrainRunError, is_pretrain_run, read_pretrain_record
from medgap.models.strategies import STRATEGIES, apply_strategy, trainable_parameter_names

__all__ = [
    "OFFLINE_IMAGENET",
    "STRATEGIES",
    "CheckpointError",
    "InitInfo",
    "PretrainRunError",
    "PretrainedUnavailable",
    "UnknownInit",
    "apply_strategy",
    "create_model",
    "create_model_and_transform",
    "is_known_backbone",
    "is_pretrain_run",
    "list_inits",
    "load_checkpoint",
    "load_checkpoint_file",
    "preprocessing",
    "read_pretrain_record",
    "register_init",
    "resolve_arch",
    "resolve_init",
    "resolve_preprocessing",
    "trainable_parameter_names",
]
