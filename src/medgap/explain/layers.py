"""Which layer to explain: the default CAM target layer per architecture (timm module names) and the first
convolution (whose kernels are pictured)."""

from __future__ import annotations

from torch import nn

from medgap.explain.errors import ExplainError

# The last feature map the classifier pools, by timm model class: for EfficientNet/MobileNet the activated output
# of conv_head (bn2 is timm's BatchNormAct2d: norm + activation), else timm's own feature_info entry of the
# last stage (ResNet layer4, DenseNet features.norm5, ConvNeXt stages.3, ...).
TARGET_LAYERS = {
    "EfficientNet": "bn2",
    "MobileNetV3": "conv_head",
    "ResNet": "layer4",
    "DenseNet": "features.norm5",
    "ConvNeXt": "stages.3",
}


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "backbone", model) if not hasattr(model, "forward_features") else model


def default_target_layer(model: nn.Module) -> str:
    """The dotted name of the default CAM target layer of a timm model (see :data:`TARGET_LAYERS`, else the
    model's ``feature_info[-1]['module']``)."""
    model = _unwrap(model)
    name = TARGET_LAYERS.get(type(model).__name__)
    if name is None:
        info = getattr(model, "feature_info", None)
        if info:
            name = info[-1]["module"] if isinstance(info[-1], dict) else None
    if name is None:
        raise ExplainError(f"no default CAM target layer for a {type(model).__name__}; name one with "
                           f"--target-layer (a module name of model.named_modules(), e.g. the last convolutional "
                           f"block)")
    return name


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called ``name`` (dotted, as in ``model.named_modules()``); an ExplainError lists close names."""
    import difflib

    model = _unwrap(model)
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else f" Top-level modules: {', '.join(n for n in names if '.' not in n)}"
        raise ExplainError(f"--target-layer {name!r}: no such module in {type(model).__name__}.{hint}") from None


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first Conv2d of the model (timm: conv_stem, conv1, features.conv0, stem.0) and its name."""
    for name, module in _unwrap(model).named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ExplainError(f"{type(model).__name__} has no Conv2d layer: no first-layer kernels to show")
