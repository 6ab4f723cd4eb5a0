"""Class activation maps through the ``grad-cam`` package (pytorch_grad_cam): Grad-CAM and its relatives on a
chosen target layer, as (N, H, W) maps in [0, 1] at the input's size.

References: Selvaraju et al., "Grad-CAM", ICCV 2017; Chattopadhay et al., "Grad-CAM++", WACV 2018; Jiang et al.,
"LayerCAM", IEEE TIP 2021; Muhammad & Yeasin, "Eigen-CAM", IJCNN 2020; Wang et al., "Score-CAM", CVPRW 2020;
Gildenblat et al., pytorch-grad-cam (github.com/jacobgil/pytorch-grad-cam).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from medgap.explain.errors import ExplainError

CAM_METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "xgradcam": "XGradCAM",
    "hirescam": "HiResCAM",
    "scorecam": "ScoreCAM",
}
"""medgap's method names -> pytorch_grad_cam classes. scorecam runs one forward pass per channel of the target
layer (1280 for EfficientNet): minutes per image on a CPU."""

DEFAULT_METHODS = ("gradcam", "gradcam++", "layercam", "eigencam")

CAM_LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "layercam": "LayerCAM", "eigencam": "Eigen-CAM",
              "xgradcam": "XGrad-CAM", "hirescam": "HiResCAM", "scorecam": "Score-CAM"}


def check_methods(methods: Sequence[str]) -> list[str]:
    from medgap._options import did_you_mean

    out = []
    for m in methods:
        key = str(m).strip().lower()
        if key not in CAM_METHODS:
            raise ExplainError(f"CAM method {m!r} is not one of {', '.join(CAM_METHODS)}.{did_you_mean(m, CAM_METHODS)}")
        out.append(key)
    if not out:
        raise ExplainError(f"no CAM method given; choose from {', '.join(CAM_METHODS)}")
    return out


def class_activation_maps(model: nn.Module, x: torch.Tensor, target_layer: nn.Module, methods: Sequence[str],
                          targets: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """CAMs of ``x`` (N, C, H, W, the model's normalised input) for output index ``targets[i]`` of item i
    (default: each item's highest output), one (N, H, W) float32 array in [0, 1] per method. The model is
    put in eval mode; Eigen-CAM ignores the target (it is the first principal component of the activations)."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    methods = check_methods(methods)
    model.eval()
    if targets is None:
        with torch.no_grad():
            targets = model(x).argmax(1).tolist()
    if len(targets) != len(x):
        raise ExplainError(f"{len(targets)} target(s) for {len(x)} image(s)")
    out = {}
    for m in methods:
        cls = getattr(pytorch_grad_cam, CAM_METHODS[m])
        with cls(model=model, target_layers=[target_layer]) as cam:
            if m == "scorecam":
                cam.batch_size = 32
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
        out[m] = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    return out


def overlay(rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``cam`` (H, W in [0, 1]) as a jet colour map over ``rgb`` (H, W, 3 uint8): uint8 RGB."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(rgb.astype(np.float32) / 255.0, cam, use_rgb=True, image_weight=1 - alpha)


__all__ = ["CAM_LABELS", "CAM_METHODS", "DEFAULT_METHODS", "check_methods", "class_activation_maps", "overlay"]
