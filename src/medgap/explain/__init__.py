"""What a trained network looks at (issue 14): class activation maps through the grad-cam package
(:func:`class_activation_maps`, default target layer per architecture), the first layer's kernels, and the
effective receptive field with a fitted Gaussian width (:func:`effective_receptive_field`, :func:`fit_gaussian`);
``medgap explain RUN`` (:func:`explain_run`) writes them as figures and an HTML page. Names load lazily."""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "cam": ["CAM_METHODS", "class_activation_maps", "overlay"],
        "config": ["ExplainConfig"],
        "erf": ["GaussianFit", "effective_receptive_field", "fit_gaussian"],
        "errors": ["ExplainError"],
        "layers": ["default_target_layer", "first_conv", "get_layer"],
        "run": ["explain_run"],
    },
)
