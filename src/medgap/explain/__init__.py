"""What a trained network looks at (issue 14): class activation maps through the grad-cam package
(:func:`class_activation_maps`, default target layer per architecture), the first layer's kernels, and the
effective receptive field with a fitted Gaussian width (:func:`effective_receptive_field`, :func:`fit_gaussian`);
``medgap explain RUN`` (:func:`explain_run`) writes them as figures and an HTML page. Names load lazily."""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "ExplainError": "medgap.explain.errors",
    "CAM_METHODS": "medgap.explain.cam",
    "class_activation_maps": "medgap.explain.cam",
    "overlay": "medgap.explain.cam",
    "GaussianFit": "medgap.explain.erf",
    "effective_receptive_field": "medgap.explain.erf",
    "fit_gaussian": "medgap.explain.erf",
    "default_target_layer": "medgap.explain.layers",
    "first_conv": "medgap.explain.layers",
    "get_layer": "medgap.explain.layers",
    "ExplainConfig": "medgap.explain.config",
    "explain_run": "medgap.explain.run",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'medgap.explain' has no attribute {name!r}")
