"""Fine-tuning strategies: which parameters of a timm classifier train.

- ``linear``: backbone frozen (its BatchNorm statistics too: kept in eval mode), new head trains.
- ``partial``: the last N stages (timm's ``blocks``/``stages``/``layer*`` children) plus the head train.
- ``full``: everything trains.
- ``features``: nothing trains; frozen embeddings feed a scikit-learn classifier (see medgap.train).
"""

from __future__ import annotations

from torch import nn

STRATEGIES = ("linear", "partial", "full", "features")


def _stages(model: nn.Module) -> list[nn.Module]:
    for attr in ("blocks", "stages", "layers"):
        seq = getattr(model, attr, None)
        if isinstance(seq, (nn.Sequential, nn.ModuleList)):
            return list(seq)
    resnet = [getattr(model, f"layer{i}") for i in range(1, 5) if hasattr(model, f"layer{i}")]
    if resnet:
        return resnet
    raise ValueError(f"{type(model).__name__}: no stage list found for the partial strategy; use linear or full")


def _head(model: nn.Module) -> list[nn.Module]:
    head = [model.get_classifier()]
    # the convolution + norm right before pooling belong with the last stage in EfficientNet-style models
    return head


def apply_strategy(model: nn.Module, strategy: str, trainable_stages: int = 1) -> nn.Module:
    """Set ``requires_grad`` for the strategy; returns the model. See :data:`STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    for p in model.parameters():
        p.requires_grad = strategy == "full"
    if strategy in ("linear", "partial"):
        for m in _head(model):
            for p in m.parameters():
                p.requires_grad = True
    if strategy == "partial":
        stages = _stages(model)
        if not 1 <= trainable_stages <= len(stages):
            raise ValueError(f"--trainable-stages must be 1..{len(stages)} for this backbone, got {trainable_stages}")
        for stage in stages[-trainable_stages:]:
            for p in stage.parameters():
                p.requires_grad = True
        for attr in ("conv_head", "bn2", "norm", "head_norm"):  # layers after the last stage
            m = getattr(model, attr, None)
            if isinstance(m, nn.Module):
                for p in m.parameters():
                    p.requires_grad = True
    model.medgap_strategy = strategy
    return model


def frozen_modules_in_eval(model: nn.Module, all_batchnorm: bool = False) -> None:
    """Keep BatchNorm layers whose parameters are all frozen in eval mode (statistics frozen too); with
    ``all_batchnorm``, every BatchNorm layer keeps its running statistics (its scale and shift still train)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters())
            if all_batchnorm or (params and not any(p.requires_grad for p in params)):
                m.eval()


def trainable_parameter_names(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}
